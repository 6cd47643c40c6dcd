"""Counters kept on write, queue columns on reviews, and a search index: review and counts at any size.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09

- ``dataset_counters``: videos per dataset x review status x effective label x imported label x split x
  readable x edited x excluded x parse failed, filled here by one GROUP BY and kept by every write after.
- ``reviews`` gains the columns the queue sorts and filters on (``dataset_id``, ``split``, ``queue_label``,
  ``queue_key`` = minus the suggestion's doubt, ``edited``, ``parse_failed``) and the text search reads
  (``search_doc``), filled here from videos and suggestions, and the index ``ix_reviews_queue``.
- ``ix_videos_dataset_id``, ``ix_suggestions_video_id`` (each the start of another index) and
  ``ix_reviews_status`` (the queue uses ``ix_reviews_queue``) go: fewer B-trees to keep on every insert.
- The search index: SQLite FTS5 ``review_fts`` with its triggers, PostgreSQL a GIN index on
  ``to_tsvector('simple', search_doc)`` (``db.search``). A later SQLite migration that rebuilds ``reviews``
  in batch mode drops the triggers; ``db.engine.init_db`` puts them back after every upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.search import drop_search_objects, ensure_search_objects

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("subjects", "attributes", "actions", "scenes")
# Indexes another index now starts with (or, for reviews.status, that no query uses any more): dropped, so that
# bulk inserts maintain fewer B-trees.
_REDUNDANT = (("ix_videos_dataset_id", "videos", "dataset_id"), ("ix_suggestions_video_id", "suggestions", "video_id"),
              ("ix_reviews_status", "reviews", "status"))
# (name, type, server default for the rows already there)
_COLUMNS = (
    ("dataset_id", sa.Integer(), None),
    ("split", sa.String(length=16), sa.text("'train'")),
    ("queue_label", sa.String(length=100), sa.text("''")),
    ("queue_key", sa.Float(), sa.text("0")),
    ("edited", sa.Boolean(), sa.false()),
    ("parse_failed", sa.Boolean(), sa.false()),
    ("search_doc", sa.Text(), sa.text("''")),
)


def upgrade() -> None:
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
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_counters_dataset_id_datasets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_counters")),
        sa.UniqueConstraint("dataset_id", "status", "label", "video_label", "split", "readable", "edited", "excluded",
                            "parse_failed", name="uq_dataset_counters_key"),
    )
    with op.batch_alter_table("reviews") as batch:
        for name, type_, default in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=default is None, server_default=default))
    _backfill_reviews()
    with op.batch_alter_table("reviews") as batch:
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f("fk_reviews_dataset_id_datasets"), "datasets", ["dataset_id"], ["id"],
                                 ondelete="CASCADE")
        for name, type_, default in _COLUMNS:
            if default is not None:  # the defaults were only for existing rows
                batch.alter_column(name, existing_type=type_, server_default=None)
    for name, table, column in _REDUNDANT:
        op.drop_index(name, table_name=table)
    op.create_index("ix_reviews_queue", "reviews", ["dataset_id", "status", "queue_label", "split", "edited",
                                                    "parse_failed", "queue_key", "video_id", "id"])
    op.execute(
        "INSERT INTO dataset_counters (dataset_id, status, label, video_label, split, readable, edited, excluded, "
        "parse_failed, n) "
        "SELECT v.dataset_id, COALESCE(r.status, 'none'), COALESCE(r.queue_label, v.label), v.label, v.split, "
        "v.readable, COALESCE(r.edited, false), COALESCE(r.excluded, false), COALESCE(r.parse_failed, false), "
        "count(*) FROM videos v LEFT JOIN reviews r ON r.video_id = v.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    ensure_search_objects(op.get_bind(), rebuild=True)


def _backfill_reviews() -> None:
    """Correlated subqueries (primary-key lookups): the same SQL on SQLite (any version) and PostgreSQL."""
    video = "(SELECT v.{c} FROM videos v WHERE v.id = reviews.video_id)"
    sugg = "(SELECT {e} FROM suggestions s WHERE s.id = reviews.suggestion_id)"
    edited = " OR ".join(f"(reviews.{f} IS NOT NULL AND reviews.{f} <> COALESCE({sugg.format(e=f's.{f}')}, ''))"
                         for f in _FIELDS)
    suggested = " || ' ' || ".join(f"COALESCE(s.{f}, '')" for f in ("conclusion", *_FIELDS))
    reviewed = " || ' ' || ".join(f"COALESCE(reviews.{f}, '')" for f in _FIELDS)
    op.execute(
        f"UPDATE reviews SET dataset_id = {video.format(c='dataset_id')}, split = {video.format(c='split')}, "
        f"queue_label = COALESCE(reviews.label, {video.format(c='label')}), "
        f"queue_key = COALESCE({sugg.format(e='-s.doubt_score')}, 0), "
        f"parse_failed = CASE WHEN {sugg.format(e='s.parse_status')} = 'failed' THEN true ELSE false END, "
        f"edited = CASE WHEN {edited} THEN true ELSE false END, "
        f"search_doc = {video.format(c='external_id')} || ' ' || COALESCE({sugg.format(e=suggested)}, '') "
        f"|| ' ' || {reviewed}"
    )


def downgrade() -> None:
    drop_search_objects(op.get_bind())
    op.drop_index("ix_reviews_queue", table_name="reviews")
    for name, table, column in _REDUNDANT:
        op.create_index(name, table, [column])
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint(op.f("fk_reviews_dataset_id_datasets"), type_="foreignkey")
        for name, _type, _default in reversed(_COLUMNS):
            batch.drop_column(name)
    op.drop_table("dataset_counters")
