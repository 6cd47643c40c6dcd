"""``rbft backup`` and ``rbft restore``: copies of a SQLite database that are safe while the app runs.

Both use SQLite's online backup API (``sqlite3.Connection.backup``), which copies a consistent snapshot
page by page under SQLite's own locking, so the app and jobs may keep reading and writing. A backup is
checked (``PRAGMA integrity_check``) before it is kept. A restore first checks the backup (integrity,
an Alembic revision this code knows), refuses while the web app or jobs run, keeps the current database as
``<file>.bak`` (itself an online backup), then copies the backup into the live file and upgrades it to
the newest schema. PostgreSQL databases are backed up with ``pg_dump`` / ``pg_restore`` instead.
"""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy.engine import make_url

from db import job_queries as jq
from db.engine import alembic_config, dispose_engines, init_db, session_scope
from rbft_core.errors import ConfigError, DataError, JobError
from rbft_core.jobs.runner import recover_jobs
from rbft_core.locks import exclusive_app_lock
from rbft_core.settings import database_url

__all__ = ["BackupReport", "backup_database", "restore_database", "register"]


@dataclass(frozen=True)
class BackupReport:
    source: Path
    target: Path
    size_bytes: int
    revision: Optional[str]


def _sqlite_path(db_url: Optional[str], action: str) -> Path:


    url = make_url(database_url(db_url))
    if url.get_backend_name() != "sqlite":
        tool = "pg_dump --format=custom --file rbft.dump" if action == "backup" else "pg_restore --clean --dbname"
        raise ConfigError(f"rbft {action} works on SQLite files; this database is {url.get_backend_name()} "
                          f"({url.render_as_string()}): use `{tool} {url.database}` instead")
    if not url.database or url.database == ":memory:":
        raise ConfigError(f"rbft {action} needs a SQLite file, not an in-memory database")
    return Path(url.database).expanduser().resolve()


def _check(path: Path, what: str) -> Optional[str]:
    """Integrity and schema revision of a SQLite file; raises DataError naming what is wrong."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = (conn.execute("SELECT version_num FROM alembic_version").fetchone() or [None])[0] \
                if "alembic_version" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{what} {path} is not a readable SQLite database ({exc}); pick another backup file") from exc
    if result != "ok":
        raise DataError(f"{what} {path} failed the integrity check ({result}); pick another backup file")
    if revision is None or "reviews" not in tables:
        raise DataError(f"{what} {path} is not an RB-FT Studio database (no schema revision or reviews table); "
                        "pick a file written by `rbft backup`")
    return revision


def _copy(source: sqlite3.Connection, target_path: Path) -> None:
    target = sqlite3.connect(str(target_path), timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()


def backup_database(db_url: Optional[str], target: str | Path) -> BackupReport:
    """Copy the live database to ``target`` (a new file) with the online backup API, then verify the copy."""
    source_path = _sqlite_path(db_url, "backup")
    target = Path(target).expanduser().resolve()
    if not source_path.exists():
        raise DataError(f"database {source_path} does not exist; nothing to back up (check --db / RBFT_DATABASE_URL)")
    if target.exists():
        raise ConfigError(f"backup file {target} already exists; pick a new name or delete it first")
    if target == source_path:
        raise ConfigError("the backup file must not be the database itself; pick another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(str(source_path), timeout=30)
    try:
        _copy(source, partial)
    finally:
        source.close()
    try:
        revision = _check(partial, "the new backup")
    except DataError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return BackupReport(source_path, target, target.stat().st_size, revision)


def _known_revision(revision: str) -> None:
    from alembic.script import ScriptDirectory  # alembic loads only when migrating


    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {script.revision for script in scripts.walk_revisions()}
    if revision not in known:
        raise DataError(f"the backup has schema revision {revision!r}, which this version of RB-FT Studio does not "
                        f"know (newest here: {scripts.get_current_head()}); restore it with the version that wrote it")


def _refuse_while_jobs_run(db_url: Optional[str], live: Path) -> None:
    if not live.exists():
        return

    recover_jobs(db_url)  # jobs whose process is gone are not "running"
    with session_scope(db_url) as s:
        active = [f"{job.id} ({job.kind}, {job.status})" for job in jq.jobs_with_status(s, jq.ACTIVE_STATUSES)]
    if active:
        raise JobError(f"jobs are still running: {', '.join(active)}; stop them (`rbft stop ID`) or wait, "
                       "then restore (a restore under a running job would lose its results)")


def restore_database(db_url: Optional[str], backup: str | Path) -> BackupReport:
    """Replace the live database's content with ``backup``; the old content is kept as ``<file>.bak``."""

    live = _sqlite_path(db_url, "restore")
    backup = Path(backup).expanduser().resolve()
    if not backup.is_file():
        raise ConfigError(f"backup file {backup} not found; give the path `rbft backup` wrote")
    if backup == live:
        raise ConfigError("the backup file is the live database itself; pick the backup file")
    revision = _check(backup, "backup")
    _known_revision(revision)
    with exclusive_app_lock(db_url, "restore"):  # the app holds it shared while it runs
        _refuse_while_jobs_run(db_url, live)
        _replace(live, backup)
    return BackupReport(backup, live, live.stat().st_size, revision)


def _replace(live: Path, backup: Path) -> None:
    dispose_engines()
    if live.exists():
        keep = live.with_name(live.name + ".bak")
        keep.unlink(missing_ok=True)
        current = sqlite3.connect(str(live), timeout=30)
        try:
            _copy(current, keep)
        finally:
            current.close()
    live.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True, timeout=30)
    try:
        _copy(source, live)  # page by page under SQLite's locks: other connections see old or new, never half
    finally:
        source.close()
    init_db(str(live))  # an older backup is upgraded to the newest schema
    dispose_engines()


def cmd_backup(args: argparse.Namespace) -> int:
    report = backup_database(args.db, args.path)
    print(f"backed up {report.source} to {report.target} ({report.size_bytes:,} bytes, schema {report.revision}); "
          "integrity check ok")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    report = restore_database(args.db, args.path)
    print(f"restored {report.target} from {report.source} (schema {report.revision}); the previous database is "
          f"kept as {report.target}.bak")
    return 0


def register(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("backup", help="copy the SQLite database to a file (safe while the app runs)")
    p.add_argument("path", help="new file to write")
    common(p)
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="replace the SQLite database with a backup (the old one is kept as .bak)")
    p.add_argument("path", help="a file written by `rbft backup`")
    common(p)
    p.set_defaults(func=cmd_restore)
