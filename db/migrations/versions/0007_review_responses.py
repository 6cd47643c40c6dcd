"""Several reviewers per item: responses with their history, logins with roles, k per dataset.

Revision ID: 0007
Revises: 0005
Create Date: 2027-01-12

- ``review_responses``: one reviewer's answer for one video (unique per video and reviewer; the rationale as a
  JSON object keyed by dimension; label, status, shown / saved times, a version for compare-and-set), and
  ``response_revisions``, each save of a response before -> after.
- ``users``: the web app's logins for ``--auth db`` (name, role, salted scrypt hash).
- ``datasets.reviews_per_item`` (k, 1 for every existing dataset: nothing changes for them) and
  ``datasets.adjudicators`` (logins an admin assigned; empty for existing datasets).

Existing rows are untouched: the two dataset columns are added with server defaults, nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("suggestion_id", sa.Integer(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("rationale", sa.JSON(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_review_responses_dataset_id_datasets"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], name=op.f("fk_review_responses_video_id_videos"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["suggestion_id"], ["suggestions.id"],
                                name=op.f("fk_review_responses_suggestion_id_suggestions"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_responses")),
        sa.UniqueConstraint("video_id", "reviewer", name="uq_review_responses_video_reviewer"),
    )
    op.create_index("ix_review_responses_dataset_reviewer", "review_responses", ["dataset_id", "reviewer"])
    op.create_table(
        "response_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["response_id"], ["review_responses.id"],
                                name=op.f("fk_response_revisions_response_id_review_responses"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_revisions")),
    )
    op.create_index(op.f("ix_response_revisions_response_id"), "response_revisions", ["response_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    # Plain ADD COLUMN with a constant default on both backends: existing datasets read k = 1. Never a batch
    # rebuild here: recreating ``datasets`` would cascade-delete its videos where foreign keys are on.
    op.add_column("datasets", sa.Column("reviews_per_item", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("datasets", sa.Column("adjudicators", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35, PostgreSQL): no rebuild of ``datasets`` (see upgrade)
    op.execute("ALTER TABLE datasets DROP COLUMN adjudicators")
    op.execute("ALTER TABLE datasets DROP COLUMN reviews_per_item")
    op.drop_table("users")
    op.drop_index(op.f("ix_response_revisions_response_id"), table_name="response_revisions")
    op.drop_table("response_revisions")
    op.drop_index("ix_review_responses_dataset_reviewer", table_name="review_responses")
    op.drop_table("review_responses")
