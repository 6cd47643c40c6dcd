"""Import videos into a dataset: from label folders, a CSV/JSONL manifest, SmartHome-Bench or MultiHateClip.

Every file is hashed (sha256) and deduplicated per dataset, so importing the same source twice changes
nothing. Each file is probed; files that exist but cannot be decoded are kept as unreadable rows (so the
UI can show why) and listed in ``failed``. Missing files, paths leaving the source folder, unknown labels
and duplicate ids are only listed in ``failed``. Rows are committed one video at a time, so an interrupted
import keeps what it finished; splits of videos already in the dataset never change.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db import queries
from db.engine import init_db, session_factory
from rbft_core.errors import ConfigError, DataError

__all__ = ["ImportReport", "import_videos", "detect_format", "VIDEO_EXTENSIONS", "FORMATS"]

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
FORMATS = ("auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export")
Format = Literal["auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export"]
ProgressFn = Callable[[int, int, str], None]

_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
_CHUNK_BYTES = 1 << 20
_SMARTHOME_COLUMNS = ("Title", "Anomaly Tag")
_MHC_COLUMNS = ("Video_ID", "Majority_Voting")


@dataclass
class ImportReport:
    """What one import did. ``counts``: readable videos per label in the dataset afterwards."""

    dataset: str
    imported: int = 0
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    format: str = ""

    @property
    def ok(self) -> bool:
        """True when the dataset has something from this source (the CLI exits 0)."""
        return self.imported + self.unchanged > 0

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (``json.dumps(report.to_json())``)."""
        return {
            "dataset": self.dataset,
            "imported": self.imported,
            "unchanged": self.unchanged,
            "failed": [dict(f) for f in self.failed],
            "counts": dict(self.counts),
        }

    def summary(self, max_examples: int = 3) -> str:
        """A short human summary; failures with the same cause are grouped (thousands stay readable)."""
        lines = [f"dataset {self.dataset}: {self.imported} imported, {self.unchanged} unchanged, "
                 f"{len(self.failed)} failed"]
        groups: dict[str, list[str]] = {}
        for item in self.failed:
            groups.setdefault(_failure_kind(item["error"]), []).append(item["path"])
        for kind, paths in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(paths[:max_examples])
            more = f" and {len(paths) - max_examples} more" if len(paths) > max_examples else ""
            lines.append(f"  {len(paths)} x {kind}: {shown}{more}")
        return "\n".join(lines)


def _failure_kind(error: str) -> str:
    for marker in (" not found under ", "duplicate id", "outside the source folder", "is not one of"):
        if marker in error:
            return marker.strip()
    return error if len(error) < 80 else error[:77] + "..."


@dataclass
class _Entry:
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
def _walk_videos(root: Path) -> Iterator[tuple[Path, bool]]:
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
                if not _inside(link, root):
                    yield link, True
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield Path(folder, name), False


def _read_folder(root: Path, failed: list[dict[str, str]]) -> list[_Entry]:
    entries = []
    for path, escaping_dir in _walk_videos(root):
        rel = path.relative_to(root)
        if escaping_dir:
            failed.append(_fail(rel.as_posix(), _escape_message(rel.as_posix(), path, root)))
        elif len(rel.parts) < 2:
            failed.append(_fail(rel.as_posix(), f"video {rel.as_posix()} is not inside a label folder; "
                                                f"move it to {root}/<label>/"))
        else:
            entries.append(_Entry(ref=rel.as_posix(), external_id=rel.as_posix(), label=rel.parts[0].strip(),
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


def _read_manifest(manifest: Path, fmt: str, failed: list[dict[str, str]]) -> list[_Entry]:
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
            failed.append(_fail(ref or f"{word} {number}", f"{word} {number} has an empty "
                                f"{'path' if not ref else 'label'}; fill it in or delete the row"))
            continue
        external_id = row.get("id") or Path(ref).as_posix()
        extra = {k: v for k, v in row.items() if k not in ("path", "label", "split", "id") and v}
        entries.append(_Entry(ref=ref, external_id=external_id, label=label, row=f"{word} {number}",
                              split=row.get("split") or None, meta={"source_path": ref, **extra}))
    return entries


def _read_smarthome(manifest: Path, root: Path) -> list[_Entry]:
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
            _Entry(ref=found.get(name, name), external_id=title, label=label, row=f"row {number}", meta=meta)
        )
    return entries


def _read_multihateclip(manifest: Path, root: Path) -> list[_Entry]:
    order = {"train": 0, "val": 1, "test": 2}
    files = sorted(manifest.glob("*.tsv")) if manifest.is_dir() else [manifest]
    files.sort(key=lambda p: order.get(_SPLIT_ALIASES.get(p.stem.lower(), ""), 9))
    found = _index_by_name(root)
    entries = []
    for tsv in files:
        header, rows = _read_table(tsv, delimiter="\t")
        _require(tsv, header, _MHC_COLUMNS)
        split = _SPLIT_ALIASES.get(tsv.stem.lower())
        for number, row in rows:
            video_id = row.get("Video_ID", "")
            if not video_id:
                continue
            name = f"{video_id}.mp4"
            meta = {k.lower(): row.get(k, "") for k in ("Label", "Target_Victim", "Component", "Duration")}
            meta["annotation_file"] = tsv.name
            label = row.get("Majority_Voting", "").lower()
            entries.append(_Entry(ref=found.get(name, name), external_id=video_id, label=label,
                                  row=f"{tsv.name} row {number}", split=split, meta=meta))
    return entries


def _index_by_name(root: Path) -> dict[str, str]:
    """File name -> path relative to root, for manifests that name videos without folders (first one wins)."""
    index: dict[str, str] = {}
    for path, escaping_dir in _walk_videos(root):
        if not escaping_dir:
            index.setdefault(path.name, path.relative_to(root).as_posix())
    return index


# ----------------------------------------------------------------------------------------- helpers
def _fail(path: str, error: str) -> dict[str, str]:
    return {"path": path, "error": error}


def _inside(path: Path, root: Path) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([real, str(root)]) == str(root)


def _escape_message(ref: str, path: Path, root: Path) -> str:
    return (f"path {ref} resolves to {os.path.realpath(path)}, outside the source folder {root}; "
            "move the video inside the source folder (links and '..' may not leave it)")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _split_rank(seed: int, sha: str) -> str:
    return hashlib.sha256(f"{seed}:{sha}".encode()).hexdigest()


def _assign_splits(entries: list[_Entry], seed: int, test_fraction: float) -> None:
    """Stratified, deterministic: within each label the round(fraction * n) lowest ranks go to test."""
    by_label: dict[str, list[_Entry]] = {}
    for entry in entries:
        if entry.split is None:
            by_label.setdefault(entry.label, []).append(entry)
    for group in by_label.values():
        group.sort(key=lambda e: _split_rank(seed, e.sha256))
        n_test = round(test_fraction * len(group))
        for i, entry in enumerate(group):
            entry.split = "test" if i < n_test else "train"


def _as_factory(target: sessionmaker[Session] | str | None) -> sessionmaker[Session]:
    if isinstance(target, sessionmaker):
        return target
    init_db(target)
    return session_factory(target)


# -------------------------------------------------------------------------------------------- import
_KNOWN_LABELS = {"smarthome-bench": ["abnormal", "normal"], "multihateclip": ["hateful", "normal", "offensive"]}


def import_videos(
    target: sessionmaker[Session] | str | None,
    dataset: str,
    source: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    fmt: Format = "auto",
    preset: str = "smart-home",
    labels: list[str] | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import the videos under ``source`` into ``dataset`` (created when missing) and return the report.

    Args:
        target: a sessionmaker, or a database URL (None: the default database; migrated first).
        dataset: dataset name.
        source: folder holding the videos; every path must stay inside it.
        manifest: CSV/JSONL (path,label[,split,id]), SmartHome-Bench CSV, or MultiHateClip TSV (file or folder).
        fmt: importer to use; "auto" decides from the manifest's extension and header, or label folders.
        preset: expert preset recorded on a new dataset.
        labels: label set of a new dataset (default: the labels found in the source).
        seed, test_fraction: stratified train/test split for videos whose split the source does not give.
        progress: called as ``progress(i, total, path)`` after each candidate video.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}")
    bundle = _rbft_export(source, fmt, manifest)
    if bundle is not None:  # our own export: videos, labels, splits and rationales from its provenance.csv
        source, fmt, preset = bundle.root, "rbft-export", bundle.preset.get("name") or preset
        labels = labels or list(bundle.preset.get("labels") or []) or None
    root = Path(source).expanduser()
    if not root.is_dir():
        raise DataError(f"source folder {root} does not exist or is not a folder; pass the folder holding the videos")
    root = Path(os.path.realpath(root))
    manifest_path = Path(manifest).expanduser() if manifest is not None else None
    if fmt == "auto":
        fmt = detect_format(manifest_path)  # type: ignore[assignment]
    if fmt not in ("folder", "rbft-export") and manifest_path is None:
        raise ConfigError(f"format {fmt} needs a manifest; pass --manifest FILE")

    failed: list[dict[str, str]] = []
    entries = ([_Entry(**e) for e in bundle.entries(failed)] if bundle is not None
               else _read_entries(fmt, root, manifest_path, failed))
    if not entries and not failed:
        raise DataError(f"no videos found in {root}; expected one folder per label holding "
                        f"{', '.join(sorted(VIDEO_EXTENSIONS))} files, e.g. {root}/normal/clip.mp4")
    entries = _drop_duplicate_ids(entries, failed)
    entries = _normalise_splits(entries, failed)

    factory = _as_factory(target)
    report = ImportReport(dataset=dataset, format=fmt)
    with factory() as session:
        existing = queries.find_dataset(session, dataset)
        if existing is not None and existing.labels and labels and set(labels) != set(existing.labels):
            raise ConfigError(
                f"dataset {dataset} already has the labels {', '.join(existing.labels)}, not {', '.join(labels)}; "
                "drop --labels or import into a new dataset"
            )
        allowed = (existing.labels if existing is not None and existing.labels
                   else labels or _KNOWN_LABELS.get(fmt) or sorted({e.label for e in entries}))
        entries = _check_labels(entries, list(allowed), dataset, failed)
        ds = queries.get_or_create_dataset(session, dataset, preset=preset, labels=list(allowed),
                                           **(bundle.dataset_settings() if bundle is not None else {}))
        session.commit()
        dataset_id = ds.id

        entries = _resolve_and_hash(entries, root, failed)
        new = _classify(session, dataset_id, dataset, entries, report, failed)
        _assign_splits(new, seed, test_fraction)
        to_store = {id(e) for e in new}
        total = len(entries)
        for i, entry in enumerate(entries, 1):
            if id(entry) in to_store:
                _store(session, dataset_id, root, entry, report, failed)
            if progress is not None:
                progress(i, total, entry.ref)
        if bundle is not None:
            from rbft_core.export.reimport import restore_rationales

            restore_rationales(session, dataset_id, bundle)

        report.failed = failed
        report.counts = queries.label_counts(session, dataset_id, readable_only=True)
        details = {"format": fmt, "manifest": str(manifest_path or ""), "seed": seed, "test_fraction": test_fraction}
        queries.record_import_run(session, dataset_id, str(root), fmt, {**report.to_json(), **details})
        session.commit()
    return report


def _rbft_export(source: Any, fmt: str, manifest: Any) -> Any:
    """Our own export (folder or zip) when asked for, or with format auto and no manifest when it is one."""
    from rbft_core.export import reimport as export_import

    if fmt == "rbft-export" or (fmt == "auto" and manifest is None and export_import.is_rbft_export(source)):
        return export_import.open_export(source)
    return None


def _read_entries(fmt: str, root: Path, manifest: Path | None, failed: list[dict[str, str]]) -> list[_Entry]:
    if fmt == "folder":
        return _read_folder(root, failed)
    assert manifest is not None
    if fmt in ("csv", "jsonl"):
        return _read_manifest(manifest, fmt, failed)
    if fmt == "smarthome-bench":
        return _read_smarthome(manifest, root)
    return _read_multihateclip(manifest, root)


def _drop_duplicate_ids(entries: list[_Entry], failed: list[dict[str, str]]) -> list[_Entry]:
    first: dict[str, _Entry] = {}
    kept = []
    for entry in entries:
        if entry.external_id in first:
            failed.append(_fail(entry.ref, f"duplicate id {entry.external_id} "
                                           f"(first at {first[entry.external_id].row}); remove one of the rows"))
        else:
            first[entry.external_id] = entry
            kept.append(entry)
    return kept


def _normalise_splits(entries: list[_Entry], failed: list[dict[str, str]]) -> list[_Entry]:
    kept = []
    for entry in entries:
        if entry.split is not None:
            split = _SPLIT_ALIASES.get(entry.split.strip().lower())
            if split is None:
                failed.append(_fail(entry.ref, f"split {entry.split!r} at {entry.row} is not train, val or test; "
                                               "fix it or leave it empty for an automatic split"))
                continue
            entry.split = split
        kept.append(entry)
    return kept


MAX_ID_CHARS = 300  # videos.external_id is VARCHAR(300): PostgreSQL enforces it, SQLite does not


def _check_labels(entries: list[_Entry], allowed: list[str], dataset: str,
                  failed: list[dict[str, str]]) -> list[_Entry]:
    canonical = {label.lower(): label for label in allowed}
    kept = []
    for entry in entries:
        if len(entry.external_id) > MAX_ID_CHARS:
            failed.append(_fail(entry.ref, f"id {entry.external_id[:40]!r}... is {len(entry.external_id)} characters; "
                                           f"ids may have at most {MAX_ID_CHARS}: shorten it in the manifest"))
            continue
        label = canonical.get(entry.label.lower())
        if label is None:
            failed.append(_fail(entry.ref, f"label {entry.label!r} is not one of the labels of dataset {dataset} "
                                           f"({', '.join(allowed)}); fix the label or import into another dataset"))
            continue
        entry.label = label
        kept.append(entry)
    return kept


def _resolve_and_hash(entries: list[_Entry], root: Path, failed: list[dict[str, str]]) -> list[_Entry]:
    kept = []
    for entry in entries:
        candidate = root / entry.ref
        if not _inside(candidate, root):
            failed.append(_fail(entry.ref, _escape_message(entry.ref, candidate, root)))
            continue
        if not candidate.is_file():
            failed.append(_fail(entry.ref, f"video file {entry.ref} not found under {root}"))
            continue
        entry.path = Path(os.path.realpath(candidate))
        try:
            entry.size_bytes = entry.path.stat().st_size
            entry.sha256 = _sha256_file(entry.path)
        except OSError as e:
            failed.append(_fail(entry.ref, f"cannot read {entry.ref}: {e.strerror}; check its permissions"))
            continue
        kept.append(entry)
    return kept


def _classify(session: Session, dataset_id: int, dataset: str, entries: list[_Entry], report: ImportReport,
              failed: list[dict[str, str]]) -> list[_Entry]:
    """Count what is already there; return the entries to insert (content and id both new)."""
    new: list[_Entry] = []
    seen: dict[str, _Entry] = {}
    for entry in entries:
        known = queries.find_video_by_sha(session, dataset_id, entry.sha256)
        if known is not None:
            if known.external_id != entry.external_id:
                failed.append(_fail(entry.ref, f"same content as video {known.external_id!r} already in dataset "
                                               f"{dataset}; duplicate skipped"))
            elif known.readable:
                report.unchanged += 1
            else:
                failed.append(_fail(entry.ref, known.error or "unreadable video"))
        elif entry.sha256 in seen:
            failed.append(_fail(entry.ref, f"same content as {seen[entry.sha256].ref} ({seen[entry.sha256].row}); "
                                           "duplicate skipped"))
        elif queries.find_video_by_external_id(session, dataset_id, entry.external_id) is not None:
            failed.append(_fail(entry.ref, f"id {entry.external_id} is already in dataset {dataset} with different "
                                           "content (was the file changed?); give it a new id or a new dataset"))
        else:
            seen[entry.sha256] = entry
            new.append(entry)
    return new


def _probe(path: Path) -> tuple[Any, str | None]:
    from rbft_core.data.video import probe_video  # imported late: pulls in the video stack

    try:
        return probe_video(path), None
    except DataError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - one odd file must not stop a long import
        return None, f"video {path.name} could not be read ({type(e).__name__}: {e}); re-encode it or remove it"


def _store(session: Session, dataset_id: int, root: Path, entry: _Entry, report: ImportReport,
           failed: list[dict[str, str]]) -> None:
    """Probe and insert one video in its own transaction."""
    assert entry.path is not None and entry.split is not None
    info, error = _probe(entry.path)
    fields = {name: getattr(info, name, None) for name in ("duration_s", "fps", "width", "height", "num_frames",
                                                           "codec")}
    meta = dict(entry.meta)
    if info is not None:
        meta["has_audio"] = bool(getattr(info, "has_audio", False))
    try:
        queries.add_video(session, dataset_id, external_id=entry.external_id, path=str(entry.path),
                          source_root=str(root), sha256=entry.sha256, size_bytes=entry.size_bytes,
                          label=entry.label, split=entry.split, readable=error is None, error=error,
                          meta=meta, **fields)
        session.commit()
    except IntegrityError:
        session.rollback()
        failed.append(_fail(entry.ref, f"video {entry.external_id} was added by another import at the same "
                                       "time; run the import again to see its state"))
        return
    if error is None:
        report.imported += 1
    else:
        failed.append(_fail(entry.ref, error))
