"""Per-test PostgreSQL databases on the server named by ``RBFT_TEST_PG_URL`` (see tests/pg_cluster.py)."""

from __future__ import annotations

import os
import uuid
from typing import Optional

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

__all__ = ["connect_admin", "create_database", "drop_database", "database_url_for"]


def connect_admin() -> tuple[Optional[Engine], str]:
    """(autocommit engine, "") on the test server, or (None, why not)."""
    url = os.environ.get("RBFT_TEST_PG_URL")
    if not url:
        return None, ("no PostgreSQL test server: set RBFT_TEST_PG_URL (an admin URL) or run "
                      "`make test`, which starts a throwaway cluster")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        engine.dispose()
        return None, f"PostgreSQL test server at {make_url(url).render_as_string()} is not reachable: {exc}"
    return engine, ""


def database_url_for(admin: Engine, name: str) -> str:
    return admin.url.set(database=name).render_as_string(hide_password=False)


def create_database(admin: Engine, *, template: Optional[str] = None, migrate: bool = False) -> str:
    """A new database (a copy of ``template`` when given; migrated to head with ``migrate``); returns its name."""
    name = f"rbft_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    if migrate:
        from db.engine import dispose_engines, init_db

        init_db(database_url_for(admin, name))
        dispose_engines()  # a template must have no open connections when it is copied
    return name


def drop_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
