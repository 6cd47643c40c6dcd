"""Unsaved typing, kept on the server: what a reviewer typed into an item but neither saved nor moved on from.

The review page saves a draft when the reviewer moves on (``workspace.autosave``); text typed before the tab is
closed, the browser crashes or the network drops would be lost. The page can send its fields here while the
reviewer types (debounced); reopening the item offers the kept text back, with the version it was typed
against, so a newer save by someone else is never overwritten silently. Saving (or moving on) drops it.

Stored as one small JSON file per review and reviewer under ``<data dir>/drafts/review-<id>/`` (atomic writes);
nothing here touches the review itself or its history.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from rbft_core.errors import ConfigError
from rbft_core.models.prompts import DIMENSIONS
from rbft_core.names import file_slug
from rbft_core.settings import data_dir

__all__ = ["keep_typing", "kept_typing", "drop_typing", "MAX_TYPED_CHARS"]

MAX_TYPED_CHARS = 4000  # per field, as for a save (workspace.MAX_FIELD_CHARS)


def _path(review_id: int, reviewer: Optional[str]) -> Path:
    who = (reviewer or "").strip() or "anonymous"
    return data_dir() / "drafts" / f"review-{int(review_id)}" / f"{file_slug(who[:200])}.json"


def keep_typing(review_id: int, reviewer: Optional[str], *, base_version: int, fields: dict[str, Optional[str]],
                label: Optional[str]) -> dict[str, Any]:
    """Keep what ``reviewer`` has typed into review ``review_id`` (opened at ``base_version``); returns the record."""
    record = {"review_id": int(review_id), "reviewer": (reviewer or "").strip() or "anonymous",
              "base_version": int(base_version), "label": (label or "").strip() or None, "kept_at": time.time(),
              "fields": {}}
    for dim in DIMENSIONS:
        text = fields.get(dim) or ""
        if len(text) > MAX_TYPED_CHARS:
            raise ConfigError(f"{dim} is {len(text):,} characters; the limit is {MAX_TYPED_CHARS:,} per field")
        record["fields"][dim] = text
    path = _path(review_id, reviewer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".typing.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return record


def kept_typing(review_id: int, reviewer: Optional[str], current_version: Optional[int] = None) -> Optional[dict]:
    """The kept typing of ``reviewer`` on this review, or None; ``stale`` is True when the review was saved
    (by anyone) after the text was typed, so the page must offer it, not put it over the newer text."""
    try:
        record = json.loads(_path(review_id, reviewer).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record["stale"] = current_version is not None and record.get("base_version") != current_version
    return record


def drop_typing(review_id: int, reviewer: Optional[str]) -> None:
    """Forget the kept typing (after a save or an explicit discard)."""
    _path(review_id, reviewer).unlink(missing_ok=True)
