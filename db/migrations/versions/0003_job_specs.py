"""Jobs record what they run: kind, dataset, model and the spec file (``rbft run SPEC``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Rows of jobs started before specs keep their command line; their dataset and model are read from it once
here (the dataset is the command's first argument, the model the value after ``--model``), so the Train and
Datasets tabs no longer parse argv.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_DATASET = {"import", "generate", "train", "pipeline", "evaluate", "mask-experiment", "attention", "export"}


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dataset", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("model", sa.Text(), nullable=True))
        batch.add_column(sa.Column("spec_path", sa.Text(), nullable=True))
    op.create_index(op.f("ix_jobs_dataset"), "jobs", ["dataset"])
    bind = op.get_bind()
    for job_id, kind, command in bind.execute(sa.text("SELECT id, kind, command FROM jobs")).all():
        argv = json.loads(command) if isinstance(command, str) else (command or [])
        dataset, model = legacy_identity(kind, argv)
        bind.execute(sa.text("UPDATE jobs SET dataset = :d, model = :m WHERE id = :i"),
                     {"d": dataset, "m": model, "i": job_id})


def legacy_identity(kind: str, argv: list) -> tuple[str | None, str | None]:
    """(dataset, model) of a pre-spec job's argv: ``[command, DATASET, ..., --model, M, ...]``."""
    argv = [str(a) for a in argv]
    dataset = argv[1] if kind in _WITH_DATASET and len(argv) > 1 and not argv[1].startswith("-") else None
    model = argv[argv.index("--model") + 1] if "--model" in argv[:-1] else None
    return dataset, model


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_dataset"), table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("spec_path")
        batch.drop_column("model")
        batch.drop_column("dataset")
