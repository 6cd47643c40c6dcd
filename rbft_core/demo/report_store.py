"""The demo report's results file: one JSON line per finished step, keyed by the hash of its spec.

A report appends a record as soon as a training, an evaluation or a masking experiment finishes, so a killed
report started again skips every step whose key is already there and continues where it stopped. A
half-written last line (killed mid-write) is ignored.
"""

from __future__ import annotations

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
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                self.records[self._id(record)] = record

    @staticmethod
    def _id(record: dict) -> tuple:
        return record["type"], record["key"], record.get("split", "")

    def get(self, type_: str, key: str, split: str = "") -> Optional[dict]:
        return self.records.get((type_, key, split))

    def add(self, record: dict) -> dict:
        """Append ``record`` (it must carry ``type`` and ``key``) and flush it to disk at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[self._id(record)] = record
        return record

    def of_type(self, type_: str) -> list[dict]:
        return [r for (t, _, _), r in self.records.items() if t == type_]
