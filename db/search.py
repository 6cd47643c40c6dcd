"""Free-text search of the review queue through an index: SQLite FTS5, PostgreSQL tsvector (GIN).

The searched text is ``reviews.search_doc`` (``db.review_state.search_document``: the video id, the
suggestion's conclusion and dimensions, the reviewer's text). On SQLite an external-content FTS5 table
``review_fts`` indexes it, kept by three triggers on ``reviews``; on PostgreSQL a GIN index on
``to_tsvector('simple', search_doc)`` (built in; ``pg_trgm`` is not needed, Debian ships it separately).

A search matches reviews holding every word of the text as a word or the start of one ("hood" finds
"hoodie"; "clip_007" is the words "clip" and "007"); text with no letters or digits filters nothing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import column, func, literal_column, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from db.models import Review

__all__ = ["search_words", "restrict", "unindexed", "ensure_search_objects", "drop_search_objects", "include_object",
           "SEARCH_OBJECTS"]

MAX_WORDS = 16
_WORD = re.compile(r"[^\W_]+")

# Objects the migrations create outside ``db.models`` (Alembic's comparison leaves them alone).
SEARCH_OBJECTS = frozenset({"review_fts", "review_fts_data", "review_fts_idx", "review_fts_docsize",
                            "review_fts_config", "review_fts_content", "ix_reviews_search"})

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS review_fts USING fts5(search_doc, content='reviews', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS reviews_fts_insert AFTER INSERT ON reviews BEGIN "
    "INSERT INTO review_fts(rowid, search_doc) VALUES (new.id, new.search_doc); END",
    "CREATE TRIGGER IF NOT EXISTS reviews_fts_delete AFTER DELETE ON reviews BEGIN "
    "INSERT INTO review_fts(review_fts, rowid, search_doc) VALUES ('delete', old.id, old.search_doc); END",
    "CREATE TRIGGER IF NOT EXISTS reviews_fts_update AFTER UPDATE OF search_doc ON reviews "
    "WHEN old.search_doc IS NOT new.search_doc BEGIN "
    "INSERT INTO review_fts(review_fts, rowid, search_doc) VALUES ('delete', old.id, old.search_doc); "
    "INSERT INTO review_fts(rowid, search_doc) VALUES (new.id, new.search_doc); END",
)
_SQLITE_TRIGGERS = ("reviews_fts_insert", "reviews_fts_delete", "reviews_fts_update")
_PG_INDEX = "CREATE INDEX IF NOT EXISTS ix_reviews_search ON reviews USING gin (to_tsvector('simple', search_doc))"


def search_words(text: str) -> list[str]:
    """The words of a search text, lower-cased (at most 16)."""
    return _WORD.findall((text or "").lower())[:MAX_WORDS]


def restrict(stmt: Any, dialect: str, words: list[str]) -> Any:
    """``stmt`` (a SELECT from ``reviews``) kept to reviews holding every word as a word prefix, through the index.

    SQLite: ``id IN`` the FTS5 matches (the caller writes its other conditions with ``unindexed`` so that the
    planner looks each match up by primary key instead of walking a dataset's queue index and testing every
    row); PostgreSQL: the tsvector condition the GIN index answers.
    """
    if dialect == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        vector = func.to_tsvector(literal_column("'simple'"), Review.search_doc)
        return stmt.where(vector.op("@@")(func.to_tsquery(literal_column("'simple'"), query)))
    fts = table("review_fts", column("rowid"))
    query = " AND ".join(f'"{w}"*' for w in words)
    return stmt.where(Review.id.in_(select(fts.c.rowid).where(literal_column("review_fts").op("MATCH")(query))))


def unindexed(expression: Any) -> Any:
    """SQLite's unary ``+``: the same value, but a condition on it does not pick an index."""
    return UnaryExpression(expression, operator=operators.custom_op("+"), type_=expression.type)


def ensure_search_objects(connection: Connection, *, rebuild: bool = False) -> None:
    """Create the search index (and on SQLite its triggers) when missing; ``rebuild`` re-reads every review.

    A SQLite migration that rebuilds ``reviews`` (batch mode) drops its triggers; ``db.engine.init_db`` calls
    this after every upgrade, so they come back and the index is rebuilt from ``search_doc``.
    """
    if connection.dialect.name == "postgresql":
        # CREATE INDEX IF NOT EXISTS would still lock the table: look first
        if connection.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_reviews_search'").first() is None:
            connection.exec_driver_sql(_PG_INDEX)
        return
    present = {row[0] for row in connection.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE name IN ('review_fts', 'reviews_fts_insert', 'reviews_fts_delete', "
        "'reviews_fts_update')")}
    if present >= {"review_fts", *_SQLITE_TRIGGERS} and not rebuild:
        return
    for statement in _SQLITE_DDL:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql("INSERT INTO review_fts(review_fts) VALUES ('rebuild')")


def drop_search_objects(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP INDEX IF EXISTS ix_reviews_search")
        return
    for trigger in _SQLITE_TRIGGERS:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    connection.exec_driver_sql("DROP TABLE IF EXISTS review_fts")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object``: the search objects are not in ``db.models`` and are left alone."""
    return name not in SEARCH_OBJECTS
