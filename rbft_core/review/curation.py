"""Which curated videos a consumer (export, training) takes: a validated selection over splits,
review statuses, edited/untouched rationales and labels.

The rows themselves come from ``db.queries.curated_examples`` (the one place that decides a video's
effective rationale and label); this module only holds the selection and its wording for messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from db import curated_queries
from db.models import REVIEW_STATUSES
from rbft_core.errors import ConfigError

__all__ = ["Selection", "SPLITS", "STATUSES", "parse_list", "parse_edited", "select_rows"]

SPLITS = ("train", "val", "test")
# "none": videos that have no review yet (no rationale was generated for them).
STATUSES = (*REVIEW_STATUSES, "none")
_EDITED = {"yes": True, "no": False, "any": None, "true": True, "false": False, "all": None, "": None}


def parse_list(value: Any) -> Optional[tuple[str, ...]]:
    """``"train, test"`` / ``["train"]`` -> a tuple; ``None``, ``""``, ``"all"`` and ``"any"`` -> None (no filter)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    if not cleaned or any(item.lower() in ("all", "any") for item in cleaned):
        return None
    return cleaned


def parse_edited(value: Any) -> Optional[bool]:
    """``yes`` / ``no`` / ``any`` (or a bool / None) -> True / False / None."""
    if value is None or isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key not in _EDITED:
        raise ConfigError(f"edited must be yes, no or any, got {value!r}")
    return _EDITED[key]


@dataclass(frozen=True)
class Selection:
    """Which videos to take.

    Args:
        splits: splits to take (None: all).
        statuses: review statuses to take (None: all, including videos without a review). Default:
            accepted only.
        edited: True: only rationales the reviewer edited; False: only untouched ones; None: both.
        labels: effective labels to take (None: all).
        include_excluded: also take videos a reviewer marked as excluded.
    """

    splits: Optional[tuple[str, ...]] = None
    statuses: Optional[tuple[str, ...]] = ("accepted",)
    edited: Optional[bool] = None
    labels: Optional[tuple[str, ...]] = None
    include_excluded: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", parse_list(self.splits))
        object.__setattr__(self, "statuses", parse_list(self.statuses))
        object.__setattr__(self, "labels", parse_list(self.labels))
        object.__setattr__(self, "edited", parse_edited(self.edited))
        _check("split", self.splits, SPLITS)
        _check("status", self.statuses, STATUSES)

    def describe(self) -> str:
        """The selection in words, for messages and the export README."""
        edited = {True: "edited only", False: "untouched only", None: "edited or not"}[self.edited]
        parts = [
            f"split {_words(self.splits)}",
            f"status {_words(self.statuses)}",
            edited,
            f"labels {_words(self.labels)}",
            "excluded videos included" if self.include_excluded else "excluded videos left out",
        ]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "splits": list(self.splits) if self.splits else None,
            "statuses": list(self.statuses) if self.statuses else None,
            "edited": self.edited,
            "labels": list(self.labels) if self.labels else None,
            "include_excluded": self.include_excluded,
        }


def _words(values: Optional[Iterable[str]]) -> str:
    return ",".join(values) if values else "all"


def _check(name: str, values: Optional[tuple[str, ...]], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values or () if v not in allowed]
    if bad:
        raise ConfigError(f"{name} {', '.join(bad)} is not one of {', '.join(allowed)} (or all)")


def select_rows(session: Any, dataset_id: int, selection: Selection) -> list[dict[str, Any]]:
    """The curated rows of a dataset that match ``selection`` (see ``db.queries.curated_examples``)."""

    return curated_queries.curated_examples(
        session,
        dataset_id,
        splits=selection.splits,
        statuses=selection.statuses,
        edited=selection.edited,
        labels=selection.labels,
        include_excluded=selection.include_excluded,
    )
