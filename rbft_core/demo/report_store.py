"""The demo report's results file: one JSON line per finished step, keyed by the hash of its spec.

A report appends a record as soon as a training, an evaluation or a masking experiment finishes, so a killed
report started again skips every step whose key is already there and continues where it stopped. A
half-written last line (killed mid-write) is dropped when the file is opened.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

__all__ = ["ResultStore", "spec_key"]


def spec_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (specs as dicts, a split name, a context key)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ResultStore:
    """``results.jsonl`` in the report's work folder: records by (type, key[, split])."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[tuple, dict] = {}
        self.reload()

    def reload(self) -> None:
        """Read the file again (the report's worker processes append to it too), under the writers' lock."""
        if not self.path.is_file():
            return
        with open(self.path, "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                text = handle.read()
                kept = []
                for line in text.splitlines(keepends=True):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a kill
                    if line.endswith("\n"):
                        self.records[self._id(record)] = record
                        kept.append(line)
                if "".join(kept) != text:  # drop what a kill left half written, so the next record starts a line
                    handle.seek(0)
                    handle.write("".join(kept))
                    handle.truncate()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _id(record: dict) -> tuple:
        return record["type"], record["key"], record.get("split", "")

    def get(self, type_: str, key: str, split: str = "") -> Optional[dict]:
        return self.records.get((type_, key, split))

    def add(self, record: dict) -> dict:
        """Append ``record`` (it must carry ``type`` and ``key``) and flush it to disk at once; a lock keeps the
        lines of the report's worker processes whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(json.dumps(record, default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        self.records[self._id(record)] = record
        return record

    def of_type(self, type_: str) -> list[dict]:
        return [r for (t, _, _), r in self.records.items() if t == type_]
