"""Jobs tell the truth (issue #14): children are reaped, a final status is never overwritten, liveness is judged
per host (process table here, heartbeat elsewhere, boot id after a reboot), new jobs get a grace period."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.errors import JobError
from rbft_core.jobs.runner import boot_id, job_status, recover_jobs, start_job, stop_job, this_host
from rbft_core.specs import ImportSpec

pytestmark = pytest.mark.both_backends


def _job(url, **fields) -> int:
    with session_scope(url) as s:
        job_id = jq.create_job(s, "train", [], device="cpu", run_dir=None).id
        jq.update_job(s, job_id, **fields)
    return job_id


def _zombie_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return None  # gone: reaped


def test_a_finished_job_is_reaped_and_stop_leaves_its_status(tmp_path, db_url, data_dir):
    from tests.helpers import make_video

    make_video(tmp_path / "v" / "normal" / "a.mp4")
    make_video(tmp_path / "v" / "abnormal" / "b.mp4", color_seed=1)
    job_id = start_job(db_url, ImportSpec(dataset="quick", source=str(tmp_path / "v")))
    deadline = time.monotonic() + 120
    while job_status(db_url, job_id)["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pid = job_status(db_url, job_id)
    with session_scope(db_url) as s:
        pid = jq.get_job(s, job_id).pid
    deadline = time.monotonic() + 10
    while _zombie_state(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _zombie_state(pid) is None, "the finished job is still a zombie of the app"
    assert stop_job(db_url, job_id, timeout_s=5) == "succeeded"
    assert job_status(db_url, job_id)["error"] is None


_FAKE_JOB = textwrap.dedent("""
    import signal, sys, time
    from db import job_queries as jq
    from db.engine import session_scope

    def done(*_):  # the job finishes on its own just as the stop arrives, and writes its final status
        with session_scope(sys.argv[1]) as s:
            jq.update_job(s, int(sys.argv[4]), status="succeeded", progress=1.0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    print("ready", flush=True)
    time.sleep(120)
""")


def test_a_final_status_is_never_overwritten_by_a_late_stop(db_url, data_dir):
    """The job ends (and becomes a zombie of a parent that did not reap it) while the stop waits: the stop
    must not SIGKILL-and-report it as "did not stop; killed" over its "succeeded"."""
    job_id = _job(db_url, status="running")
    script = data_dir / "fake_job.py"
    script.write_text(_FAKE_JOB)
    # argv carries "rbft_core.jobs.runner run ID" like a real job, so stop_job recognises it
    proc = subprocess.Popen([sys.executable, str(script), db_url, "rbft_core.jobs.runner", "run", str(job_id)],
                            stdout=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    try:
        assert proc.stdout.readline().strip() == b"ready"
        with session_scope(db_url) as s:
            jq.update_job(s, job_id, pid=proc.pid, pgid=proc.pid)
        assert stop_job(db_url, job_id, timeout_s=10) == "succeeded"
        status = job_status(db_url, job_id)
        assert (status["status"], status["error"], status["progress"]) == ("succeeded", None, 1.0)
    finally:
        proc.kill()
        proc.wait()
    with session_scope(db_url) as s:  # any later status change is ignored too
        jq.update_job(s, job_id, status="interrupted", error="guessed wrong")
    assert (job_status(db_url, job_id)["status"], job_status(db_url, job_id)["error"]) == ("succeeded", None)


def test_liveness_is_judged_per_host_with_heartbeats_and_a_start_grace(db_url, data_dir):
    now = datetime.now(timezone.utc)
    elsewhere_fresh = _job(db_url, status="running", host="gpu-node-7", pid=1, heartbeat_at=now - timedelta(seconds=10))
    elsewhere_stale = _job(db_url, status="running", host="gpu-node-7", pid=1, heartbeat_at=now - timedelta(minutes=5))
    queued_elsewhere = _job(db_url, status="queued", host="gpu-node-8", heartbeat_at=now)  # queued jobs beat too
    rebooted = _job(db_url, status="running", host=this_host(), boot_id="0" * 36, pid=os.getpid())
    starting = _job(db_url, status="queued", host=this_host(), boot_id=boot_id())  # no pid yet: being started
    with session_scope(db_url) as s:
        stuck = jq.create_job(s, "train", [], device="cpu", run_dir=None, host=this_host(), boot_id=boot_id()).id
        jq.get_job(s, stuck).created_at = now - timedelta(minutes=3)
    lost = recover_jobs(db_url)
    assert sorted(lost) == sorted([elsewhere_stale, rebooted, stuck])
    assert "no heartbeat from host gpu-node-7 for " in job_status(db_url, elsewhere_stale)["error"]
    assert "the machine restarted" in job_status(db_url, rebooted)["error"]
    for alive in (elsewhere_fresh, queued_elsewhere, starting):
        assert job_status(db_url, alive)["status"] in ("queued", "running")
    with pytest.raises(JobError, match="runs on host gpu-node-7, not on this one"):
        stop_job(db_url, elsewhere_fresh)


def test_started_jobs_record_their_host_and_boot(tmp_path, db_url, data_dir, monkeypatch):
    import rbft_core.jobs.runner as runner

    real_popen = subprocess.Popen
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **kw: real_popen(["true"]))
    job_id = start_job(db_url, ImportSpec(dataset="x", source=str(tmp_path)))
    with session_scope(db_url) as s:
        job = jq.get_job(s, job_id)
        assert (job.host, job.boot_id) == (this_host(), boot_id()) and job.boot_id
