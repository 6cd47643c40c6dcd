"""Suggestions get a doubt score and reason (review queue: most doubtful first).

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-26

Existing suggestions are scored here with the same rule new ones get at insert (rbft_core.review.doubt).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rbft_core.review.doubt import doubt_of

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("subjects", "attributes", "actions", "scenes")


def upgrade() -> None:
    with op.batch_alter_table("suggestions") as batch:
        batch.add_column(sa.Column("doubt_score", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("doubt_reason", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("suggestions") as batch:  # the defaults were only for existing rows
        batch.alter_column("doubt_score", server_default=None)
        batch.alter_column("doubt_reason", server_default=None)
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.id, s.parse_status, s.subjects, s.attributes, s.actions, s.scenes, s.conclusion, "
            "s.mean_logprob, COALESCE(r.label, v.label) AS label, d.labels "
            "FROM suggestions s JOIN videos v ON v.id = s.video_id JOIN datasets d ON d.id = v.dataset_id "
            "LEFT JOIN reviews r ON r.video_id = v.id"
        )
    ).mappings().all()
    table = sa.table("suggestions", sa.column("id"), sa.column("doubt_score"), sa.column("doubt_reason"))
    for row in rows:
        labels = row["labels"]
        if isinstance(labels, str):  # SQLite returns JSON columns as text through a raw query
                    labels = json.loads(labels or "[]")
        doubt = doubt_of(
            parse_status=row["parse_status"],
            fields={name: row[name] for name in _FIELDS},
            conclusion=row["conclusion"] or "",
            label=row["label"],
            labels=labels or [],
            mean_logprob=row["mean_logprob"],
        )
        bind.execute(
            table.update().where(table.c.id == row["id"]).values(doubt_score=doubt.score, doubt_reason=doubt.reason)
        )


def downgrade() -> None:
    with op.batch_alter_table("suggestions") as batch:
        batch.drop_column("doubt_reason")
        batch.drop_column("doubt_score")
