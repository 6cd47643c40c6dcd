"""Detached background jobs: start, watch, stop, recover.

A job is a task spec (``rbft_core.specs``) written to ``data/jobs/job-<id>/spec.yaml`` and run by
``python -m rbft_core.jobs.runner run JOB_ID`` in its own process group (``start_new_session``), so it survives
the browser and an app restart; ``rbft run <that file>`` runs the same thing by hand. The DB row holds kind,
dataset, model, spec path, status, pid/pgid, heartbeat and progress; a run folder (when there is one) is the
source of truth for training logs. Compute jobs take an exclusive lock on their device first (one at a time per
device); until they hold it they stay ``queued``.

Stop is graceful first: SIGTERM sets a flag the task's ``should_stop()`` reads at safe points (the trainer
then saves its adapter and exits: "stopped, adapter saved at step N"), and the whole process group is killed
after a timeout. Only the job's own process group is ever signalled, after checking its command line. The app
reaps the jobs it started (a finished job never lingers as a zombie holding its group), and a final status a
job wrote (succeeded, failed, cancelled) is never overwritten.

Liveness: a job row records its host and boot id. On that machine a job is alive while its process is; after a
reboot it is lost; from another machine it is alive while its heartbeat (also sent while queued) is fresh. A
job younger than ``START_GRACE_S`` that has no process id yet is being started, not lost.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.errors import JobError, RbftError
from rbft_core.jobs.execute import TaskHooks, execute
from rbft_core.locks import device_lock
from rbft_core.settings import data_dir, database_url
from rbft_core.specs import Spec, load_spec

__all__ = ["COMPUTE_KINDS", "start_job", "stop_job", "stop_job_async", "job_status", "recover_jobs",
           "list_job_rows", "job_spec_path", "run_command"]

COMPUTE_KINDS = {"generate", "train", "pipeline", "evaluate", "mask-experiment", "attention", "export-model"}
# tasks that check should_stop() at safe points; the others end at once on SIGTERM
COOPERATIVE_KINDS = {"generate", "train", "pipeline", "evaluate", "mask-experiment", "attention"}
HEARTBEAT_S = 5.0
PROGRESS_EVERY_S = 1.0
STALE_HEARTBEAT_S = 12 * HEARTBEAT_S  # a job on another host with no heartbeat for this long is lost
START_GRACE_S = 60.0  # a job row without a process id yet is being started for this long


class JobCancelled(BaseException):
    """Raised in a non-cooperative job when a stop was asked for."""


def default_device() -> str:
    try:
        import torch  # heavy: only to learn whether a GPU is there

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def job_spec_path(job_id: int) -> Path:
    return data_dir() / "jobs" / f"job-{job_id}" / "spec.yaml"


def this_host() -> str:
    return socket.gethostname()


def boot_id() -> Optional[str]:
    """This boot of this machine (Linux); None elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def run_command(spec_path: str | Path) -> str:
    """The command a job runs, as a user would type it."""
    return shlex.join(["rbft", "run", str(spec_path)])


def _identity(spec: Spec) -> tuple[Optional[str], Optional[str]]:
    """(dataset, model) a spec names, for the jobs table."""
    inner = getattr(spec, "stage1", None) or spec
    dataset = getattr(inner, "dataset", None) or None
    model = getattr(inner, "model", None) or getattr(spec, "run", None) or None
    return dataset, model


def start_job(db_url: Optional[str], spec: Spec, *, device: Optional[str] = None) -> int:
    """Record a job, write its spec file and spawn it detached; returns the job id."""
    url = database_url(db_url)
    if spec.task in COMPUTE_KINDS and device is None:
        device = default_device()
    dataset, model = _identity(spec)
    with session_scope(url) as s:
        job_id = jq.create_job(s, spec.task, [], device=device, run_dir=None, dataset=dataset, model=model,
                               host=this_host(), boot_id=boot_id()).id
    path = spec.write(job_spec_path(job_id))
    log_path = path.parent / "job.log"
    with session_scope(url) as s:
        jq.update_job(s, job_id, spec_path=str(path), command=["run", str(path)], log_path=str(log_path))
    env = dict(os.environ, RBFT_DATABASE_URL=url, RBFT_DATA_DIR=str(data_dir()), GRADIO_ANALYTICS_ENABLED="False")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rbft_core.jobs.runner", "run", str(job_id)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: survives the app, killable as a group
            close_fds=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-job-{job_id}", daemon=True).start()  # no zombie stays behind
    with session_scope(url) as s:
        jq.update_job(s, job_id, pid=proc.pid, pgid=proc.pid)
    return job_id


def _is_our_process(pid: Optional[int], job_id: int) -> bool:
    """The pid is alive and runs this job (guards against pid reuse)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:  # the process ended while we read
        return False
    if stat and stat[0] == "Z":  # zombie: finished, waiting to be reaped
        return False
    return b"rbft_core.jobs.runner" in cmdline and str(job_id).encode() in cmdline


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_job(db_url: Optional[str], job_id: int, *, timeout_s: float = 30.0) -> str:
    """Ask a job to stop (SIGTERM), then kill its process group after ``timeout_s``. Returns the final status.

    The job's own final status stands: "cancelled" with "stopped, adapter saved at step N" after a graceful
    stop, or "succeeded" when it ended just before the request. Only a job still running at the deadline is
    recorded as killed."""
    with session_scope(db_url) as s:
        job = jq.get_job(s, job_id)
        status, pid, pgid, host = job.status, job.pid, job.pgid, job.host
    if status not in jq.ACTIVE_STATUSES:
        return status
    if host and host != this_host():
        raise JobError(f"job {job_id} runs on host {host}, not on this one ({this_host()}); stop it there with "
                       f"`rbft stop {job_id}`")
    if not _is_our_process(pid, job_id):
        with session_scope(db_url) as s:
            jq.update_job(s, job_id, status="cancelled", error="stopped before its process was found")
            return jq.get_job(s, job_id).status
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_process(pid, job_id):
        time.sleep(0.2)
    killed = _is_our_process(pid, job_id)
    if killed or _group_alive(pgid):  # the job itself, or helpers it left behind (data loader workers)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with session_scope(db_url) as s:
        if killed:
            jq.update_job(s, job_id, status="cancelled", error=f"did not stop within {timeout_s:.0f} s; killed")
        elif jq.get_job(s, job_id).status in jq.ACTIVE_STATUSES:  # ended before it could write its own status
            jq.update_job(s, job_id, status="cancelled", error="stopped")
        return jq.get_job(s, job_id).status


def stop_job_async(db_url: Optional[str], job_id: int, *, timeout_s: float = 60.0) -> threading.Thread:
    """``stop_job`` in a daemon thread: a UI asks for a stop and keeps showing the job while it saves its
    adapter and ends (or is killed after ``timeout_s``)."""
    thread = threading.Thread(target=stop_job, args=(db_url, job_id), kwargs={"timeout_s": timeout_s},
                              name=f"stop-job-{job_id}", daemon=True)
    thread.start()
    return thread


def recover_jobs(db_url: Optional[str]) -> list[int]:
    """Mark jobs whose process is gone as interrupted (with a resume hint). Returns their ids."""
    lost = []
    now = datetime.now(timezone.utc)
    with session_scope(db_url) as s:
        for job in jq.jobs_with_status(s, jq.ACTIVE_STATUSES):
            why = _lost_because(job, now)
            if why is None:
                continue
            jq.update_job(s, job.id, status="interrupted", error=f"{why}; {_resume_hint(s, job)}")
            lost.append(job.id)
    return lost


def _age_s(moment: Optional[datetime], now: datetime) -> float:
    if moment is None:
        return float("inf")
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return (now - moment).total_seconds()


def _lost_because(job, now: datetime) -> Optional[str]:
    """Why an active job is lost, or None while it may be alive."""
    if job.host and job.host != this_host():
        age = _age_s(job.heartbeat_at or job.started_at or job.created_at, now)
        if age <= STALE_HEARTBEAT_S:
            return None
        return f"no heartbeat from host {job.host} for {age:.0f} s (the job or its machine stopped)"
    if job.boot_id and boot_id() and job.boot_id != boot_id():
        return "the machine restarted while the job ran"
    if _is_our_process(job.pid, job.id):
        return None
    if job.pid is None and _age_s(job.created_at, now) < START_GRACE_S:
        return None  # its process is being started
    return "the job's process ended without reporting (killed or machine restarted)"


def _resume_hint(session, job) -> str:
    if not job.spec_path:
        return "start it again"
    if job.kind == "train":
        run_id = jq.run_id_of_job(session, job.id)
        if run_id:  # without the run id --resume would start a new run
            return "resume with: " + shlex.join(["rbft", "train", "--resume", "--run-id", run_id])
    return "run it again with: " + run_command(job.spec_path)


def job_status(db_url: Optional[str], job_id: int) -> dict[str, Any]:
    with session_scope(db_url) as s:
        return _row(jq.get_job(s, job_id))


def list_job_rows(db_url: Optional[str], limit: int = 50) -> list[dict[str, Any]]:
    with session_scope(db_url) as s:
        return [_row(j) for j in jq.list_jobs(s, limit)]


def _row(job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "dataset": job.dataset,
        "model": job.model,
        "spec_path": job.spec_path,
        "progress": job.progress,
        "progress_text": job.progress_text,
        "error": job.error,
        "run_dir": job.run_dir,
        "log_path": job.log_path,
        "device": job.device,
        "command": run_command(job.spec_path) if job.spec_path else shlex.join(["rbft", *map(str, job.command)]),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "heartbeat_at": job.heartbeat_at,
    }


# ----------------------------------------------------------------------------------- inside the job
class _JobProgress:
    """``progress(done, total, text)`` for a task: the job row, at most once a second (and at the end)."""

    def __init__(self, db_url: Optional[str], job_id: int):
        self.db_url, self.job_id, self.last = db_url, job_id, 0.0

    def __call__(self, done: float, total: float, text: str = "") -> None:
        now = time.monotonic()
        final = bool(total) and done >= total
        if not final and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        with session_scope(self.db_url) as s:
            jq.update_job(s, self.job_id, progress=min(1.0, float(done) / float(total or 1)), progress_text=text[:500])


def _heartbeat(db_url, job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            with session_scope(db_url) as s:
                jq.update_job(s, job_id, heartbeat_at=datetime.now(timezone.utc))
        except Exception:  # a busy database must not kill the job; the next beat retries
            pass


def _run(job_id: int) -> int:
    db_url = os.environ.get("RBFT_DATABASE_URL")
    with session_scope(db_url) as s:
        job = jq.get_job(s, job_id)
        spec_path, device, kind = job.spec_path, job.device, job.kind
    cancel, holds_device = threading.Event(), threading.Event()

    def on_term(signum, frame):
        cancel.set()
        if kind not in COOPERATIVE_KINDS or not holds_device.is_set():  # queued: nothing to save, end now
            raise JobCancelled()

    signal.signal(signal.SIGTERM, on_term)
    stop_beat = threading.Event()
    status, error, result = "failed", None, {}
    try:
        with session_scope(db_url) as s:  # the machine that runs it (and beats from the start, queued included)
            jq.update_job(s, job_id, host=this_host(), boot_id=boot_id(), heartbeat_at=datetime.now(timezone.utc))
        threading.Thread(target=_heartbeat, args=(db_url, job_id, stop_beat), daemon=True).start()
        if not spec_path:
            raise JobError(f"job {job_id} has no spec file (it was started by an older version); start it again")
        spec = load_spec(spec_path)
        with device_lock(device):  # blocks while another job uses the device: we stay queued
            holds_device.set()
            if cancel.is_set():
                raise JobCancelled()
            with session_scope(db_url) as s:
                jq.update_job(s, job_id, status="running", heartbeat_at=datetime.now(timezone.utc))
            hooks = TaskHooks(progress=_JobProgress(db_url, job_id), should_stop=cancel.is_set, job_id=job_id)
            result = execute(spec, db_url, hooks)
            status = "cancelled" if cancel.is_set() else result.get("status", "succeeded")
            if status == "failed":
                error = result.get("summary") or "the task reported failure"
    except JobCancelled:
        status = "cancelled"
    except RbftError as exc:
        status, error = "failed", str(exc)
    except BaseException as exc:  # noqa: BLE001 - the job row must say what happened
        status, error = "failed", _describe(exc)
        traceback.print_exc()
    finally:
        stop_beat.set()
    with session_scope(db_url) as s:
        if status == "cancelled":
            error = _stop_note(s, job_id, result)
        changes: dict[str, Any] = {"status": status, "error": error}
        if status == "succeeded":
            changes["progress"] = 1.0
        jq.update_job(s, job_id, **changes)
    print(f"job {job_id} {status}" + (f": {error}" if error else ""), flush=True)
    return 0 if status == "succeeded" else 1


def _stop_note(session, job_id: int, result: dict[str, Any]) -> str:
    """What a graceful stop kept: "stopped, adapter saved at step N (<adapter folder>)", or "stopped"."""
    run_dir = result.get("run_dir")
    if not run_dir:
        runs = jq.runs_of_job(session, job_id)
        run_dir = runs[-1].run_dir if runs else None
    adapter = Path(run_dir) / "adapter" if run_dir else None
    if adapter is None or not (adapter / "adapter_config.json").is_file():
        return "stopped on request"
    step = result.get("global_step") if result.get("run_dir") else None
    if step is None:
        step = _last_logged_step(Path(run_dir) / "trainer_log.jsonl")
    return f"stopped, adapter saved at step {step if step is not None else '?'} ({adapter})"


def _last_logged_step(log: Path) -> Optional[int]:
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 8192))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["current_steps"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _describe(exc: BaseException) -> str:
    text = f"{exc.__class__.__name__}: {exc}"
    if "out of memory" in str(exc).lower():
        text = (
            "CUDA out of memory; lower frames (num_frames), max_pixels or batch_size (or raise grad_accum) in the "
            f"spec and run it again. ({str(exc).splitlines()[0]})"
        )
    return text


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != "run" or not argv[1].isdigit():
        print("usage: python -m rbft_core.jobs.runner run JOB_ID", file=sys.stderr)
        return 2
    return _run(int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
