"""Jobs record the machine they run on: host name and boot id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10

A job's liveness is judged on its own machine by its process (``/proc``), after a reboot (another boot id) as
lost, and from any other machine sharing the database by the age of its heartbeat. Older rows keep NULL in
both columns and are judged as before (by the local process table).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("boot_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("boot_id")
        batch.drop_column("host")
