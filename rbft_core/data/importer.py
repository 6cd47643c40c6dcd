"""Import videos into a dataset: from label folders, a CSV/JSONL manifest, SmartHome-Bench or MultiHateClip.

Every file is hashed (sha256) and deduplicated per dataset, so importing the same source twice changes
nothing. Each new file is probed; files that exist but cannot be decoded are kept as unreadable rows (so the
UI can show why) and listed in ``failed``. Missing files, paths leaving the source folder, unknown labels
and duplicate ids are only listed in ``failed``. Splits of videos already in the dataset never change.

At any size: hashing and probing run in a process pool (``rbft_core.data.import_work``), what the dataset
already holds is looked up in chunks, files already there (same content, same id) are never probed again,
and new rows are inserted in transactions of ``batch_rows``; so an import killed at any point (even
``kill -9``) keeps every committed batch, and running it again skips those files by their hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db import queries, writes
from db.engine import init_db, session_factory
from rbft_core.data.dimensions import check_import_dimensions
from rbft_core.data.import_work import Meter, default_workers, hash_file, pool_map, probe_file
from rbft_core.data.manifests import (
    SPLIT_ALIASES,
    VIDEO_EXTENSIONS,
    Entry,
    detect_format,
    failure,
    read_entries,
)
from rbft_core.errors import ConfigError, DataError
from rbft_core.export import reimport as export_import
from rbft_core.export.reimport import restore_rationales
from rbft_core.models.prompts import Dimension
from rbft_core.names import file_slug
from rbft_core.settings import data_dir

__all__ = ["ImportReport", "import_videos", "detect_format", "VIDEO_EXTENSIONS", "FORMATS", "MAX_STORED_FAILURES",
           "stored_report"]

FORMATS = ("auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export")
Format = Literal["auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export"]
ProgressFn = Callable[[int, int, str], None]

_CHUNK_BYTES = 1 << 20
BATCH_ROWS = 400  # new videos per transaction
MAX_STORED_FAILURES = 200  # failures kept in the import's database row; all of them go to a JSONL file


@dataclass
class ImportReport:
    """What one import did. ``counts``: readable videos per label in the dataset afterwards."""

    dataset: str
    imported: int = 0
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    format: str = ""
    hashed: int = 0  # distinct files read and hashed
    probed: int = 0  # files decoded to check them (new content only)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the dataset has something from this source (the CLI exits 0)."""
        return self.imported + self.unchanged > 0

    def to_json(self, max_failed: int | None = None) -> dict[str, Any]:
        """The report as a JSON-ready dict (``json.dumps(report.to_json())``); ``max_failed`` keeps the first
        failures only and adds ``failed_total``."""
        failed = self.failed if max_failed is None else self.failed[:max_failed]
        out = {
            "dataset": self.dataset,
            "imported": self.imported,
            "unchanged": self.unchanged,
            "failed": [dict(f) for f in failed],
            "counts": dict(self.counts),
        }
        if len(failed) < len(self.failed):
            out["failed_total"] = len(self.failed)
        return out

    def summary(self, max_examples: int = 3) -> str:
        """A short human summary; failures with the same cause are grouped (thousands stay readable)."""
        rate = f" in {self.seconds:.1f} s ({self.hashed / self.seconds:,.0f} files/s)" if self.seconds > 0 else ""
        lines = [f"dataset {self.dataset}: {self.imported} imported, {self.unchanged} unchanged, "
                 f"{len(self.failed)} failed{rate}"]
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


# ----------------------------------------------------------------------------------------- helpers
def _split_rank(seed: int, sha: str) -> str:
    return hashlib.sha256(f"{seed}:{sha}".encode()).hexdigest()


def _assign_splits(entries: list[Entry], seed: int, test_fraction: float) -> None:
    """Stratified, deterministic: within each label the round(fraction * n) lowest ranks go to test."""
    by_label: dict[str, list[Entry]] = {}
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
    dimensions: tuple[Dimension, ...] | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    progress: ProgressFn | None = None,
    workers: int = 0,
    batch_rows: int = BATCH_ROWS,
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
        dimensions: rationale dimensions of a new dataset (None: the paper's four; an export's own); an existing
            dataset keeps its own and refuses others (``data.dimensions.check_import_dimensions``).
        seed, test_fraction: stratified train/test split for videos whose split the source does not give.
        progress: called as ``progress(done, total, text)`` while files are hashed and as each batch of new
            videos is committed; ``text`` tells the phase, files/s and the time left.
        workers: processes that hash and probe files (0: one per CPU core).
        batch_rows: new videos per transaction.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}")
    bundle = _rbft_export(source, fmt, manifest)
    if bundle is not None:  # our own export: videos, labels, splits and rationales from its provenance.csv
        source, fmt, preset = bundle.root, "rbft-export", bundle.preset.get("name") or preset
        labels = labels or list(bundle.preset.get("labels") or []) or None
        dimensions = dimensions if dimensions is not None else bundle.dimensions()
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
    entries = ([Entry(**e) for e in bundle.entries(failed)] if bundle is not None
               else read_entries(fmt, root, manifest_path, failed))
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
        check_import_dimensions(existing, dimensions, dataset, from_export=bundle is not None)
        allowed = (existing.labels if existing is not None and existing.labels
                   else labels or _KNOWN_LABELS.get(fmt) or sorted({e.label for e in entries}))
        entries = _check_labels(entries, list(allowed), dataset, failed)
        ds = queries.get_or_create_dataset(session, dataset, preset=preset, labels=list(allowed),
                                           dimensions=None if dimensions is None else [d.to_dict() for d in dimensions],
                                           **(bundle.dataset_settings() if bundle is not None else {}))
        session.commit()
        dataset_id = ds.id

        started = time.perf_counter()
        meter = Meter(progress)
        workers = workers if workers > 0 else default_workers()
        entries, hashed = _resolve_and_hash(entries, root, failed, report, workers, meter)
        new = _classify(session, dataset_id, dataset, entries, report, failed)
        _assign_splits(new, seed, test_fraction)
        _store_all(session, dataset_id, root, new, report, failed, workers, max(1, batch_rows), meter, hashed)
        report.seconds = round(time.perf_counter() - started, 3)
        if bundle is not None:
            restore_rationales(session, dataset_id, bundle)

        report.failed = failed
        report.counts = queries.label_counts(session, dataset_id, readable_only=True)
        details = {"format": fmt, "manifest": str(manifest_path or ""), "seed": seed, "test_fraction": test_fraction}
        queries.record_import_run(session, dataset_id, str(root), fmt, {**stored_report(report), **details})
        session.commit()
    return report


def stored_report(report: ImportReport) -> dict[str, Any]:
    """The report as the database keeps it: at most ``MAX_STORED_FAILURES`` failures in the row, the count of
    all of them, and (when there are any) every one in ``<data>/imports/<dataset>-<time>-failed.jsonl``."""
    out = report.to_json()
    out["failed_total"] = len(report.failed)
    out["failed"] = out["failed"][:MAX_STORED_FAILURES]
    if report.failed:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        path = data_dir() / "imports" / f"{file_slug(report.dataset)}-{stamp}-failed.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            for item in report.failed:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        out["failed_file"] = str(path)
    return out


def _rbft_export(source: Any, fmt: str, manifest: Any) -> Any:
    """Our own export (folder or zip) when asked for, or with format auto and no manifest when it is one."""

    if fmt == "rbft-export" or (fmt == "auto" and manifest is None and export_import.is_rbft_export(source)):
        return export_import.open_export(source)
    return None


def _drop_duplicate_ids(entries: list[Entry], failed: list[dict[str, str]]) -> list[Entry]:
    first: dict[str, Entry] = {}
    kept = []
    for entry in entries:
        if entry.external_id in first:
            failed.append(failure(entry.ref, f"duplicate id {entry.external_id} "
                                           f"(first at {first[entry.external_id].row}); remove one of the rows"))
        else:
            first[entry.external_id] = entry
            kept.append(entry)
    return kept


def _normalise_splits(entries: list[Entry], failed: list[dict[str, str]]) -> list[Entry]:
    kept = []
    for entry in entries:
        if entry.split is not None:
            split = SPLIT_ALIASES.get(entry.split.strip().lower())
            if split is None:
                failed.append(failure(entry.ref, f"split {entry.split!r} at {entry.row} is not train, val or test; "
                                               "fix it or leave it empty for an automatic split"))
                continue
            entry.split = split
        kept.append(entry)
    return kept


MAX_ID_CHARS = 300  # videos.external_id is VARCHAR(300): PostgreSQL enforces it, SQLite does not


def _check_labels(entries: list[Entry], allowed: list[str], dataset: str,
                  failed: list[dict[str, str]]) -> list[Entry]:
    canonical = {label.lower(): label for label in allowed}
    kept = []
    for entry in entries:
        if len(entry.external_id) > MAX_ID_CHARS:
            failed.append(failure(entry.ref, f"id {entry.external_id[:40]!r}... is {len(entry.external_id)} characters; "
                                           f"ids may have at most {MAX_ID_CHARS}: shorten it in the manifest"))
            continue
        label = canonical.get(entry.label.lower())
        if label is None:
            failed.append(failure(entry.ref, f"label {entry.label!r} is not one of the labels of dataset {dataset} "
                                           f"({', '.join(allowed)}); fix the label or import into another dataset"))
            continue
        entry.label = label
        kept.append(entry)
    return kept


def _resolve_and_hash(entries: list[Entry], root: Path, failed: list[dict[str, str]], report: ImportReport,
                      workers: int, meter: Meter) -> tuple[list[Entry], int]:
    """Resolve and hash every distinct file once (in the pool); entries naming the same file share the result.

    Returns the usable entries and the number of distinct files (the first part of the progress total)."""
    refs = list(dict.fromkeys(entry.ref for entry in entries))
    facts: dict[str, tuple[Any, int, str, Any]] = {}
    meter.start("hashing")
    for i, (ref, fact) in enumerate(zip(refs, pool_map(hash_file, [(ref, str(root)) for ref in refs], workers)), 1):
        facts[ref] = fact
        meter.tick(i, len(refs) * 2, i, len(refs), force=i == len(refs))
    report.hashed = sum(1 for fact in facts.values() if fact[0] is not None)
    kept = []
    for entry in entries:
        path, size, sha, error = facts[entry.ref]
        if error is not None:
            failed.append(failure(entry.ref, error))
            continue
        entry.path, entry.size_bytes, entry.sha256 = Path(path), size, sha
        kept.append(entry)
    return kept, len(refs)


def _classify(session: Session, dataset_id: int, dataset: str, entries: list[Entry], report: ImportReport,
              failed: list[dict[str, str]]) -> list[Entry]:
    """Count what is already there; return the entries to insert (content and id both new)."""
    known, taken = queries.known_videos(session, dataset_id, shas=list({e.sha256 for e in entries}),
                                        external_ids=list({e.external_id for e in entries}))
    new: list[Entry] = []
    seen: dict[str, Entry] = {}
    for entry in entries:
        found = known.get(entry.sha256)
        if found is not None:
            external_id, readable, error = found
            if external_id != entry.external_id:
                failed.append(failure(entry.ref, f"same content as video {external_id!r} already in dataset "
                                               f"{dataset}; duplicate skipped"))
            elif readable:
                report.unchanged += 1
            else:
                failed.append(failure(entry.ref, error or "unreadable video"))
        elif entry.sha256 in seen:
            failed.append(failure(entry.ref, f"same content as {seen[entry.sha256].ref} ({seen[entry.sha256].row}); "
                                           "duplicate skipped"))
        elif entry.external_id in taken:
            failed.append(failure(entry.ref, f"id {entry.external_id} is already in dataset {dataset} with different "
                                           "content (was the file changed?); give it a new id or a new dataset"))
        else:
            seen[entry.sha256] = entry
            new.append(entry)
    return new


def _row(root: Path, entry: Entry, fields: dict[str, Any], error: str | None) -> dict[str, Any]:
    assert entry.path is not None and entry.split is not None
    meta = dict(entry.meta)
    if error is None:
        meta["has_audio"] = bool(fields.get("has_audio", False))
    probe = {name: fields.get(name) for name in ("duration_s", "fps", "width", "height", "num_frames", "codec")}
    return {"external_id": entry.external_id, "path": str(entry.path), "source_root": str(root),
            "sha256": entry.sha256, "size_bytes": entry.size_bytes, "label": entry.label, "split": entry.split,
            "readable": error is None, "error": error, "meta": meta, **probe}


def _store_all(session: Session, dataset_id: int, root: Path, new: list[Entry], report: ImportReport,
               failed: list[dict[str, str]], workers: int, batch_rows: int, meter: Meter, hashed: int) -> None:
    """Probe the new files (in the pool) and insert them, one transaction per ``batch_rows`` videos."""
    total = hashed + len(new)
    meter.start("probing and storing")
    meter.tick(hashed, total, 0, len(new), force=True)
    batch: list[tuple[Entry, dict[str, Any], str | None]] = []
    done = 0
    for entry, (fields, error) in zip(new, pool_map(probe_file, [str(e.path) for e in new], workers, chunksize=8)):
        report.probed += 1
        batch.append((entry, fields, error))
        if len(batch) >= batch_rows:
            done += _commit(session, dataset_id, root, batch, report, failed)
            meter.tick(hashed + done, total, done, len(new), note=entry.ref, force=True)  # once per batch
            batch = []
    if batch:
        done += _commit(session, dataset_id, root, batch, report, failed)
        meter.tick(hashed + done, total, done, len(new), note=batch[-1][0].ref, force=True)


def _commit(session: Session, dataset_id: int, root: Path, batch: list[tuple[Entry, dict[str, Any], str | None]],
            report: ImportReport, failed: list[dict[str, str]]) -> int:
    """Insert one batch in one transaction; a batch another import raced with goes in row by row."""
    rows = [_row(root, entry, fields, error) for entry, fields, error in batch]
    try:
        writes.add_videos(session, dataset_id, rows)
        session.commit()
        stored = [True] * len(batch)
    except IntegrityError:
        session.rollback()
        stored = []
        for row in rows:
            try:
                writes.add_videos(session, dataset_id, [row])
                session.commit()
                stored.append(True)
            except IntegrityError:
                session.rollback()
                stored.append(False)
    for (entry, _fields, error), ok in zip(batch, stored):
        if not ok:
            failed.append(failure(entry.ref, f"video {entry.external_id} was added by another import at the same "
                                           "time; run the import again to see its state"))
        elif error is None:
            report.imported += 1
        else:
            failed.append(failure(entry.ref, error))
    return len(batch)
