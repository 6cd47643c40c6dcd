"""Export a curated dataset for other tools: LLaMA-Factory, ms-swift, Hugging Face datasets or CSV.

An export is a folder ``<out>/<name>/`` and the same folder zipped as ``<out>/<name>.zip``::

    <name>/
      README.md          counts, selection, prompts and provenance in words
      manifest.json      the same, machine-readable (read back by ``rbft import --format rbft-export``)
      provenance.csv     one row per exported video: suggestion, response, status, reviewer, time, model...
      videos/            the video files (``--copy-videos``, default); else data files hold relative paths
      ...                the format's files (see ``rbft_core.export.formats``)

Stage I examples are (video, expert rationale prompt without the label hint) -> the effective rationale
rendered as the Stage-I target; Stage II examples are (video, classification prompt) -> the label word.
All database reads happen in one read transaction, so an export never mixes a review's old and new state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from db import curated_queries, queries
from db.engine import init_db, session_scope
from rbft_core.errors import ConfigError, DataError
from rbft_core.export.formats import (
    FORMATS,
    WRITERS,
    Example,
    provenance_row,
    write_provenance,
)
from rbft_core.models.prompts import (
    CLASSIFY_PROMPT_VERSION,
    RATIONALE_PROMPT_VERSION,
    Preset,
    classification_prompt,
    dataset_preset,
    rationale_prompt,
)
from rbft_core.models.rationale import render_target
from rbft_core.review.curation import Selection, select_rows
from rbft_core.task_context import Progress, report

__all__ = ["ExportConfig", "ExportResult", "FORMATS", "parse_stages", "sanitize_name", "export_name",
           "preview_export", "export_dataset", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1
_STAGES = {"1": (1,), "2": (2,), "both": (1, 2), "1,2": (1, 2)}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STORED = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}  # already compressed: zip them as they are

# Test hook: called between the export's first and second read of the database.
_between_reads: Optional[Callable[[], None]] = None


def parse_stages(value: Any) -> tuple[int, ...]:
    """``"1"`` / ``"2"`` / ``"both"`` / ``(1, 2)`` -> a sorted tuple of stages."""
    if isinstance(value, (tuple, list)):
        stages = tuple(sorted({int(v) for v in value}))
    else:
        stages = _STAGES.get(str(value).strip().lower().replace(" ", ""), ())
    if not stages or any(s not in (1, 2) for s in stages):
        raise ConfigError(f"stage must be 1, 2 or both, got {value!r}")
    return stages


def sanitize_name(name: str, fallback: str = "export") -> str:
    """A file-system-safe export name: path separators and odd characters become ``_``; never empty."""
    cleaned = re.sub(r"_+", "_", _UNSAFE.sub("_", re.sub(r"\.{2,}", "_", str(name or "")))).strip("._-")[:100]
    return cleaned or fallback


def export_name(dataset: str, fmt: str, name: str = "") -> str:
    """The folder and zip name an export of ``dataset`` in ``fmt`` gets (``name`` when given, sanitised)."""
    return sanitize_name(name, "") if name else sanitize_name(f"{dataset}-{fmt}")


@dataclass(frozen=True)
class ExportConfig:
    """What to export.

    Args:
        format: llamafactory | swift | hf | csv.
        stages: Stage-I set, Stage-II set or both (``"1"``, ``"2"``, ``"both"``).
        selection: which videos (default: accepted reviews, every split, label and edit state).
        copy_videos: copy the video files into the export (else reference them by relative path).
        name: folder and zip name (sanitised; default ``<dataset>-<format>``).
        overwrite: replace an existing export of the same name.
    """

    format: str = "llamafactory"
    stages: Any = (1, 2)
    selection: Selection = field(default_factory=Selection)
    copy_videos: bool = True
    name: str = ""
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format {self.format!r} is not supported; use one of {', '.join(FORMATS)}")
        object.__setattr__(self, "stages", parse_stages(self.stages))
        object.__setattr__(self, "name", sanitize_name(self.name, "") if self.name else "")


@dataclass
class ExportResult:
    folder: Path
    zip_path: Path
    counts: dict[str, Any]
    missing: list[dict[str, Any]]
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "zip": str(self.zip_path), "counts": self.counts,
                "missing": self.missing, "files": self.files}


@dataclass
class _Snapshot:
    dataset: str
    preset: Preset
    rows: list[dict[str, Any]]
    dataset_counts: dict[str, Any]
    taken_at: str


def _read_snapshot(db_url: Optional[str], dataset: str, selection: Selection) -> _Snapshot:
    """Every read in one transaction on one snapshot (a review saved meanwhile is all in or all out)."""

    init_db(db_url)
    with session_scope(db_url) as session:
        curated_queries.begin_snapshot(session)
        ds = queries.get_dataset(session, dataset)
        preset = dataset_preset(ds)
        rows = select_rows(session, ds.id, selection)
        if _between_reads is not None:
            _between_reads()
        counts = queries.dataset_counts(session, ds.id)
    taken_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return _Snapshot(ds.name, preset, rows, counts, taken_at)


def _prompts(preset: Preset) -> dict[int, dict[str, Any]]:
    return {
        1: {"text": rationale_prompt(preset), "version": RATIONALE_PROMPT_VERSION, "label_hint": False},
        2: {"text": classification_prompt(preset), "version": CLASSIFY_PROMPT_VERSION},
    }


def _examples(row: dict[str, Any], video: str, prompts: dict[int, dict], stages: tuple[int, ...],
              names: tuple[str, ...]) -> list[Example]:
    out = []
    if 1 in stages and row["rationale"] is not None and any(row["rationale"].values()):
        out.append(Example(1, row["split"], video, prompts[1]["text"], render_target(row["rationale"], names), row))
    if 2 in stages:
        out.append(Example(2, row["split"], video, prompts[2]["text"], row["label"], row))
    return out


def _counts(rows: list[dict], examples: list[Example], missing: list[dict]) -> dict[str, Any]:
    per_stage: dict[str, Counter[str]] = {"stage1": Counter(), "stage2": Counter()}
    for example in examples:
        per_stage[f"stage{example.stage}"][example.split] += 1
    return {
        "videos": len(rows),
        "missing_videos": len(missing),
        "stage1": dict(sorted(per_stage["stage1"].items())),
        "stage2": dict(sorted(per_stage["stage2"].items())),
        "labels": dict(sorted(Counter(r["label"] for r in rows).items())),
        "splits": dict(sorted(Counter(r["split"] for r in rows).items())),
        "statuses": dict(sorted(Counter(r["status"] for r in rows).items())),
        "edited": sum(1 for r in rows if r["edited"]),
        "without_rationale": sum(1 for r in rows if not (r["rationale"] and any(r["rationale"].values()))),
    }


def _empty_message(snap: _Snapshot, config: ExportConfig) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in snap.dataset_counts["review_status"].items() if n)
    return (
        f"no videos of dataset {snap.dataset!r} match the selection ({config.selection.describe()}); the dataset "
        f"has {snap.dataset_counts['total']} videos ({statuses or 'no reviews yet'}); widen the selection "
        "(e.g. --status accepted,draft, --split all, --edited any) or review more videos; nothing was written"
    )


def preview_export(db_url: Optional[str], dataset: str, config: ExportConfig, limit: int = 5) -> dict[str, Any]:
    """Counts and the first rows of what ``export_dataset`` would write; writes nothing."""
    snap = _read_snapshot(db_url, dataset, config.selection)
    prompts = _prompts(snap.preset)
    present, missing = _split_missing(snap.rows)
    names = snap.preset.dimension_names
    examples = [e for row in present for e in _examples(row, row["path"], prompts, config.stages, names)]
    first = [
        {"video": r["external_id"], "split": r["split"], "label": r["label"], "status": r["status"],
         "edited": r["edited"], "reviewer": r["reviewer"] or "",
         "rationale": render_target(r["rationale"], names) if r["rationale"] else ""}
        for r in present[:limit]
    ]
    message = _empty_message(snap, config) if not examples else ""
    return {"dataset": snap.dataset, "selection": config.selection.describe(), "stages": list(config.stages),
            "counts": _counts(present, examples, missing), "missing": missing, "rows": first, "message": message}


def _split_missing(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    present, missing = [], []
    for row in rows:
        if Path(row["path"]).is_file():
            present.append(row)
        else:
            missing.append({"video_id": row["video_id"], "external_id": row["external_id"], "path": row["path"],
                            "split": row["split"], "label": row["label"],
                            "reason": "file not found on disk when exporting; restore it and export again"})
    return present, missing


def _video_name(row: dict) -> str:
    source = Path(row["path"])
    stem = sanitize_name(Path(row["external_id"]).stem or source.stem, "video")[:60]
    return f"videos/{row['sha256'][:12]}-{stem}{source.suffix.lower() or '.mp4'}"


def _place_video(row: dict, work: Path, final: Path, copy: bool) -> str:
    if copy:
        rel = _video_name(row)
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(row["path"], work / rel)
        return rel
    return Path(os.path.relpath(row["path"], final)).as_posix()


def _targets(out_dir: Path, name: str, overwrite: bool) -> tuple[Path, Path]:
    final, zip_path = out_dir / name, out_dir / f"{name}.zip"
    existing = [p for p in (final, zip_path) if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"export {existing[0]} already exists; pass --overwrite or choose another --name")
    return final, zip_path


def export_dataset(
    db_url: Optional[str], dataset: str, config: ExportConfig, out_dir: str | os.PathLike[str], *,
    progress: Optional[Progress] = None,
) -> ExportResult:
    """Write the export folder and its zip under ``out_dir``; returns where they are and what they hold.

    Raises ``DataError`` (and writes nothing) when the selection is empty. Videos missing on disk are
    left out, listed in the manifest and the result, and the export goes on. ``progress(done, total, text)``
    counts the videos placed, then the zip (total = videos + 1).
    """
    snap = _read_snapshot(db_url, dataset, config.selection)
    if not snap.rows:
        raise DataError(_empty_message(snap, config))
    name = export_name(snap.dataset, config.format, config.name)
    out = Path(out_dir).expanduser().resolve()
    final, zip_path = _targets(out, name, config.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".{name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        result = _write(snap, config, name, work, final, progress)
        total = result[0]["videos"] + 1
        report(progress, total - 1, total, f"{total - 1}/{total - 1} videos placed; writing {zip_path.name}")
        _publish(work, final, zip_path)
        report(progress, total, total, f"{total - 1}/{total - 1} videos placed; {zip_path.name} written")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(final, zip_path, *result)


def _write(snap: _Snapshot, config: ExportConfig, name: str, work: Path, final: Path,
           progress: Optional[Progress] = None):
    prompts, names = _prompts(snap.preset), snap.preset.dimension_names
    present, missing = _split_missing(snap.rows)
    examples: list[Example] = []
    provenance = []
    verb = "copied" if config.copy_videos else "listed"
    for done, row in enumerate(present):
        report(progress, done, len(present) + 1, f"{done}/{len(present)} videos {verb}")
        video = _place_video(row, work, final, config.copy_videos)
        mine = _examples(row, video, prompts, config.stages, names)
        examples += mine
        by_stage = {e.stage: e.answer for e in mine}
        provenance.append(provenance_row(row, video, by_stage.get(1), by_stage.get(2), names))
    if not examples:
        why = f"all {len(missing)} selected videos are missing on disk" if missing and not present else (
            "none of the selected videos has a rationale for Stage I; add --stage 2 or generate rationales")
        raise DataError(f"nothing to export from dataset {snap.dataset!r} ({config.selection.describe()}): {why}; "
                        "nothing was written")
    files = WRITERS[config.format](work, name, examples)
    files.append(write_provenance(work, provenance, names))
    counts = _counts(present, examples, missing)
    manifest = _manifest(snap, config, name, counts, missing, files, prompts)
    (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    (work / "README.md").write_text(_readme(manifest), encoding="utf-8")
    return counts, missing, manifest["files"]


def _manifest(snap: _Snapshot, config: ExportConfig, name: str, counts: dict, missing: list, files: list,
              prompts: dict) -> dict[str, Any]:
    gone = {m["video_id"] for m in missing}
    rows = [r for r in snap.rows if r["video_id"] not in gone]
    return {
        "rbft_export": MANIFEST_VERSION,
        "name": name,
        "format": config.format,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "snapshot_at": snap.taken_at,
        "dataset": {"name": snap.dataset, "preset": snap.preset.to_dict()},
        "selection": config.selection.to_dict(),
        "selection_text": config.selection.describe(),
        "stages": list(config.stages),
        "videos": "copied into videos/" if config.copy_videos else "referenced by paths relative to this folder",
        "prompts": {f"stage{k}": v for k, v in prompts.items() if k in config.stages},
        "counts": counts,
        "dataset_counts": snap.dataset_counts,
        "provenance": {
            "models": dict(Counter(r["model_id"] or "none" for r in rows)),
            "prompt_versions": dict(Counter(r["prompt_version"] or "none" for r in rows)),
            "reviewers": dict(Counter(r["reviewer"] or "none" for r in rows)),
        },
        "missing_videos": missing,
        "files": ["README.md", "manifest.json", *files],
    }


def _readme(manifest: dict[str, Any]) -> str:
    counts, prov = manifest["counts"], manifest["provenance"]
    stage_lines = [f"- Stage {s}: " + ", ".join(f"{n} {split}" for split, n in counts[f"stage{s}"].items())
                   for s in manifest["stages"]]
    lines = [
        f"# {manifest['name']}",
        "",
        f"Exported by RB-FT Studio from dataset `{manifest['dataset']['name']}` as **{manifest['format']}** "
        f"on {manifest['created_at']} (one database snapshot taken {manifest['snapshot_at']}).",
        "",
        f"Selection: {manifest['selection_text']}.",
        "",
        f"{counts['videos']} videos ({', '.join(f'{n} {k}' for k, n in counts['labels'].items())}); "
        f"{counts['edited']} with a rationale the reviewer edited; {counts['missing_videos']} missing on disk "
        "(listed in manifest.json under missing_videos, left out).",
        *stage_lines,
        "",
        f"Videos: {manifest['videos']}.",
        f"Rationales written by: {_counter(prov['models'])}; prompt versions {_counter(prov['prompt_versions'])}; "
        f"reviewed by {_counter(prov['reviewers'])}.",
        "",
        "Stage I: video + expert prompt (no label hint) -> the reviewed rationale as one line of JSON "
        f"({', '.join(d['name'] for d in manifest['dataset']['preset']['dimensions'])}). "
        "Stage II: video + classification prompt -> the label word.",
        "provenance.csv holds, per video, the model's suggestion and the reviewer's response (a "
        "`suggestion_<dimension>` and a `response_<dimension>` column per dimension), status, reviewer, time, model "
        "id, prompt version and whether the rationale was edited.",
        "",
        "Files: " + ", ".join(f"`{f}`" for f in manifest["files"]) + ".",
    ]
    if manifest["format"] == "swift":
        lines += ["", "ms-swift resolves relative video paths from the working directory: run it from this folder."]
    if manifest["format"] == "llamafactory":
        lines += ["", "LLaMA-Factory: set `dataset_dir` to this folder and `dataset` to a name in dataset_info.json."]
    return "\n".join(lines) + "\n"


def _counter(values: dict[str, int]) -> str:
    return ", ".join(f"{k} ({n})" for k, n in values.items()) or "none"


def _publish(work: Path, final: Path, zip_path: Path) -> None:
    """Zip the finished folder, then move both into place (a failed export leaves no half files behind)."""
    partial_zip = work.with_name(work.name + ".zip")
    try:
        with zipfile.ZipFile(partial_zip, "w") as archive:
            for path in sorted(work.rglob("*")):
                if path.is_file():
                    kind = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                    archive.write(path, f"{final.name}/{path.relative_to(work).as_posix()}", compress_type=kind)
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
        os.replace(partial_zip, zip_path)
    finally:
        partial_zip.unlink(missing_ok=True)
