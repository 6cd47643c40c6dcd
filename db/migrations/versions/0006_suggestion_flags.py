"""Suggestions get flags (automatic checks before review); the queue filters by them and the doubt uses them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12

- ``suggestions.flags`` ([{code, reason}]) and ``suggestions.flag_bits``: every existing suggestion is checked
  here with the rule new ones get at insert (``rbft_core.review.flags``, the prompt rebuilt from its dataset), and
  its doubt score and reason are recomputed with the flags (``rbft_core.review.doubt``).
- ``suggestions.dimension_logprobs`` (each dimension's least likely token, written by generation from now on):
  older suggestions have none ({}), so the unsure-subject check cannot fire for them; regenerate to get it.
- ``reviews.flag_bits`` (the current suggestion's) and ``queue_key`` follow; index ``ix_reviews_flags`` serves a
  queue filtered by flag.
- ``dataset_counters`` gains ``flag_bits`` in its key; the table is rebuilt and refilled by one GROUP BY.

The new columns keep their server defaults ('[]', 0), unlike 0005's: removing a default makes SQLite rebuild the
table, and rebuilding ``suggestions`` while foreign keys are on would set every ``reviews.suggestion_id`` to NULL
(``ON DELETE SET NULL``); columns added with ``ALTER TABLE ADD COLUMN`` rebuild nothing (the search triggers on
``reviews`` stay too). Downgrade drops the flags and counts again without them; the doubt scores stay as computed
here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rbft_core.review.doubt import doubt_of
from rbft_core.review.flags import check_suggestion, expected_prompt, flag_bits

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("subjects", "attributes", "actions", "scenes")
_CHUNK = 2000
_KEY = ("status", "label", "video_label", "split", "readable", "edited", "excluded", "parse_failed")
_QUEUE_COLUMNS = ["dataset_id", "flag_bits", "status", "queue_label", "split", "edited", "parse_failed", "queue_key",
                  "video_id", "id"]


def upgrade() -> None:
    # plain ADD COLUMN on both backends: no table is rebuilt
    op.add_column("suggestions", sa.Column("flags", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.add_column("suggestions", sa.Column("flag_bits", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("suggestions", sa.Column("dimension_logprobs", sa.JSON(), nullable=False,
                                           server_default=sa.text("'{}'")))
    op.add_column("reviews", sa.Column("flag_bits", sa.Integer(), nullable=False, server_default=sa.text("0")))
    _check_suggestions()
    op.execute(
        "UPDATE reviews SET "
        "flag_bits = COALESCE((SELECT s.flag_bits FROM suggestions s WHERE s.id = reviews.suggestion_id), 0), "
        "queue_key = COALESCE((SELECT -s.doubt_score FROM suggestions s WHERE s.id = reviews.suggestion_id), 0)"
    )
    op.create_index("ix_reviews_flags", "reviews", _QUEUE_COLUMNS)
    _rebuild_counters(with_flags=True)


def _check_suggestions() -> None:
    """Flags, doubt score and reason of every suggestion, in chunks of ``_CHUNK`` (one executemany each)."""
    bind = op.get_bind()
    table = sa.table("suggestions", sa.column("id"), sa.column("flags", sa.JSON()), sa.column("flag_bits"),
                     sa.column("doubt_score"), sa.column("doubt_reason"))
    update = (table.update().where(table.c.id == sa.bindparam("sid"))
              .values(flags=sa.bindparam("f"), flag_bits=sa.bindparam("b"), doubt_score=sa.bindparam("d"),
                      doubt_reason=sa.bindparam("r")))
    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT s.id, s.parse_status, s.subjects, s.attributes, s.actions, s.scenes, s.conclusion, s.raw_text, "
            "s.mean_logprob, "
            "s.label_hint, COALESCE(r.label, v.label) AS label, d.labels, d.preset, d.role, d.task, d.criteria "
            "FROM suggestions s JOIN videos v ON v.id = s.video_id JOIN datasets d ON d.id = v.dataset_id "
            "LEFT JOIN reviews r ON r.video_id = v.id WHERE s.id > :last ORDER BY s.id LIMIT :n"
        ), {"last": last, "n": _CHUNK}).mappings().all()
        if not rows:
            return
        bind.execute(update, [_checked(row) for row in rows])
        last = rows[-1]["id"]


def _checked(row) -> dict:
    labels = row["labels"]
    if isinstance(labels, str):  # SQLite returns JSON columns as text through a raw query
        labels = json.loads(labels or "[]")
    labels = list(labels or [])
    fields = {name: row[name] for name in _FIELDS}
    prompt = expected_prompt(row["preset"] or "", row["role"] or "", row["task"] or "", tuple(labels),
                             row["criteria"] or "", row["label"] if row["label_hint"] else None)
    flags = check_suggestion(fields=fields, conclusion=row["conclusion"] or "", label=row["label"], labels=labels,
                             parse_status=row["parse_status"], prompt=prompt, raw_text=row["raw_text"] or "")
    doubt = doubt_of(parse_status=row["parse_status"], fields=fields, conclusion=row["conclusion"] or "",
                     label=row["label"], labels=labels, mean_logprob=row["mean_logprob"], flags=flags)
    return {"sid": row["id"], "f": [f.to_dict() for f in flags], "b": flag_bits(flags), "d": doubt.score,
            "r": doubt.reason}


def _rebuild_counters(*, with_flags: bool) -> None:
    """Recreate ``dataset_counters`` (with or without ``flag_bits`` in its key) and count every video once."""
    op.drop_table("dataset_counters")
    key = (*_KEY, "flag_bits") if with_flags else _KEY
    op.create_table(
        "dataset_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("video_label", sa.String(length=100), nullable=False),
        sa.Column("split", sa.String(length=16), nullable=False),
        sa.Column("readable", sa.Boolean(), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("parse_failed", sa.Boolean(), nullable=False),
        *([sa.Column("flag_bits", sa.Integer(), nullable=False)] if with_flags else []),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_counters_dataset_id_datasets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_counters")),
        sa.UniqueConstraint("dataset_id", *key, name="uq_dataset_counters_key"),
    )
    flags = ", COALESCE(r.flag_bits, 0)" if with_flags else ""
    groups = ", ".join(str(i) for i in range(1, len(key) + 2))
    op.execute(
        f"INSERT INTO dataset_counters (dataset_id, {', '.join(key)}, n) "
        "SELECT v.dataset_id, COALESCE(r.status, 'none'), COALESCE(r.queue_label, v.label), v.label, v.split, "
        "v.readable, COALESCE(r.edited, false), COALESCE(r.excluded, false), COALESCE(r.parse_failed, false)"
        f"{flags}, count(*) FROM videos v LEFT JOIN reviews r ON r.video_id = v.id GROUP BY {groups}"
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_flags", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("flag_bits")
    with op.batch_alter_table("suggestions") as batch:
        batch.drop_column("dimension_logprobs")
        batch.drop_column("flag_bits")
        batch.drop_column("flags")
    _rebuild_counters(with_flags=False)
