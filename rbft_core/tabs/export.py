"""What the Export tab does: check the selection, start the export as a background job (an ``ExportSpec``), and
find the newest export job again on page load (running: the page re-attaches; finished: its zip to download).

The export copies every video, so it runs as a job (``rbft_core.jobs.runner.start_job``) like imports and
generation: it survives the browser, and its progress (videos placed / total) is on the job row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional
from uuid import uuid4

from db import job_queries as jq
from db.engine import init_db, session_scope
from rbft_core.errors import DataError
from rbft_core.export.dataset import ExportConfig, export_name, preview_export
from rbft_core.jobs.runner import job_status, start_job
from rbft_core.settings import data_dir
from rbft_core.specs import load_spec
from rbft_core.specs.data import ExportSpec

__all__ = ["export_spec", "start_export", "export_status", "latest_export", "zip_of"]

_STAGE = {(1,): "1", (2,): "2", (1, 2): "both"}


def _joined(values: Optional[tuple[str, ...]], everything: str) -> str:
    return ",".join(values) if values else everything


def export_spec(dataset: str, config: ExportConfig, out_dir: str | Path) -> ExportSpec:
    """The form's ``ExportConfig`` as the spec a job (or ``rbft run``) runs."""
    sel = config.selection
    edited = {True: "yes", False: "no", None: "any"}[sel.edited]
    return ExportSpec(dataset=dataset, format=config.format, out=str(out_dir), name=config.name,
                      stage=_STAGE[tuple(config.stages)], status=_joined(sel.statuses, "any"),
                      split=_joined(sel.splits, "all"), labels=_joined(sel.labels, ""), edited=edited,
                      include_excluded=sel.include_excluded, copy_videos=config.copy_videos,
                      overwrite=config.overwrite)


def start_export(db_url: Optional[str], dataset: str, config: ExportConfig) -> int:
    """Start the export of ``dataset`` as a job into a fresh folder under ``data/exports/``; returns the job id.

    An empty selection is refused here, before a job starts (the message says how to widen it)."""
    preview = preview_export(db_url, dataset, config, limit=0)
    if preview["message"]:
        raise DataError(preview["message"])
    # One fresh folder per click: two browsers exporting the same name never overwrite each other.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid4().hex[:6]
    return start_job(db_url, export_spec(dataset, config, data_dir() / "exports" / stamp))


def zip_of(spec: ExportSpec) -> Path:
    """Where the export of ``spec`` writes its zip."""
    return Path(spec.out).expanduser().resolve() / f"{export_name(spec.dataset, spec.format, spec.name)}.zip"


def export_status(db_url: Optional[str], job_id: int) -> dict[str, Any]:
    """An export job's status row (``job_status``) with ``zip``: its path once the job succeeded and the file is
    there, else None."""
    status = job_status(db_url, job_id)
    path = None
    if status["status"] == "succeeded" and status["spec_path"] and Path(status["spec_path"]).is_file():
        spec = load_spec(status["spec_path"])
        path = zip_of(spec) if isinstance(spec, ExportSpec) and zip_of(spec).is_file() else None
    return {**status, "zip": str(path) if path else None}


def latest_export(db_url: Optional[str]) -> Optional[dict[str, Any]]:
    """``export_status`` of the newest export job; None when no export ever ran."""
    init_db(db_url)
    with session_scope(db_url) as s:
        jobs = jq.list_jobs(s, limit=1, kinds=("export",))
        job_id = jobs[0].id if jobs else None
    return export_status(db_url, job_id) if job_id is not None else None
