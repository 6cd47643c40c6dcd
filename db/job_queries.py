"""Queries for background jobs and runs (kept apart from the review/dataset queries). Flush, never commit."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import JOB_STATUSES, Job, Metric, Prediction, Run, Video
from rbft_core.errors import JobError

__all__ = [
    "create_job",
    "get_job",
    "update_job",
    "list_jobs",
    "jobs_with_status",
    "upsert_run",
    "get_run",
    "run_id_of_job",
    "list_runs",
    "replace_predictions",
    "replace_metrics",
    "runs_of_job",
    "run_predictions",
    "count_runs",
    "count_jobs",
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
]

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")  # what a job said about itself: never overwritten


def _now() -> datetime:
    return datetime.now(timezone.utc)


def create_job(session: Session, kind: str, command: list[str], *, device: Optional[str], run_dir: Optional[str],
               dataset: Optional[str] = None, model: Optional[str] = None, spec_path: Optional[str] = None,
               host: Optional[str] = None, boot_id: Optional[str] = None) -> Job:
    job = Job(kind=kind, command=list(command), device=device, run_dir=run_dir, status="queued", dataset=dataset,
              model=model, spec_path=spec_path, host=host, boot_id=boot_id)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int, *, lock: bool = False) -> Job:
    """The job row (``lock``: ``SELECT ... FOR UPDATE`` on PostgreSQL, so a status check and its change are one
    step; SQLite serialises writers anyway)."""
    job = session.get(Job, job_id, populate_existing=True, with_for_update=lock or None)
    if job is None:
        raise JobError(f"job {job_id} not found; list jobs with `rbft jobs`")
    return job


def update_job(session: Session, job_id: int, **changes: Any) -> Job:
    """Set fields on a job; status changes stamp started/ended times.

    A final status (succeeded, failed, cancelled) is never overwritten: a later status change (a stop that
    arrives after the end, a recovery that guessed wrong) leaves status, message and end time as they are.
    """
    job = get_job(session, job_id, lock=True)
    status = changes.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise JobError(f"job status must be one of {', '.join(JOB_STATUSES)}, got {status!r}")
    if job.status in FINAL_STATUSES and status is not None and status != job.status:
        changes = {k: v for k, v in changes.items() if k not in ("status", "error", "ended_at", "progress")}
        status = None
    if status == "running" and job.started_at is None:
        changes.setdefault("started_at", _now())
    if status in {"succeeded", "failed", "cancelled", "interrupted"}:
        changes.setdefault("ended_at", _now())
    for key, value in changes.items():
        setattr(job, key, value)
    session.flush()
    return job


def list_jobs(session: Session, limit: int = 50, kinds: Optional[Iterable[str]] = None) -> list[Job]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if kinds:
        stmt = stmt.where(Job.kind.in_(list(kinds)))
    return list(session.scalars(stmt))


def jobs_with_status(session: Session, statuses: Iterable[str]) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status.in_(list(statuses))).order_by(Job.id)))


def upsert_run(session: Session, run_id: str, **fields: Any) -> Run:
    """Create or update the DB mirror of ``runs/<run_id>/``."""
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        run = Run(id=run_id, **fields)
        session.add(run)
    else:
        for key, value in fields.items():
            setattr(run, key, value)
    session.flush()
    return run


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise JobError(f"run {run_id!r} not found; list runs with `rbft runs`")
    return run


def run_id_of_job(session: Session, job_id: int) -> Optional[str]:
    """The run a job wrote (its newest, for a pipeline), or None before the job created one."""
    return session.scalar(select(Run.id).where(Run.job_id == job_id).order_by(Run.created_at.desc(), Run.id.desc()))


def list_runs(session: Session, dataset_id: Optional[int] = None, limit: int = 200) -> list[Run]:
    stmt = select(Run).order_by(Run.created_at.desc()).limit(limit)
    if dataset_id is not None:
        stmt = stmt.where(Run.dataset_id == dataset_id)
    return list(session.scalars(stmt))


def replace_predictions(session: Session, run_id: str, rows: list[dict[str, Any]]) -> None:
    for old in session.scalars(select(Prediction).where(Prediction.run_id == run_id)):
        session.delete(old)
    session.flush()
    session.add_all(Prediction(run_id=run_id, **row) for row in rows)
    session.flush()


def replace_metrics(session: Session, run_id: str, split: str, values: dict[str, float]) -> None:
    for old in session.scalars(select(Metric).where(Metric.run_id == run_id, Metric.split == split)):
        session.delete(old)
    session.flush()
    session.add_all(Metric(run_id=run_id, split=split, name=k, value=float(v)) for k, v in values.items())
    session.flush()


def runs_of_job(session: Session, job_id: int) -> list[Run]:
    """The runs a job created, oldest first (a pipeline job makes Stage I, Stage II, baselines)."""
    return list(session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.created_at, Run.id)))


def run_predictions(session: Session, run_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Per-video predictions of a run with the video's name and path, in video order."""
    rows = session.execute(
        select(Prediction, Video.external_id, Video.path)
        .join(Video, Video.id == Prediction.video_id)
        .where(Prediction.run_id == run_id)
        .order_by(Prediction.video_id)
        .limit(limit)
    ).all()
    return [{"video_id": p.video_id, "video": external_id, "path": path, "truth": p.truth, "predicted": p.predicted,
             "probs": dict(p.probs or {}), "answer_text": p.answer_text} for p, external_id, path in rows]


def count_runs(session: Session) -> dict[str, int]:
    """Runs of every dataset: ``total`` and ``succeeded``."""
    rows = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
    return {"total": sum(int(n) for _s, n in rows), "succeeded": sum(int(n) for s, n in rows if s == "succeeded")}


def count_jobs(session: Session, kind: str, status: str) -> int:
    """How many jobs of ``kind`` ended (or stand) in ``status``."""
    return int(session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind, Job.status == status))
               or 0)
