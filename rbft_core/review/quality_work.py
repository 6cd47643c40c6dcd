"""Review quality, part three: what reviewers changed in the suggestions, and how fast they worked.

- ``edit_metrics``: per dimension, the suggestion against the item's final text: share edited and the
  normalised edit distance (Levenshtein distance / length of the longer text, the distance of ``quality_text``).
- ``conclusion_changes``: the share of items whose final label differs from the label the suggestion concluded.
- ``throughput``: per reviewer or per (model, prompt version) of the suggestion started from: items, items per
  hour, median seconds per item (shown to saved) and acceptance rate (``accepted_unchanged``).
- ``throughput_over_time``: saves per reviewer in time bins, as items per hour.

Conventions (one response per reviewer and item, normalised text, missing values) are in
``rbft_core.review.quality``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Optional, Sequence

from rbft_core.errors import ConfigError
from rbft_core.review.quality import (
    LABEL_FIELD, ItemRecord, Response, check_dimensions, latest_responses, normalise_text, response_value,
)
from rbft_core.review.quality_text import text_distance

__all__ = [
    "DimensionEdits", "Changed", "Throughput", "EDIT_METHOD", "CONCLUSION_METHOD", "THROUGHPUT_METHOD",
    "ACCEPTANCE_METHOD", "MAX_ITEM_S", "MAX_BINS", "HISTOGRAM_BINS", "edit_metrics", "conclusion_changes", "accepted_unchanged",
    "throughput", "by_reviewer", "by_model", "throughput_over_time",
]

EDIT_METHOD = ("suggestion vs final text: edited = the normalised texts differ; distance = Levenshtein distance / "
               "length of the longer text (rapidfuzz); a dimension the model left empty counts as ''")
CONCLUSION_METHOD = "final label != the label the suggestion's conclusion names, over items where both are known"
THROUGHPUT_METHOD = ("seconds per item = saved_at - shown_at of each reviewer's latest response; items per hour = "
                     "3600 * timed items / their total seconds; items over the idle cap are left out of both")
ACCEPTANCE_METHOD = ("accepted = saved unchanged from the suggestion: every answered dimension and the conclusion "
                     "equal to the suggestion's (normalised), and the label equal to the label it concluded "
                     "where both are known; rate over the responses where this can be told")
MAX_ITEM_S = 1800.0  # an item shown longer than this was left open, not worked on
MAX_BINS = 2000
HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class DimensionEdits:
    """One dimension over the items with a suggestion and a final text for it."""

    dimension: str
    distances: tuple[float, ...]  # one per item, 0.0 where unedited

    @property
    def n_items(self) -> int:
        return len(self.distances)

    @property
    def n_edited(self) -> int:
        return sum(d > 0 for d in self.distances)

    def to_dict(self) -> dict[str, Any]:
        """Counts, share edited, mean and median distance over all items, and a histogram of the edited ones
        (distance > 0): ``HISTOGRAM_BINS`` bins [0, 0.1), [0.1, 0.2), ... [0.9, 1.0] as ``numpy.histogram``."""
        edited = [d for d in self.distances if d > 0]
        counts = [0] * HISTOGRAM_BINS
        for d in edited:
            counts[min(HISTOGRAM_BINS - 1, int(d * HISTOGRAM_BINS))] += 1
        n = self.n_items
        return {"n_items": n, "n_edited": len(edited), "share_edited": len(edited) / n if n else None,
                "mean_distance": statistics.fmean(self.distances) if n else None,
                "median_distance": statistics.median(self.distances) if n else None,
                "histogram": {"edges": [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)], "counts": counts}}


@dataclass(frozen=True)
class Changed:
    """How many of ``n_items`` compared items changed."""

    n_items: int
    n_changed: int

    @property
    def share(self) -> Optional[float]:
        return self.n_changed / self.n_items if self.n_items else None

    def to_dict(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "n_changed": self.n_changed, "share": self.share}


def edit_metrics(items: Sequence[ItemRecord], dimensions: Sequence[str]) -> dict[str, DimensionEdits]:
    """Per dimension: the distance between the suggestion's text and the final text of every item that has
    both (an item with no final text for a dimension is left out of that dimension)."""
    dims = check_dimensions(dimensions)
    distances: dict[str, list[float]] = {d: [] for d in dims}
    for item in items:
        if item.suggestion is None or item.final_dimensions is None:
            continue
        for d in dims:
            final = item.final_dimensions.get(d)
            if final is not None:
                suggested = normalise_text(item.suggestion.dimensions.get(d) or "")
                distances[d].append(text_distance(suggested, normalise_text(final)))
    return {d: DimensionEdits(d, tuple(v)) for d, v in distances.items()}


def conclusion_changes(items: Sequence[ItemRecord]) -> Changed:
    """Items whose final label differs from the label their suggestion concluded (both known)."""
    compared = changed = 0
    for item in items:
        suggested = normalise_text(item.suggestion.label or "") if item.suggestion else ""
        final = normalise_text(item.final_label or "")
        if suggested and final:
            compared += 1
            changed += suggested != final
    return Changed(compared, changed)


def accepted_unchanged(response: Response, item: ItemRecord, dimensions: Sequence[str]) -> Optional[bool]:
    """True if ``response`` saved the item's suggestion unchanged (see ``ACCEPTANCE_METHOD``); the response's
    own ``accepted_unchanged`` wins. None when it cannot be told: no suggestion, or the response started from
    another model or prompt version than the item's suggestion."""
    if response.accepted_unchanged is not None:
        return response.accepted_unchanged
    s = item.suggestion
    if s is None:
        return None
    if (response.model_id or response.prompt_version) and \
            (response.model_id, response.prompt_version) != (s.model_id, s.prompt_version):
        return None
    for d in dimensions:
        text = response_value(response, d)
        if text is not None and text != normalise_text(s.dimensions.get(d) or ""):
            return False
    if response.conclusion is not None and normalise_text(response.conclusion) != normalise_text(s.conclusion):
        return False
    label, concluded = response_value(response, LABEL_FIELD), normalise_text(s.label or "")
    return not (label and concluded and label != concluded)


@dataclass(frozen=True)
class Throughput:
    """The work of one group of responses (one reviewer, or one model and prompt version)."""

    key: tuple[str, ...]
    n_items: int
    seconds: tuple[float, ...]  # the timed items
    n_untimed: int  # no shown or saved time, or saved before shown
    n_idle: int  # longer than the idle cap
    n_judged: int  # acceptance could be told
    n_accepted: int

    def to_dict(self) -> dict[str, Any]:
        total = sum(self.seconds)
        return {"n_items": self.n_items, "n_timed": len(self.seconds), "n_untimed": self.n_untimed,
                "n_idle": self.n_idle, "total_s": total,
                "items_per_hour": 3600.0 * len(self.seconds) / total if total > 0 else None,
                "median_s_per_item": statistics.median(self.seconds) if self.seconds else None,
                "n_judged": self.n_judged, "n_accepted": self.n_accepted,
                "acceptance_rate": self.n_accepted / self.n_judged if self.n_judged else None}


def by_reviewer(item: ItemRecord, response: Response) -> tuple[str, ...]:
    return (response.reviewer,)


def by_model(item: ItemRecord, response: Response) -> tuple[str, ...]:
    """(model id, prompt version) of the suggestion the response started from (else the item's suggestion)."""
    if response.model_id or response.prompt_version or item.suggestion is None:
        return (response.model_id, response.prompt_version)
    return (item.suggestion.model_id, item.suggestion.prompt_version)


def throughput(items: Sequence[ItemRecord], dimensions: Sequence[str],
               key: Callable[[ItemRecord, Response], tuple[str, ...]] = by_reviewer,
               max_item_s: float = MAX_ITEM_S) -> list[Throughput]:
    """Throughput and acceptance of each group of responses (``by_reviewer`` or ``by_model``), sorted by key."""
    dims = check_dimensions(dimensions)
    if not max_item_s > 0:
        raise ConfigError(f"`max_item_s` must be > 0, got {max_item_s}")
    groups: dict[tuple[str, ...], list[tuple[ItemRecord, Response]]] = defaultdict(list)
    for item in items:
        for response in latest_responses(item).values():
            groups[key(item, response)].append((item, response))
    out = []
    for k in sorted(groups):
        secs = [r.seconds for _, r in groups[k]]
        judged = [a for item, r in groups[k] if (a := accepted_unchanged(r, item, dims)) is not None]
        out.append(Throughput(k, len(groups[k]), tuple(s for s in secs if s is not None and s <= max_item_s),
                              sum(s is None for s in secs), sum(s is not None and s > max_item_s for s in secs),
                              len(judged), sum(judged)))
    return out


def throughput_over_time(items: Sequence[ItemRecord], bin_s: Optional[float] = None) -> dict[str, Any]:
    """Items saved per reviewer in each time bin, as items per hour (saves in the bin / bin length in hours).

    ``bin_s`` None picks an hour for a span up to two days, a day up to 60 days, else a week. Bins start at
    the first save's time floored to the bin within its day (bins that divide a day align with the clock).
    Returns ``{"bin_s", "bins": [ISO start, ...], "series": [{"reviewer", "items_per_hour": [per bin]}]}``
    (every bin listed, empty ones 0.0).
    """
    saves = [(r.reviewer, r.saved_at) for item in items for r in latest_responses(item).values() if r.saved_at]
    if not saves:
        return {"bin_s": bin_s, "bins": [], "series": []}
    first, last = min(t for _, t in saves), max(t for _, t in saves)
    span_s = (last - first).total_seconds()
    if bin_s is None:
        bin_s = 3600.0 if span_s <= 2 * 86400 else 86400.0 if span_s <= 60 * 86400 else 7 * 86400.0
    if not bin_s > 0:
        raise ConfigError(f"`bin_s` must be > 0, got {bin_s}")
    start = _floor(first, bin_s)
    n_bins = int((last - start).total_seconds() // bin_s) + 1
    if n_bins > MAX_BINS:
        raise ConfigError(f"`bin_s` {bin_s:g} gives {n_bins} bins over this span; use at least "
                          f"{(last - start).total_seconds() / MAX_BINS:.0f} s (or leave it unset)")
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * n_bins)
    for reviewer, t in saves:
        counts[reviewer][int((t - start).total_seconds() // bin_s)] += 1
    per_hour = 3600.0 / bin_s
    return {"bin_s": bin_s, "bins": [(start + timedelta(seconds=i * bin_s)).isoformat() for i in range(n_bins)],
            "series": [{"reviewer": r, "items_per_hour": [c * per_hour for c in counts[r]]} for r in sorted(counts)]}


def _floor(t: datetime, bin_s: float) -> datetime:
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    into_day = (t - midnight).total_seconds()
    return midnight + timedelta(seconds=into_day - into_day % bin_s) if bin_s <= 86400 else midnight
