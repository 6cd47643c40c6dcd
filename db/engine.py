"""Engines, sessions and schema upgrades.

One engine per database URL per process (cached). SQLite files get WAL, foreign keys and a long busy
timeout on every connection, because the app, the CLI and background jobs write to the same file.
Sessions live for one user event or one job step: ``with session_scope(url) as s: ...`` commits on
success and rolls back on error; repository functions in ``db.queries`` only flush.

Schema upgrades are serialised between processes: a file lock next to a SQLite file, a PostgreSQL advisory
lock (``pg_advisory_lock``) on a server. A database whose schema is newer than this code is refused with
"upgrade the app" at start-up, and a write that fails because a newer app changed the schema under a running
one says the same instead of an SQL error.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db.search import ensure_search_objects
from rbft_core.errors import DataError
from rbft_core.settings import database_url

__all__ = [
    "make_engine",
    "init_db",
    "session_factory",
    "session_scope",
    "alembic_config",
    "dispose_engines",
    "MIGRATIONS_DIR",
    "known_revisions",
    "NewerSchemaError",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_upgraded: set[str] = set()
_known: list[set[str]] = []
MIGRATION_LOCK_KEY = 0x5242_4654_4D49_4752  # pg_advisory_lock key of RB-FT Studio's schema upgrades ("RBFTMIGR")


class NewerSchemaError(DataError):
    """The database was upgraded by a newer version of the app than this one."""


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser()


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """Return the process-wide engine for ``url`` (resolved by ``rbft_core.settings.database_url``)."""
    resolved = database_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is not None:
            return engine
        if make_url(resolved).get_backend_name() == "sqlite":
            path = _sqlite_file(resolved)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: Gradio runs handlers on worker threads; each handler still
            # opens its own session, so a connection is never used by two threads at once.
            engine = create_engine(resolved, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _set_sqlite_pragmas)
        else:
            engine = create_engine(resolved, pool_pre_ping=True)
        _engines[resolved] = engine
        return engine


def alembic_config(url: str | None = None) -> Any:
    """An Alembic ``Config`` built in code (no ini file needed), pointing at ``db/migrations``."""
    from alembic.config import Config  # alembic loads only when migrating

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal '%' in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _init_lock(url: str) -> Iterator[None]:
    """Serialise first-time schema creation between processes sharing one SQLite file."""
    path = _sqlite_file(url)
    if path is None:
        yield
        return
    try:
        import fcntl  # POSIX only: absent on Windows, where SQLite's own locking is used
    except ImportError:  # pragma: no cover - Windows: rely on SQLite's own locking
        yield
        return
    with open(f"{path}.init-lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def known_revisions() -> set[str]:
    """Every schema revision this code has a migration for."""
    from alembic.script import ScriptDirectory  # alembic loads only when migrating

    if not _known:
        scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
        _known.append({script.revision for script in scripts.walk_revisions()})
    return _known[0]


def _current_revision(connection: Any) -> str | None:
    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        connection.rollback()
        return None  # no schema yet


def _refuse_newer(revision: str | None, url: str) -> None:
    if revision is not None and revision not in known_revisions():
        raise NewerSchemaError(
            f"the database {make_url(url).render_as_string(hide_password=True)} has schema revision {revision!r}, "
            f"written by a newer version of RB-FT Studio than this one (it knows up to "
            f"{max(known_revisions())}); upgrade the app (git pull / pip install -U, then restart) before using it")


@contextlib.contextmanager
def _pg_migration_lock(connection: Any) -> Iterator[None]:
    """One schema upgrade at a time on a PostgreSQL server (the lock is the connection's, released at the end)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


def init_db(url: str | None = None) -> Engine:
    """Upgrade the database at ``url`` to the newest schema (Alembic ``upgrade head``); idempotent.

    Refused (``NewerSchemaError``) when a newer app already upgraded the database past what this code knows."""
    from alembic import command  # alembic loads only when migrating

    resolved = database_url(url)
    engine = make_engine(resolved)
    with _lock:
        if resolved in _upgraded:
            return engine
    cfg = alembic_config(resolved)
    with _init_lock(resolved), engine.connect() as connection, _pg_migration_lock(connection):
        _refuse_newer(_current_revision(connection), resolved)
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations recreate tables; with foreign keys on, dropping the old table would
            # cascade-delete child rows. The pragma only works outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            ensure_search_objects(connection)  # a batch rebuild of ``reviews`` drops SQLite's triggers
            connection.commit()
            if sqlite:
                _check_foreign_keys(connection)
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    with _lock:
        _upgraded.add(resolved)
    return engine


def _check_foreign_keys(connection: Any) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise DataError(
            f"the schema upgrade left {len(broken)} rows with dangling references in {', '.join(tables)}; "
            "restore the database backup and report this migration"
        )


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A cached ``sessionmaker`` for ``url``; objects stay usable after commit (``expire_on_commit=False``)."""
    resolved = database_url(url)
    with _lock:
        factory = _factories.get(resolved)
    if factory is None:
        factory = sessionmaker(bind=make_engine(resolved), expire_on_commit=False)
        with _lock:
            factory = _factories.setdefault(resolved, factory)
    return factory


@contextlib.contextmanager
def session_scope(url_or_factory: str | sessionmaker[Session] | None = None) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    factory = url_or_factory if isinstance(url_or_factory, sessionmaker) else session_factory(url_or_factory)
    session = factory()
    try:
        yield session
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        _explain_newer_schema(session, exc)
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _explain_newer_schema(session: Session, exc: DBAPIError) -> None:
    """A statement failed: when a newer app has changed the schema under this one, say so (not an SQL error)."""
    try:
        with session.bind.connect() as connection:  # type: ignore[union-attr]
            revision = _current_revision(connection)
    except Exception:  # noqa: BLE001 - the original error is the one to show then
        return
    if revision is not None and revision not in known_revisions():
        try:
            _refuse_newer(revision, str(session.bind.url))  # type: ignore[union-attr]
        except NewerSchemaError as newer:
            raise newer from exc


def dispose_engines() -> None:
    """Close every cached engine (tests, and child processes after fork)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
        _factories.clear()
        _upgraded.clear()
    for engine in engines:
        engine.dispose()


def _after_fork_in_child() -> None:
    """A forked child must not touch the parent's pooled connections (SQLite forbids it)."""
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _factories.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
