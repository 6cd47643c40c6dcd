"""``rbft backup`` / ``rbft restore``: online SQLite copies, checked before they are kept or used."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from db import queries
from db.engine import session_scope
from rbft_core.cli.main import main as rbft
from rbft_core.cli.admin import backup_database, restore_database
from rbft_core.errors import ConfigError, DataError, JobError


def _world(url: str, n: int = 3) -> list[int]:
    with session_scope(url) as s:
        ds = queries.get_or_create_dataset(s, "home", labels=["normal", "abnormal"])
        ids = []
        for i in range(n):
            video = queries.add_video(s, ds.id, external_id=f"v{i}", path=f"/v/{i}.mp4", sha256=f"{i:064x}",
                                      label="normal", split="train")
            queries.add_suggestion(s, video.id, model_id="m", prompt_version="p", subjects=f"s{i}", parse_status="ok")
            ids.append(video.review.id)
    return ids


def _subjects(url: str, review_id: int) -> str | None:
    with session_scope(url) as s:
        return queries.get_review(s, review_id).rationale.get("subjects")


def test_backup_while_writers_save_then_restore(db_url, tmp_path, capsys):
    ids = _world(db_url)
    with session_scope(db_url) as s:
        queries.save_review(s, ids[0], expected_version=1, reviewer="ann", subjects="before the backup")
    stop = threading.Event()
    saved = []

    def writer() -> None:  # the app keeps saving while the backup runs
        version = 1
        while not stop.is_set():
            with session_scope(db_url) as s:
                queries.save_review(s, ids[1], expected_version=version, reviewer="bob", subjects=f"edit {version}")
            saved.append(version)
            version += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert rbft(["--db", db_url, "backup", str(tmp_path / "b" / "copy.db")]) == 0
    finally:
        stop.set()
        thread.join()
    assert "integrity check ok" in capsys.readouterr().out and saved
    with session_scope(db_url) as s:
        queries.save_review(s, ids[0], expected_version=2, reviewer="ann", subjects="after the backup")

    assert rbft(["--db", db_url, "restore", str(tmp_path / "b" / "copy.db")]) == 0
    assert _subjects(db_url, ids[0]) == "before the backup"  # the backup's state is back
    bak = f"sqlite:///{tmp_path / 'rbft.db.bak'}"
    assert _subjects(bak, ids[0]) == "after the backup"  # and the replaced state is kept
    with session_scope(db_url) as s:
        assert "subjects" not in queries.get_review(s, ids[2]).rationale  # untouched rows survive too
        assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_backup_refuses_existing_target_and_postgresql(db_url, tmp_path):
    (tmp_path / "taken.db").write_text("x")
    with pytest.raises(ConfigError, match="already exists; pick a new name"):
        backup_database(db_url, tmp_path / "taken.db")
    with pytest.raises(ConfigError, match="use `pg_dump --format=custom"):
        backup_database("postgresql+psycopg://u@localhost/rbft", tmp_path / "pg.db")
    with pytest.raises(ConfigError, match="pg_restore"):
        restore_database("postgresql+psycopg://u@localhost/rbft", tmp_path / "taken.db")


def test_restore_refuses_bad_backups(db_url, tmp_path):
    import sqlite3

    ids = _world(db_url)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match="is not a readable SQLite database"):
        restore_database(db_url, garbage)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(DataError, match="is not an RB-FT Studio database"):
        restore_database(db_url, other)
    future = tmp_path / "future.db"
    backup_database(db_url, future)
    conn = sqlite3.connect(future)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    with pytest.raises(DataError, match="does not know"):
        restore_database(db_url, future)
    with pytest.raises(ConfigError, match="not found"):
        restore_database(db_url, tmp_path / "missing.db")
    assert _subjects(db_url, ids[0]) is None  # nothing was touched


def test_restore_refuses_while_a_job_runs(db_url, tmp_path, data_dir):
    from db import job_queries as jq

    _world(db_url)
    backup_database(db_url, tmp_path / "copy.db")
    with session_scope(db_url) as s:
        job_id = jq.create_job(s, "train", ["train", "home"], device="cpu", run_dir=None).id
    # a live process whose command line is this job's runner (what rbft_core.jobs.runner checks)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "rbft_core.jobs.runner", "run", str(job_id)])
    try:
        with session_scope(db_url) as s:
            jq.update_job(s, job_id, status="running", pid=proc.pid, pgid=proc.pid)
        with pytest.raises(JobError, match=f"jobs are still running: {job_id} \\(train, running\\); stop them"):
            restore_database(db_url, tmp_path / "copy.db")
    finally:
        proc.kill()
        proc.wait()
    restore_database(db_url, tmp_path / "copy.db")  # once the job is gone (marked interrupted) it goes ahead


def test_restore_refuses_while_the_app_runs(db_url, tmp_path, data_dir):
    """A running web app holds the database's app lock; restore refuses until it is stopped."""
    from tests.review_world import start_app, stop_app

    _world(db_url)
    backup_database(db_url, tmp_path / "copy.db")
    app, _url = start_app(db_url, data_dir)
    try:
        with pytest.raises(JobError, match="the web app is running on this database .*; stop the app"):
            restore_database(db_url, tmp_path / "copy.db")
    finally:
        stop_app(app)
    restore_database(db_url, tmp_path / "copy.db")  # the app is gone: it goes ahead
