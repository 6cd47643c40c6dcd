"""What a review's derived columns and counter key are, from its stored values, its suggestion and its video.

Pure functions, no SQL: ``db.queries``, ``db.writes`` and ``db.review_queries`` call them on every write, so
the queue columns of ``reviews`` (``queue_label``, ``queue_key``, ``edited``, ``parse_failed``, ``flag_bits``,
``search_doc``)
and the rows of ``dataset_counters`` always agree with the source of truth (the review's own fields, the
suggestion it points at, the video). Tests recompute both from scratch after random operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

__all__ = ["is_edited", "search_document", "derived_columns", "review_key", "video_key", "PARSE_RANK"]

# A newer suggestion replaces the one a never-saved review shows unless it parsed worse.
PARSE_RANK = {"failed": 0, "partial": 1, "ok": 2}


def is_edited(review: Mapping[str, Any], suggestion: Optional[Mapping[str, Any]]) -> bool:
    """True when a dimension the reviewer stored differs from the suggestion's text (a dimension the review's
    ``rationale`` leaves out, or holds as None, is the suggestion's)."""
    suggested = (suggestion or {}).get("rationale") or {}
    return any(text is not None and text != (suggested.get(dim) or "")
               for dim, text in (review.get("rationale") or {}).items())


def search_document(external_id: str, suggestion: Optional[Mapping[str, Any]], review: Mapping[str, Any]) -> str:
    """The text free-text search looks in: the video id, the suggestion (conclusion, its dimensions), the review's
    text."""
    parts = [external_id]
    if suggestion:
        parts += [suggestion.get("conclusion") or "", *((suggestion.get("rationale") or {}).values())]
    parts += [text or "" for text in (review.get("rationale") or {}).values()]
    return "\n".join(p for p in parts if p)


def derived_columns(review: Mapping[str, Any], suggestion: Optional[Mapping[str, Any]],
                    video: Mapping[str, Any]) -> dict[str, Any]:
    """The queue columns of a review whose stored values are ``review`` (label, rationale).

    ``suggestion``: the one the review points at (doubt_score, parse_status, flag_bits, conclusion, rationale) or
    None;
    ``video``: dataset_id, external_id, split, label.
    """
    score = float((suggestion or {}).get("doubt_score") or 0.0)
    return {
        "dataset_id": video["dataset_id"],
        "split": video["split"],
        "queue_label": review.get("label") or video["label"],
        "queue_key": -score if score else 0.0,
        "edited": is_edited(review, suggestion),
        "parse_failed": bool(suggestion) and (suggestion or {}).get("parse_status") == "failed",
        "flag_bits": int((suggestion or {}).get("flag_bits") or 0),
        "search_doc": search_document(video["external_id"], suggestion, review),
    }


def review_key(dataset_id: int, *, status: str, queue_label: str, video_label: str, split: str, readable: bool,
               edited: bool, excluded: bool, parse_failed: bool, flag_bits: int) -> tuple:
    """The counter key (``db.models.COUNTER_KEY``, dataset first) of a video with a review."""
    return (dataset_id, status, queue_label, video_label, split, bool(readable), bool(edited), bool(excluded),
            bool(parse_failed), int(flag_bits or 0))


def video_key(dataset_id: int, *, label: str, split: str, readable: bool) -> tuple:
    """The counter key of a video without a review (no suggestion yet)."""
    return (dataset_id, "none", label, label, split, bool(readable), False, False, False, 0)
