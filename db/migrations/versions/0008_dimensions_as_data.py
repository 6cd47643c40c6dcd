"""Dimensions are data: a dataset stores its rationale dimensions; suggestions and reviews store their text as JSON.

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-02

- ``datasets.dimensions`` ([{name, description, required}]): every existing dataset gets the paper's four
  (subjects, attributes, actions, scenes, all required, with the descriptions the prompt always showed), so its
  prompt, parse and Stage-I target stay word for word what they were.
- ``suggestions.rationale``: {dimension: text} with all four keys, in that order (the columns were NOT NULL, "" when
  the model wrote nothing); ``reviews.rationale``: the dimensions the reviewer set, the NULL columns ("the
  suggestion's text") left out. Copied row by row in chunks by primary key, then the eight columns go.
- Nothing else is rewritten: revisions already keep the dimensions as keys of their JSON, responses as their
  ``rationale``; the queue columns, counters and search text do not change (same text, same edits).

Columns are dropped with ``ALTER TABLE ... DROP COLUMN`` on PostgreSQL and on SQLite >= 3.35 (no table is rebuilt,
so ``reviews.suggestion_id`` (ON DELETE SET NULL) and the search triggers stay untouched); an older SQLite rebuilds
the two tables in batch mode, which ``db.engine.init_db`` runs with foreign keys off and follows by restoring the
search triggers. Downgrade puts the four columns back from the JSON, and refuses while a dataset uses a dimension
outside the four (its text would have nowhere to go).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: what the app defined when this revision was written.
_FOUR = ("subjects", "attributes", "actions", "scenes")
_DEFAULT = [
    {"name": "subjects", "description": "who or what appears (people, animals, vehicles, objects)", "required": True},
    {"name": "attributes", "description": "their size, colour, clothing, count and state", "required": True},
    {"name": "actions", "description": "what they do, how they interact, and in what order", "required": True},
    {"name": "scenes", "description": "the place, lighting, time of day and camera view", "required": True},
]
_CHUNK = 2000


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, sa.column("id", sa.Integer()), sa.column("rationale", sa.JSON()),
                    *(sa.column(c, sa.Text()) for c in columns))


def _native_drop() -> bool:
    """``ALTER TABLE ... DROP COLUMN`` without a rebuild: PostgreSQL, and SQLite from 3.35."""
    bind = op.get_bind()
    return bind.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35, 0)


def _drop_columns(table: str, columns: Sequence[str]) -> None:
    if _native_drop():
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        return
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.drop_column(column)


def _chunks(table: sa.TableClause, columns: Sequence[str]):
    """Rows (id, *columns) of ``table`` in primary-key order, ``_CHUNK`` at a time."""
    bind, last = op.get_bind(), 0
    while True:
        rows = bind.execute(sa.select(table.c.id, *(table.c[c] for c in columns)).where(table.c.id > last)
                            .order_by(table.c.id).limit(_CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _copy_in(name: str, keep_empty: bool) -> None:
    """The four columns -> ``rationale``: every key (suggestions) or the non-NULL ones (reviews)."""
    table = _table(name, *_FOUR)
    write = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(rationale=sa.bindparam("text"))
    for rows in _chunks(table, _FOUR):
        values = []
        for row_id, *texts in rows:
            text = {d: t or "" for d, t in zip(_FOUR, texts)} if keep_empty else \
                {d: t for d, t in zip(_FOUR, texts) if t is not None}
            values.append({"row_id": row_id, "text": text})
        op.get_bind().execute(write, values)


def upgrade() -> None:
    # plain ADD COLUMN on both backends: never a rebuild of ``datasets`` (it would cascade to its videos)
    op.add_column("datasets", sa.Column("dimensions", sa.JSON(), nullable=False,
                                        server_default=sa.text("'" + json.dumps(_DEFAULT) + "'")))
    for name in ("suggestions", "reviews"):
        op.add_column(name, sa.Column("rationale", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    _copy_in("suggestions", keep_empty=True)
    _copy_in("reviews", keep_empty=False)
    _drop_columns("suggestions", _FOUR)
    _drop_columns("reviews", _FOUR)


def _refuse_other_dimensions() -> None:
    datasets = sa.table("datasets", sa.column("name", sa.String()), sa.column("dimensions", sa.JSON()))
    for name, dims in op.get_bind().execute(sa.select(datasets.c.name, datasets.c.dimensions)).all():
        others = [d.get("name") for d in dims or [] if d.get("name") not in _FOUR]
        if others:
            raise RuntimeError(
                f"dataset {name!r} uses the dimension(s) {', '.join(map(str, others))}, which schema revision 0007 "
                "cannot store (it has the four columns subjects, attributes, actions, scenes); export the dataset "
                "(`rbft export`) and delete it, or rename the dimensions to those four, before downgrading")


def _copy_out(name: str, keep_empty: bool) -> None:
    table = _table(name, *_FOUR)
    write = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(
        **{d: sa.bindparam(f"v_{d}") for d in _FOUR})
    for rows in _chunks(table, ("rationale",)):
        values = []
        for row_id, text in rows:
            text = text or {}
            values.append({"row_id": row_id, **{f"v_{d}": (text.get(d) or "") if keep_empty else text.get(d)
                                                 for d in _FOUR}})
        op.get_bind().execute(write, values)


def downgrade() -> None:
    _refuse_other_dimensions()
    for d in _FOUR:
        op.add_column("suggestions", sa.Column(d, sa.Text(), nullable=False, server_default=sa.text("''")))
        op.add_column("reviews", sa.Column(d, sa.Text(), nullable=True))
    _copy_out("suggestions", keep_empty=True)
    _copy_out("reviews", keep_empty=False)
    _drop_columns("suggestions", ["rationale"])
    _drop_columns("reviews", ["rationale"])
    _drop_columns("datasets", ["dimensions"])
