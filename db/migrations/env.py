"""Alembic environment: run with ``db.engine.init_db`` (connection passed in) or the ``alembic`` CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from db.engine import make_engine
from db.models import Base
from db.search import include_object
from rbft_core.settings import database_url

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":", 1)[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=dialect.startswith("sqlite"),
        compare_type=True,
        include_object=include_object,  # the search index lives outside db.models
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=database_url(config.get_main_option("sqlalchemy.url") or None))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with make_engine(config.get_main_option("sqlalchemy.url") or None).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # same as db.engine.init_db: batch table rebuilds must not cascade deletes
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
