"""Schema upgrades between several processes and versions (issue #14): migrations run one at a time (a file
lock for SQLite, an advisory lock on PostgreSQL); a schema newer than the code is refused with "upgrade the
app", also for a write of an app that was already running when a newer one changed the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from db import queries
from db.engine import NewerSchemaError, dispose_engines, init_db, make_engine, session_scope

pytestmark = pytest.mark.both_backends

REPO = Path(__file__).resolve().parents[2]


def test_concurrent_first_starts_migrate_once(empty_db_url):
    """Four processes start on an empty database at once (app, CLI, jobs): all succeed, the schema is built once."""
    code = "import sys; from db.engine import init_db; init_db(sys.argv[1]); print('ok')"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code, empty_db_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env) for _ in range(4)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err.decode()[-1500:] for _, err in results]
    with make_engine(empty_db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def _pretend_a_newer_app_upgraded(url: str) -> None:
    """What a future version does: a schema change and a revision this code does not know."""
    with make_engine(url).begin() as conn:
        conn.execute(text("ALTER TABLE datasets RENAME COLUMN criteria TO criteria_text"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))


def test_a_newer_schema_is_refused_at_start_with_upgrade_the_app(db_url):
    _pretend_a_newer_app_upgraded(db_url)
    dispose_engines()  # a fresh process: nothing known about this database yet
    with pytest.raises(NewerSchemaError, match="schema revision '0099', written by a newer version .* upgrade the app"):
        init_db(db_url)


def test_a_running_older_app_gets_upgrade_the_app_for_a_failing_write(db_url):
    init_db(db_url)  # this app started (and checked the schema) before the newer one upgraded it
    _pretend_a_newer_app_upgraded(db_url)
    with pytest.raises(NewerSchemaError, match="upgrade the app"):
        with session_scope(db_url) as s:
            queries.get_or_create_dataset(s, "after-upgrade", labels=["normal", "abnormal"])
    with make_engine(db_url).begin() as conn:  # nothing was half-written
        assert conn.execute(text("SELECT count(*) FROM datasets")).scalar() == 0
