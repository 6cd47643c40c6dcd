"""Reading what an import names: label folders, CSV / JSONL manifests, SmartHome-Bench CSVs and MultiHateClip
TSVs become ``Entry`` rows (path, label, split, id); every unreadable row becomes a failure with its reason."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbft_core.errors import DataError

__all__ = ["Entry", "detect_format", "read_entries", "failure", "walk_videos", "inside", "escape_message",
           "VIDEO_EXTENSIONS", "SPLIT_ALIASES"]

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
_SMARTHOME_COLUMNS = ("Title", "Anomaly Tag")
_MHC_COLUMNS = ("Video_ID", "Majority_Voting")


@dataclass
class Entry:
    """One candidate video from the source, before it is resolved, hashed and probed."""

    ref: str  # the path as the source names it (reported in ``failed``)
    external_id: str
    label: str
    row: str  # where it came from, for messages: "row 12", "train.tsv row 4", "normal/"
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # resolved, inside the root
    sha256: str = ""
    size_bytes: int = 0


# ---------------------------------------------------------------------------------------- detection
def detect_format(manifest: Path | None) -> str:
    """Pick the importer: by the manifest's extension and header, else label folders."""
    if manifest is None:
        return "folder"
    if manifest.is_dir():
        tsvs = sorted(manifest.glob("*.tsv"))
        if tsvs and _has_columns(_read_header(tsvs[0], "\t"), _MHC_COLUMNS):
            return "multihateclip"
        raise DataError(
            f"manifest folder {manifest} has no MultiHateClip TSV files (train.tsv, valid.tsv, test.tsv); "
            "point --manifest at a CSV, JSONL or TSV file instead"
        )
    suffix = manifest.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    header = _read_header(manifest, "\t" if suffix == ".tsv" else ",")
    if _has_columns(header, _SMARTHOME_COLUMNS):
        return "smarthome-bench"
    if _has_columns(header, _MHC_COLUMNS):
        return "multihateclip"
    return "csv"


def _has_columns(header: list[str], needed: tuple[str, ...]) -> bool:
    return all(c in header for c in needed)


def _read_header(path: Path, delimiter: str) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [c.strip() for c in next(csv.reader(handle, delimiter=delimiter), [])]
    except FileNotFoundError:
        raise DataError(f"manifest {path} not found; check the --manifest path") from None
    except UnicodeDecodeError:
        raise DataError(f"manifest {path} is not UTF-8 text; save it as UTF-8 CSV") from None


# ----------------------------------------------------------------------------------------- readers
def walk_videos(root: Path) -> Iterator[tuple[Path, bool]]:
    """Video files under ``root`` (no symlinked folders followed): (path, is_escaping_dir_link)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in list(dirs):
            if name.startswith("."):
                dirs.remove(name)
            elif os.path.islink(os.path.join(folder, name)):
                # Not followed (loops); a link pointing outside is reported, one inside is reached directly.
                dirs.remove(name)
                link = Path(folder, name)
                if not inside(link, root):
                    yield link, True
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield Path(folder, name), False


def read_folder(root: Path, failed: list[dict[str, str]]) -> list[Entry]:
    entries = []
    for path, escaping_dir in walk_videos(root):
        rel = path.relative_to(root)
        if escaping_dir:
            failed.append(failure(rel.as_posix(), escape_message(rel.as_posix(), path, root)))
        elif len(rel.parts) < 2:
            failed.append(failure(rel.as_posix(), f"video {rel.as_posix()} is not inside a label folder; "
                                                f"move it to {root}/<label>/"))
        else:
            entries.append(Entry(ref=rel.as_posix(), external_id=rel.as_posix(), label=rel.parts[0].strip(),
                                  row=f"{rel.parts[0]}/", meta={"source_path": rel.as_posix()}))
    return entries


def _read_table(manifest: Path, delimiter: str = ",") -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Rows with spreadsheet numbers (header is row 1); quoted fields may span lines."""
    try:
        with open(manifest, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(i, {k: (v or "").strip() for k, v in row.items() if k}) for i, row in enumerate(reader, 2)]
    except FileNotFoundError:
        raise DataError(f"manifest {manifest} not found; check the --manifest path") from None
    except UnicodeDecodeError:
        raise DataError(f"manifest {manifest} is not UTF-8 text; save it as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"manifest {manifest} is not valid CSV ({e}); check its quoting") from None
    return header, rows


def _require(manifest: Path, header: list[str], needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(
            f"manifest {manifest} has no {', '.join(repr(c) for c in missing)} column "
            f"(columns found: {', '.join(repr(c) for c in header) or 'none'}); "
            f"add it or rename the matching column; nothing was imported"
        )


def _jsonl_value(key: Any, value: Any) -> Any:
    if value is None:
        return ""
    if key in ("path", "label", "split", "id") or not isinstance(value, (list, dict, int, float, bool)):
        return str(value).strip()
    return value


def _read_jsonl(manifest: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    rows, keys = [], []
    try:
        lines = manifest.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(f"manifest {manifest} not found; check the --manifest path") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"manifest {manifest} line {number} is not JSON ({e.msg}); fix that line") from None
        if not isinstance(record, dict):
            raise DataError(f"manifest {manifest} line {number} is not a JSON object; write one object per line")
        keys.extend(k for k in record if k not in keys)
        # path/label/split/id are text; other fields keep their JSON values (lists, objects) for meta
        rows.append((number, {str(k): _jsonl_value(k, v) for k, v in record.items()}))
    return keys, rows


def read_manifest(manifest: Path, fmt: str, failed: list[dict[str, str]]) -> list[Entry]:
    if fmt == "jsonl":
        header, rows = _read_jsonl(manifest)
    else:
        header, rows = _read_table(manifest, "\t" if manifest.suffix.lower() == ".tsv" else ",")
    _require(manifest, header, ("path", "label"))
    word = "line" if fmt == "jsonl" else "row"
    entries = []
    for number, row in rows:
        ref, label = row.get("path", ""), row.get("label", "")
        if not ref or not label:
            failed.append(failure(ref or f"{word} {number}", f"{word} {number} has an empty "
                                f"{'path' if not ref else 'label'}; fill it in or delete the row"))
            continue
        external_id = row.get("id") or Path(ref).as_posix()
        extra = {k: v for k, v in row.items() if k not in ("path", "label", "split", "id") and v}
        entries.append(Entry(ref=ref, external_id=external_id, label=label, row=f"{word} {number}",
                              split=row.get("split") or None, meta={"source_path": ref, **extra}))
    return entries


def read_smarthome(manifest: Path, root: Path) -> list[Entry]:
    header, rows = _read_table(manifest)
    _require(manifest, header, _SMARTHOME_COLUMNS)
    found = _index_by_name(root)
    entries = []
    for number, row in rows:
        title, tag = row.get("Title", ""), row.get("Anomaly Tag", "")
        if not title:
            continue
        name = f"{title}.mp4"
        meta = {
            "anomaly_tag": tag,
            "category": row.get("Category", ""),
            "description": row.get("Video Description", ""),
            "reasoning": row.get("Reasoning behind Normality/Anomalies", ""),
        }
        label = "normal" if tag.strip().lower() == "normal" else "abnormal"  # "Vague Abnormal" counts as abnormal
        # A missing file keeps its bare name as ref: resolving reports it as "not found".
        entries.append(
            Entry(ref=found.get(name, name), external_id=title, label=label, row=f"row {number}", meta=meta)
        )
    return entries


def read_multihateclip(manifest: Path, root: Path) -> list[Entry]:
    order = {"train": 0, "val": 1, "test": 2}
    files = sorted(manifest.glob("*.tsv")) if manifest.is_dir() else [manifest]
    files.sort(key=lambda p: order.get(SPLIT_ALIASES.get(p.stem.lower(), ""), 9))
    found = _index_by_name(root)
    entries = []
    for tsv in files:
        header, rows = _read_table(tsv, delimiter="\t")
        _require(tsv, header, _MHC_COLUMNS)
        split = SPLIT_ALIASES.get(tsv.stem.lower())
        for number, row in rows:
            video_id = row.get("Video_ID", "")
            if not video_id:
                continue
            name = f"{video_id}.mp4"
            meta = {k.lower(): row.get(k, "") for k in ("Label", "Target_Victim", "Component", "Duration")}
            meta["annotation_file"] = tsv.name
            label = row.get("Majority_Voting", "").lower()
            entries.append(Entry(ref=found.get(name, name), external_id=video_id, label=label,
                                  row=f"{tsv.name} row {number}", split=split, meta=meta))
    return entries


def _index_by_name(root: Path) -> dict[str, str]:
    """File name -> path relative to root, for manifests that name videos without folders (first one wins)."""
    index: dict[str, str] = {}
    for path, escaping_dir in walk_videos(root):
        if not escaping_dir:
            index.setdefault(path.name, path.relative_to(root).as_posix())
    return index


def failure(path: str, error: str) -> dict[str, str]:
    return {"path": path, "error": error}


def read_entries(fmt: str, root: Path, manifest: Path | None, failed: list[dict[str, str]]) -> list[Entry]:
    if fmt == "folder":
        return read_folder(root, failed)
    assert manifest is not None
    if fmt in ("csv", "jsonl"):
        return read_manifest(manifest, fmt, failed)
    if fmt == "smarthome-bench":
        return read_smarthome(manifest, root)
    return read_multihateclip(manifest, root)


def inside(path: Path, root: Path) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([real, str(root)]) == str(root)


def escape_message(ref: str, path: Path, root: Path) -> str:
    return (f"path {ref} resolves to {os.path.realpath(path)}, outside the source folder {root}; "
            "move the video inside the source folder (links and '..' may not leave it)")
