"""The doubt scores the subject's probability: every stored suggestion's doubt is recomputed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

``rbft_core.review.doubt`` now adds ``SUBJECT_POINTS * (1 - p)`` for a subject the model wrote at probability p
(and the unsure-subject flag no longer has points of its own), so the scores stored before would sort apart from new
ones. Each suggestion's score and reason are recomputed from what it stored (its flags, parse status, mean
log-probability and ``dimension_logprobs``; the flags themselves do not change, nor do the counters), and each
review's ``queue_key`` follows its suggestion. Suggestions stored before generation kept the whole subject's
log-probability use their least likely subject token (``models.confidence.value_probability``); those stored before
0006 recorded none and get no subject term. Data only: no column changes, so downgrade changes nothing (the scores
stay as computed here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rbft_core.review.doubt import doubt_of
from rbft_core.review.flags import Flag

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2000


def upgrade() -> None:
    bind = op.get_bind()
    table = sa.table("suggestions", sa.column("id"), sa.column("doubt_score"), sa.column("doubt_reason"))
    update = (table.update().where(table.c.id == sa.bindparam("sid"))
              .values(doubt_score=sa.bindparam("d"), doubt_reason=sa.bindparam("r")))
    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, parse_status, mean_logprob, flags, dimension_logprobs FROM suggestions "
            "WHERE id > :last ORDER BY id LIMIT :n"), {"last": last, "n": _CHUNK}).mappings().all()
        if not rows:
            break
        bind.execute(update, [_rescored(row) for row in rows])
        last = rows[-1]["id"]
    op.execute("UPDATE reviews SET queue_key = COALESCE((SELECT -s.doubt_score FROM suggestions s "
               "WHERE s.id = reviews.suggestion_id), 0)")


def _json(value):
    """SQLite returns JSON columns as text through a raw query."""
    return json.loads(value or "null") if isinstance(value, str) else value


def _rescored(row) -> dict:
    flags = [Flag(f["code"], f["reason"]) for f in _json(row["flags"]) or [] if f.get("code")]
    doubt = doubt_of(parse_status=row["parse_status"], fields={}, conclusion="", label="", labels=[],
                     mean_logprob=row["mean_logprob"], flags=flags, confidence=_json(row["dimension_logprobs"]) or {})
    return {"sid": row["id"], "d": doubt.score, "r": doubt.reason}


def downgrade() -> None:
    pass  # data only: the scores stay as computed
