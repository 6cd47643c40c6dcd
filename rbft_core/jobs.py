"""Detached background jobs: start, watch, stop, recover.

Every long task is an ``rbft`` CLI command run by ``python -m rbft_core.jobs run JOB_ID`` in its own
process group (``start_new_session``), so it survives the browser and an app restart. The DB row holds
status, pid/pgid, heartbeat and progress; a run folder (when there is one) is the source of truth for
training logs. Compute jobs take an exclusive lock on their device first (one at a time per device);
until they hold it they stay ``queued``.

Stop is graceful first: SIGTERM sets a flag that cooperative commands (generate, train) check at safe
points — the trainer then saves its adapter and exits — and the whole process group is killed after a
timeout. Only the job's own process group is ever signalled, after checking its command line.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from rbft_core.errors import JobError, RbftError

__all__ = [
    "COMPUTE_KINDS",
    "start_job",
    "stop_job",
    "stop_job_async",
    "job_status",
    "recover_jobs",
    "cancel_requested",
    "job_progress",
    "set_phase",
    "list_job_rows",
]

COMPUTE_KINDS = {"generate", "train", "pipeline", "evaluate", "mask-experiment", "demo-report"}
HEARTBEAT_S = 5.0
_cancel = threading.Event()


class JobCancelled(BaseException):
    """Raised in a non-cooperative job when a stop was asked for."""


def cancel_requested() -> bool:
    """True once this process (a job) was asked to stop; cooperative loops check it at safe points."""
    return _cancel.is_set()


def _session(db_url):
    from db.engine import session_scope

    return session_scope(db_url)


def default_device() -> str:
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def start_job(
    db_url: Optional[str],
    kind: str,
    argv: list[str],
    *,
    run_dir: Optional[str] = None,
    device: Optional[str] = None,
) -> int:
    """Record a job and spawn it detached; returns the job id. The CLI ``argv`` excludes ``rbft``."""
    from db import job_queries as jq
    from rbft_core.settings import data_dir, database_url

    url = database_url(db_url)
    if kind in COMPUTE_KINDS and device is None:
        device = default_device()
    with _session(url) as s:
        job_id = jq.create_job(s, kind, argv, device=device, run_dir=run_dir).id
    logs = data_dir() / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"job-{job_id}.log"
    env = dict(os.environ, RBFT_DATABASE_URL=url, RBFT_DATA_DIR=str(data_dir()), GRADIO_ANALYTICS_ENABLED="False")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rbft_core.jobs", "run", str(job_id)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: survives the app, killable as a group
            close_fds=True,
        )
    with _session(url) as s:
        jq.update_job(s, job_id, pid=proc.pid, pgid=proc.pid, log_path=str(log_path))
    return job_id


def _is_our_process(pid: Optional[int], job_id: int) -> bool:
    """The pid is alive and runs this job (guards against pid reuse)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    if stat and stat[0] == "Z":  # zombie: finished, waiting to be reaped
        return False
    return b"rbft_core.jobs" in cmdline and str(job_id).encode() in cmdline


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_job(db_url: Optional[str], job_id: int, *, timeout_s: float = 30.0) -> str:
    """Ask a job to stop (SIGTERM), then kill its process group after ``timeout_s``. Returns the final status."""
    from db import job_queries as jq

    with _session(db_url) as s:
        job = jq.get_job(s, job_id)
        status, pid, pgid = job.status, job.pid, job.pgid
    if status not in ("queued", "running"):
        return status
    if not _is_our_process(pid, job_id):
        with _session(db_url) as s:
            jq.update_job(s, job_id, status="cancelled", error="stopped before its process was found")
        return "cancelled"
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_process(pid, job_id):
        time.sleep(0.2)
    if _is_our_process(pid, job_id) or _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        with _session(db_url) as s:
            jq.update_job(s, job_id, status="cancelled", error=f"did not stop within {timeout_s:.0f} s; killed")
    with _session(db_url) as s:
        job = jq.get_job(s, job_id)
        if job.status in ("queued", "running"):  # killed before it could write its own status
            jq.update_job(s, job_id, status="cancelled")
        return job.status


def stop_job_async(db_url: Optional[str], job_id: int, *, timeout_s: float = 60.0) -> threading.Thread:
    """``stop_job`` in a daemon thread: a UI asks for a stop and keeps showing the job while it saves its
    adapter and ends (or is killed after ``timeout_s``)."""
    thread = threading.Thread(target=stop_job, args=(db_url, job_id), kwargs={"timeout_s": timeout_s},
                              name=f"stop-job-{job_id}", daemon=True)
    thread.start()
    return thread


def recover_jobs(db_url: Optional[str]) -> list[int]:
    """Mark jobs whose process is gone as interrupted (with a resume hint). Returns their ids."""
    from db import job_queries as jq

    lost = []
    with _session(db_url) as s:
        for job in jq.jobs_with_status(s, jq.ACTIVE_STATUSES):
            if _is_our_process(job.pid, job.id):
                continue
            hint = "rbft " + " ".join(job.command)
            if job.kind in {"train", "pipeline"} and "--resume" not in job.command:
                hint += " --resume"
            jq.update_job(s, job.id, status="interrupted",
                          error=f"the job's process ended without reporting (killed or machine restarted); resume with: {hint}")
            lost.append(job.id)
    return lost


def job_status(db_url: Optional[str], job_id: int) -> dict[str, Any]:
    from db import job_queries as jq

    with _session(db_url) as s:
        return _row(jq.get_job(s, job_id))


def list_job_rows(db_url: Optional[str], limit: int = 50) -> list[dict[str, Any]]:
    from db import job_queries as jq

    with _session(db_url) as s:
        return [_row(j) for j in jq.list_jobs(s, limit)]


def _row(job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "progress_text": job.progress_text,
        "error": job.error,
        "run_dir": job.run_dir,
        "log_path": job.log_path,
        "device": job.device,
        "command": "rbft " + " ".join(job.command),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "heartbeat_at": job.heartbeat_at,
    }


# ----------------------------------------------------------------------------------- inside the job
_current: dict[str, Any] = {}


def set_phase(index: int, count: int, name: str) -> None:
    """Multi-phase jobs (the pipeline): later progress maps into phase ``index`` of ``count``."""
    _current["phase"] = (index, count, name)
    job_progress(0, 1, "")


def job_progress(done: float, total: float, text: str = "") -> None:
    """Report progress from inside a job (throttled to one write a second); no-op outside jobs."""
    job_id = _current.get("job_id")
    if job_id is None:
        return
    fraction = float(done) / float(total or 1)
    if "phase" in _current:
        index, count, name = _current["phase"]
        fraction = (index + fraction) / count
        text = f"{name} ({index + 1}/{count})" + (f": {text}" if text else "")
    now = time.monotonic()
    final = total and done >= total
    if not final and now - _current.get("last_write", 0.0) < 1.0:
        return
    _current["last_write"] = now
    from db import job_queries as jq

    with _session(_current["db_url"]) as s:
        jq.update_job(s, job_id, progress=min(1.0, fraction), progress_text=text[:500])


@contextmanager
def _device_lock(device: Optional[str]) -> Iterator[None]:
    if not device:
        yield
        return
    from rbft_core.settings import data_dir

    locks = data_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"device-{device.replace(':', '')}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks while another job uses the device: we stay queued
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _heartbeat(db_url, job_id: int, stop: threading.Event) -> None:
    from datetime import datetime, timezone

    from db import job_queries as jq

    while not stop.wait(HEARTBEAT_S):
        try:
            with _session(db_url) as s:
                jq.update_job(s, job_id, heartbeat_at=datetime.now(timezone.utc))
        except Exception:  # a busy database must not kill the job; the next beat retries
            pass


def _run(job_id: int) -> int:
    from datetime import datetime, timezone

    from db import job_queries as jq
    from rbft_core.cli import build_parser

    db_url = os.environ.get("RBFT_DATABASE_URL")
    with _session(db_url) as s:
        job = jq.get_job(s, job_id)
        argv, device, kind = list(job.command), job.device, job.kind
    _current.update(job_id=job_id, db_url=db_url)
    cooperative = kind in {"generate", "train", "pipeline", "evaluate", "mask-experiment"}

    def on_term(signum, frame):
        _cancel.set()
        if not cooperative:
            raise JobCancelled()

    signal.signal(signal.SIGTERM, on_term)
    stop_beat = threading.Event()
    status, error = "failed", None
    try:
        with _device_lock(device):
            if _cancel.is_set():
                raise JobCancelled()
            with _session(db_url) as s:
                jq.update_job(s, job_id, status="running", heartbeat_at=datetime.now(timezone.utc))
            threading.Thread(target=_heartbeat, args=(db_url, job_id, stop_beat), daemon=True).start()
            args = build_parser().parse_args(argv)
            rc = int(args.func(args) or 0)
            status = "cancelled" if _cancel.is_set() else ("succeeded" if rc == 0 else "failed")
            if rc and status == "failed":
                error = f"command exited with status {rc}"
    except JobCancelled:
        status = "cancelled"
    except RbftError as exc:
        status, error = "failed", str(exc)
    except SystemExit as exc:  # argparse errors
        status, error = "failed", f"invalid command line (exit {exc.code}): rbft {' '.join(argv)}"
    except BaseException as exc:  # noqa: BLE001 - the job row must say what happened
        status, error = "failed", _describe(exc)
        traceback.print_exc()
    finally:
        stop_beat.set()
    with _session(db_url) as s:
        changes: dict[str, Any] = {"status": status, "error": error}
        if status == "succeeded":
            changes["progress"] = 1.0
        jq.update_job(s, job_id, **changes)
    print(f"job {job_id} {status}" + (f": {error}" if error else ""), flush=True)
    return 0 if status == "succeeded" else 1


def _describe(exc: BaseException) -> str:
    text = f"{exc.__class__.__name__}: {exc}"
    if "out of memory" in str(exc).lower():
        text = (
            "CUDA out of memory; lower --frames, --max-pixels or --batch-size (or raise gradient accumulation) "
            f"and resume. ({str(exc).splitlines()[0]})"
        )
    return text


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != "run" or not argv[1].isdigit():
        print("usage: python -m rbft_core.jobs run JOB_ID", file=sys.stderr)
        return 2
    return _run(int(argv[1]))


if __name__ == "__main__":
    # Run through the imported module, not __main__: the CLI code reads rbft_core.jobs' state
    # (the stop flag, the job id for progress), which must be the same objects the runner sets.
    from rbft_core import jobs as _jobs

    sys.exit(_jobs.main())
