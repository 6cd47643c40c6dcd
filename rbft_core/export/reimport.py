"""Read an RB-FT export (folder or zip) back: ``rbft import NEW path/to/export --format rbft-export``.

The importer stores the videos with their exported (effective) labels and splits; this module opens the
export, turns ``provenance.csv`` into importer entries, and afterwards restores each video's rationale:
the model's suggestion (with its model id and prompt version) and the reviewer's response, status and
name, so the effective rationale, the edited flag and the label come back exactly as exported.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from db import queries
from rbft_core.errors import DataError
from rbft_core.models.prompts import DEFAULT_DIMENSIONS, Dimension, dimensions_from_records
from rbft_core.models.rationale import parse_rationale, render_target
from rbft_core.settings import data_dir

__all__ = ["ExportBundle", "is_rbft_export", "open_export", "restore_rationales"]

_IMPORTED_MODEL = "rbft-export"


@dataclass
class ExportBundle:
    root: Path
    manifest: dict[str, Any]
    rows: list[dict[str, str]]

    @property
    def preset(self) -> dict[str, Any]:
        return self.manifest["dataset"]["preset"]

    def dimensions(self) -> tuple[Dimension, ...]:
        """The exported dataset's dimensions (exports written before dimensions were data: the paper's four)."""
        records = self.preset.get("dimensions")
        if records is None:
            return DEFAULT_DIMENSIONS
        return dimensions_from_records(records, f"the export {self.root.name}")

    def dataset_settings(self) -> dict[str, Any]:
        """Preset name, role, task and criteria of the exported dataset (for a new dataset)."""
        p = self.preset
        return {"role": p.get("role", ""), "task": p.get("task", ""), "criteria": p.get("criteria", "")}

    def entries(self, failed: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Importer entries (``ref``, ``external_id``, ``label``, ``split``, ``row``, ``meta``), one per row;
        videos the export listed as missing go to ``failed``."""
        for item in self.manifest.get("missing_videos", []):
            failed.append({"path": item.get("path", ""), "error": f"video {item.get('external_id')} was missing on "
                           "disk when the export was made, so the export does not hold it"})
        return [
            {"ref": row["video"], "external_id": row["external_id"], "label": row["label"], "split": row["split"],
             "row": f"provenance.csv row {number}", "meta": {"source_path": row["video"], "exported_from": {
                 "dataset": self.manifest["dataset"]["name"], "video_id": row["video_id"]}}}
            for number, row in enumerate(self.rows, 2)
        ]


def is_rbft_export(source: str | os.PathLike[str]) -> bool:
    """True for a folder holding an RB-FT ``manifest.json`` or a zip whose top folder holds one."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _manifest_of(path / "manifest.json") is not None
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(n.count("/") == 1 and n.endswith("/manifest.json") for n in archive.namelist())
    return False


def _manifest_of(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "rbft_export" in data else None


def _extract(zip_path: Path, data_root: Optional[str]) -> Path:
    """Unpack once into ``<data dir>/imports/`` (keyed by the zip's hash): imported videos live there."""

    digest = hashlib.sha256()
    with open(zip_path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    target = data_dir(data_root) / "imports" / f"{zip_path.stem}-{digest.hexdigest()[:12]}"
    with zipfile.ZipFile(zip_path) as archive:
        tops = {n.split("/", 1)[0] for n in archive.namelist()}
        if len(tops) != 1:
            raise DataError(f"{zip_path} is not an RB-FT export zip (expected one top folder, found {len(tops)})")
        if not (target / next(iter(tops)) / "manifest.json").is_file():
            for member in archive.namelist():
                dest = (target / member).resolve()
                if os.path.commonpath([dest, target.resolve()]) != str(target.resolve()):
                    raise DataError(f"{zip_path} holds {member!r}, which leaves the folder; refusing to unpack it")
            archive.extractall(target)
    return target / next(iter(tops))


def open_export(source: str | os.PathLike[str], data_root: Optional[str] = None) -> ExportBundle:
    """Open an export folder or zip; the error says what is missing."""
    path = Path(source).expanduser()
    if path.is_file() and zipfile.is_zipfile(path):
        path = _extract(path, data_root)
    manifest = _manifest_of(path / "manifest.json") if path.is_dir() else None
    if manifest is None:
        raise DataError(f"{source} is not an RB-FT export (no manifest.json with 'rbft_export'); "
                        "pass the folder or zip written by `rbft export`")
    try:
        with open(path / "provenance.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DataError(f"export {path} has no provenance.csv; re-export it with `rbft export`") from None
    return ExportBundle(root=Path(os.path.realpath(path)), manifest=manifest, rows=rows)


def _dims(row: dict[str, str], prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    return {d: row.get(f"{prefix}_{d}", "") for d in names}


def _restore_one(session: Any, video: Any, row: dict[str, str], reviewer_default: str,
                 dims: tuple[Dimension, ...]) -> bool:
    source = row.get("rationale_source", "")
    if not source:
        return False
    names = tuple(d.name for d in dims)
    prefix = "suggestion" if row.get("model_id") or source == "suggestion" else "response"
    suggestion = _dims(row, prefix, names)
    raw = render_target(suggestion, names)
    queries.add_suggestion(
        session, video.id, model_id=row.get("model_id") or _IMPORTED_MODEL,
        prompt_version=row.get("prompt_version") or "imported", **suggestion, raw_text=raw,
        parse_status=row.get("parse_status") or parse_rationale(raw, dims).status, gen_params={"imported": True},
    )
    review = queries.get_review(session, video.review.id) if video.review is not None else None
    changes: dict[str, Any] = {}
    if source == "review":
        changes.update(_dims(row, "response", names))
    if row.get("status") not in ("", "none", "pending"):
        changes["status"] = row["status"]
    if row.get("excluded") == "true":
        changes["excluded"] = True
    if review is not None and changes:
        queries.save_review(session, review.id, expected_version=review.version,
                            reviewer=row.get("reviewer") or reviewer_default, **changes)
    return True


def restore_rationales(session: Any, dataset_id: int, bundle: ExportBundle) -> int:
    """Add the suggestion and review of every imported video that has none yet; returns how many."""

    restored = 0
    dims = dimensions_from_records(queries.dimension_records(session, dataset_id), f"dataset {dataset_id}")
    for row in bundle.rows:
        video = queries.find_video_by_sha(session, dataset_id, row["sha256"])
        if video is None or video.suggestions:
            continue  # not imported (listed in failed) or already curated: an import never overwrites reviews
        restored += _restore_one(session, video, row, f"rbft-export:{bundle.manifest['name']}", dims)
    session.flush()
    return restored
