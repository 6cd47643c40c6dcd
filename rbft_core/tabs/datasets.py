"""What the Datasets tab does: create a dataset, import videos and generate rationales (both as jobs),
and read back counts, the latest import report and the job still running for a dataset.

Imports and generation are ``rbft`` commands started by ``rbft_core.jobs.runner.start_job``: they survive the
browser and an app restart, and the page re-attaches to them on load.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

from db import job_queries as jq
from db import queries
from db.engine import init_db, session_scope
from db.review_queries import latest_import_run
from rbft_core.data.importer import FORMATS, detect_format
from rbft_core.errors import ConfigError, DataError
from rbft_core.jobs.runner import start_job
from rbft_core.models.model_sampling import BUILT_IN, fill_sampling, model_sampling
from rbft_core.models.prompts import PRESETS, dataset_preset, dimensions_text, parse_dimensions, preset_from_record
from rbft_core.names import check_dataset_name
from rbft_core.settings import check_import_source, data_dir
from rbft_core.specs.data import GenerateSpec, ImportSpec

__all__ = ["create_dataset", "stage_manifest", "start_import", "start_generation", "generation_frames",
           "dataset_detail", "import_report", "import_failures", "active_job", "preset_fields", "MANIFEST_SUFFIXES"]

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".tsv")
MAX_HEADER_BYTES = 64 * 1024  # a manifest's first line is shorter than this
_NAME = re.compile(r"^[\w][\w.\- ]{0,99}$")


def _session(db_url: Optional[str]):
    init_db(db_url)
    return session_scope(db_url)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ConfigError(f"dataset name {name!r} must be 1-100 letters, digits, spaces, '.', '_' or '-', "
                          "starting with a letter or digit, e.g. 'front-door'")
    return check_dataset_name(name)  # the rule every way of making a dataset shares (no '..', ...)


def _labels(labels: str | Sequence[str] | None) -> list[str]:
    items = labels.split(",") if isinstance(labels, str) else list(labels or [])
    return [str(item).strip().lower() for item in items if str(item).strip()]


def preset_fields(preset: str) -> dict[str, str]:
    """Role, task, labels (comma-separated), criteria and dimensions (one ``name: description`` per line) of a
    built-in preset, for the form to start from (a custom preset starts from the paper's four dimensions)."""
    base = PRESETS.get(preset)
    if base is None:
        return {"role": "", "task": "", "labels": "", "criteria": "",
                "dimensions": dimensions_text(preset_from_record("custom", labels=["a", "b"]).dimensions)}
    return {"role": base.role, "task": base.task, "labels": ", ".join(base.labels), "criteria": base.criteria,
            "dimensions": dimensions_text(base.dimensions)}


def create_dataset(db_url: Optional[str], name: str, *, preset: str = "smart-home", role: str = "", task: str = "",
                   labels: str | Sequence[str] | None = None, criteria: str = "", dimensions: str = "") -> dict[str, Any]:
    """Create an empty dataset from a preset (fields override it) or a custom role / label set / criteria;
    ``dimensions``: one ``name: description`` per line, ``?`` after an optional one's name (empty: the preset's)."""

    name = _check_name(name)
    label_list = _labels(labels)
    dims = parse_dimensions(dimensions, f"dataset {name!r}")
    spec = preset_from_record(preset if preset in PRESETS else "custom", role=role.strip(), task=task.strip(),
                              labels=label_list or None, criteria=criteria.strip(),
                              dimensions=dims)  # validates labels, role, dimensions
    with _session(db_url) as s:
        existing = queries.find_dataset(s, name)
        if existing is not None:
            raise ConfigError(f"dataset {name} already exists; import into it or choose another name")
        ds = queries.get_or_create_dataset(s, name, preset=preset if preset in PRESETS else "custom", role=spec.role,
                                           task=spec.task, labels=list(spec.labels), criteria=spec.criteria,
                                           dimensions=[d.to_dict() for d in spec.dimensions])
        return {"name": ds.name, "preset": ds.preset, "labels": list(ds.labels),
                "dimensions": [d["name"] for d in ds.dimensions]}


def stage_manifest(uploaded: str | Path) -> Path:
    """Check that an uploaded file is a manifest and copy it into ``<data>/uploads`` (the job reads it later)."""

    path = Path(uploaded)
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise DataError(f"the uploaded file {path.name} is not a manifest: upload a {', '.join(MANIFEST_SUFFIXES)} "
                        "file listing path,label[,split,id] (videos stay on the server; give their folder)")
    with open(path, "rb") as handle:  # only the head is read: an upload may be hundreds of MB
        head = handle.read(MAX_HEADER_BYTES)
    try:
        text = head[:4096].decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at byte 4096 is fine
        text = head[:exc.start].decode("utf-8-sig") if exc.start > 4000 else ""
    if not text.strip() or "\x00" in text:
        raise DataError(f"the uploaded file {path.name} is not a text manifest (binary or empty); save it as "
                        "UTF-8 CSV or JSONL with the columns path,label[,split,id]")
    if b"\n" not in head and len(head) == MAX_HEADER_BYTES:
        raise DataError(f"the first line of {path.name} is longer than {MAX_HEADER_BYTES // 1024} KB, so it is not a "
                        "manifest header; save one row per line (path,label[,split,id])")
    detect_format(path)  # reads the first line only; raises a DataError naming the problem
    target = data_dir() / "uploads" / f"{uuid.uuid4().hex[:8]}_{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def start_import(db_url: Optional[str], dataset: str, source: str, *, manifest: Optional[str | Path] = None,
                 fmt: str = "auto", preset: str = "smart-home", labels: str | Sequence[str] | None = None,
                 workers: int = 0, dimensions: str = "") -> int:
    """Start an import job (an ``ImportSpec``; ``workers`` hashing / probing processes, 0: one per core);
    returns the job id. The job's progress text tells the phase, files/s and the time left."""
    dataset = _check_name(dataset)
    folder = Path((source or "").strip()).expanduser()
    if not str(source or "").strip() or not folder.is_dir():
        raise DataError(f"source folder {str(source or '').strip() or '(empty)'} does not exist on the server; "
                        "give the folder that holds the videos (e.g. /data/videos)")
    folder = check_import_source(folder)  # the web app imports only under --import-root / RBFT_IMPORT_ROOTS
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    spec = ImportSpec(dataset=dataset, source=str(folder), manifest=str(manifest or ""), format=fmt,
                      preset=preset or "smart-home", labels=tuple(_labels(labels)), workers=int(workers or 0),
                      dimensions=dimensions or "")
    return start_job(db_url, spec)


def generation_frames(model: Optional[str]) -> tuple[int, str]:
    """The frame count generation defaults to for ``model`` and the note that says where it came from."""
    found = model_sampling(model)
    where = found.source if "num_frames" in found.fields else BUILT_IN
    return found.sampling.num_frames, f"{found.sampling.num_frames} frames: {where}"


def start_generation(db_url: Optional[str], dataset: str, model: str, *, num_frames: Optional[int] = None,
                     batch_size: int = 4,
                     split: str = "train", label_hint: bool = True, max_new_tokens: int = 160,
                     nproc_per_node: int = 1) -> int:
    """Start a generation job (a ``GenerateSpec``; ``nproc_per_node`` > 1 shares the videos between that many
    processes under torchrun); returns the job id."""
    if not (model or "").strip():
        raise ConfigError("model is empty; give a local model folder or a hub id such as Qwen/Qwen2.5-VL-7B-Instruct")
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split must be train, val, test or all, got {split!r}")
    # frames left empty and the pixel budget (not on the form) come from the model folder
    sampling, _found = fill_sampling({"num_frames": num_frames or None}, model.strip(), ("num_frames", "max_pixels"))
    spec = GenerateSpec(dataset=dataset, model=model.strip(), split=split, **sampling, batch_size=batch_size, max_new_tokens=max_new_tokens, label_hint=label_hint,
                        nproc_per_node=int(nproc_per_node or 1))
    with _session(db_url) as s:
        queries.get_dataset(s, dataset)  # a clear error before a job is started
    return start_job(db_url, spec)


def dataset_detail(db_url: Optional[str], dataset: str) -> dict[str, Any]:
    """Preset, labels, rationale dimensions and counts (total, per label, per split, per label within split, per
    review status)."""

    with _session(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        return {"name": ds.name, "preset": ds.preset, "role": ds.role, "labels": list(ds.labels or []),
                "dimensions": [d.to_dict() for d in dataset_preset(ds).dimensions], **queries.dataset_counts(s, ds.id)}


def import_report(db_url: Optional[str], dataset: str) -> Optional[dict[str, Any]]:
    """The newest import of ``dataset``: source, format and its report (imported, unchanged, failed + reason).

    ``failed`` holds the first failures only (at most ``MAX_STORED_FAILURES``), then a row saying how many more
    there are; ``failed_total`` counts them all and ``import_failures`` pages through every one."""

    with _session(db_url) as s:
        ds = queries.find_dataset(s, dataset)
        run = latest_import_run(s, ds.id) if ds is not None else None
    if run is None:
        return None
    report = run["report"]
    total = int(report.get("failed_total", len(report.get("failed", []))))
    shown = list(report.get("failed", []))
    if total > len(shown):
        shown.append({"path": f"... and {total - len(shown):,} more",
                      "error": f"{total:,} files failed in all; the full list is in {report.get('failed_file', '')}"})
    return {**run, "report": {**report, "failed": shown, "failed_total": total}}


def import_failures(db_url: Optional[str], dataset: str, page: int = 0, page_size: int = 100) -> dict[str, Any]:
    """One page of the newest import's failures: {"total", "page", "pages", "rows"} (rows: path, error).

    Reads the import's JSONL list line by line up to the page (never the whole list into memory)."""
    if not 1 <= page_size <= 1000:
        raise ConfigError(f"page_size must be within [1, 1000], got {page_size}")
    with _session(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        run = latest_import_run(s, ds.id)
    report = (run or {}).get("report") or {}
    total = int(report.get("failed_total", len(report.get("failed", []))))
    pages = max(1, -(-total // page_size))
    page = min(max(0, int(page)), pages - 1)
    first, rows = page * page_size, []
    path = Path(report.get("failed_file") or "")
    if report.get("failed_file") and path.is_file():
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if index >= first + page_size:
                    break
                if index >= first:
                    rows.append(json.loads(line))
    else:  # an import recorded before the list was kept in a file: the row holds all it has
        rows = list(report.get("failed", []))[first:first + page_size]
    return {"total": total, "page": page, "pages": pages, "rows": rows}


def active_job(db_url: Optional[str], dataset: str) -> Optional[dict[str, Any]]:
    """The newest queued or running import/generate job of ``dataset`` (the page re-attaches to it)."""

    with _session(db_url) as s:
        for job in jq.list_jobs(s, limit=200, kinds=("import", "generate")):
            if job.status in jq.ACTIVE_STATUSES and job.dataset == dataset:
                return {"id": job.id, "kind": job.kind, "dataset": dataset}
    return None
