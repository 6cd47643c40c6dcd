"""Review quality, part one: the records the metrics read, and agreement on labels between reviewers.

Pure functions over plain records: no database, no gradio. The caller turns its review rows into
``ItemRecord`` objects (one per video, with every reviewer's ``Response``) and passes the names of the rationale
dimensions the dataset asks for; nothing here knows the four default ones.

Conventions shared by every quality module:

- **One response per reviewer and item.** A reviewer who saved an item twice counts once, with the latest save
  (``saved_at``; a save without a time counts as the oldest; equal times: the later one in the list).
- **Text is compared after ``normalise_text``**: Unicode NFC, every run of whitespace one space, ends stripped.
  Texts equal after that are the same answer; "edited" means the normalised texts differ.
- **A missing value is not a value.** A label of ``None`` or ``""``, or a dimension absent from a response's
  ``dimensions`` (or ``None``), is no answer: it leaves the item out of that statistic. An empty string given
  for a dimension is an answer (the reviewer cleared the text).
- **Undefined is ``None`` with a reason**, never NaN: alpha needs two values on one item and some variation,
  kappa needs two reviewers and not one same label everywhere.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence, Union

import krippendorff
import numpy as np

from rbft_core.errors import ConfigError

__all__ = [
    "ItemId", "Suggestion", "Response", "ItemRecord", "Agreement", "ReliabilityData", "LABEL_FIELD",
    "LABEL_ALPHA_METHOD", "KAPPA_METHOD", "normalise_text", "check_dimensions", "latest_responses",
    "response_value", "responses_to_reliability", "export_responses", "label_alpha", "cohen_kappa", "label_kappa",
    "kappa_by_pair",
]

ItemId = Union[int, str]
LABEL_FIELD = "label"  # the field name `responses_to_reliability` reads the label under

LABEL_ALPHA_METHOD = ("Krippendorff's alpha, nominal (krippendorff package); reliability data reviewers x items, "
                      "latest response per reviewer, items labelled by at least two reviewers")
KAPPA_METHOD = "Cohen's kappa (unweighted), (p_o - p_e) / (1 - p_e), over the items both reviewers labelled"


@dataclass(frozen=True)
class Suggestion:
    """What the model proposed for one item.

    Args:
        dimensions: dimension name -> the model's text (a dimension it did not fill: absent or "").
        conclusion: the model's conclusion sentence.
        label: the label the conclusion names (e.g. ``models.rationale.named_labels``), None if it names none.
        model_id: the model that wrote it; prompt_version: the prompt it was asked with.
    """

    dimensions: Mapping[str, str] = field(default_factory=dict)
    conclusion: str = ""
    label: Optional[str] = None
    model_id: str = ""
    prompt_version: str = ""


@dataclass(frozen=True)
class Response:
    """One reviewer's saved answer for one item.

    Args:
        item_id: the item (video) it answers; reviewer: who saved it.
        label: the label the reviewer gave (None: none given).
        dimensions: dimension name -> the text the reviewer saved, resolved to the effective text (where the
            database stores "None = the model's text", put the model's text here). Absent: not answered.
        conclusion: the conclusion text the reviewer saved, None if the form has none.
        shown_at / saved_at: when the item was shown to the reviewer and when this answer was saved.
        model_id / prompt_version: of the suggestion the reviewer started from ("" = the item's suggestion).
        accepted_unchanged: True if the reviewer saved the suggestion as it was; None = derive it by comparing
            with the item's suggestion (``quality_work.accepted_unchanged``).
    """

    item_id: ItemId
    reviewer: str
    label: Optional[str] = None
    dimensions: Mapping[str, Optional[str]] = field(default_factory=dict)
    conclusion: Optional[str] = None
    shown_at: Optional[datetime] = None
    saved_at: Optional[datetime] = None
    model_id: str = ""
    prompt_version: str = ""
    accepted_unchanged: Optional[bool] = None

    @property
    def seconds(self) -> Optional[float]:
        """Seconds from shown to saved; None when a time is missing or the save precedes the showing."""
        if self.shown_at is None or self.saved_at is None:
            return None
        s = (self.saved_at - self.shown_at).total_seconds()
        return s if s >= 0 else None


@dataclass(frozen=True)
class ItemRecord:
    """One item: the suggestion reviewers started from, what the dataset finally keeps, and every response.

    ``final_dimensions`` / ``final_label``: the effective result (None while the item has none).
    """

    item_id: ItemId
    suggestion: Optional[Suggestion] = None
    final_dimensions: Optional[Mapping[str, Optional[str]]] = None
    final_label: Optional[str] = None
    responses: Sequence[Response] = ()


@dataclass(frozen=True)
class Agreement:
    """An agreement statistic: ``value`` None when undefined, with ``reason``; counts of what entered it."""

    value: Optional[float]
    method: str
    n_items: int = 0
    n_values: int = 0
    reason: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "n_items": self.n_items, "n_values": self.n_values,
                "method": self.method}


@dataclass(frozen=True)
class ReliabilityData:
    """Krippendorff's reliability data: ``matrix[r][i]`` is the index into ``values`` that reviewer
    ``reviewers[r]`` gave item ``item_ids[i]``, None where they gave none. ``values`` is sorted, so the indices
    are in the order ``numpy.unique`` finds them. JSON: ``to_dict`` / ``from_dict``."""

    field: str
    reviewers: tuple[str, ...]
    item_ids: tuple[ItemId, ...]
    values: tuple[str, ...]
    matrix: tuple[tuple[Optional[int], ...], ...]

    def as_array(self) -> np.ndarray:
        """The matrix as floats with NaN for a missing value: what ``krippendorff.alpha`` reads."""
        out = np.full((len(self.reviewers), len(self.item_ids)), np.nan)
        for r, row in enumerate(self.matrix):
            for i, v in enumerate(row):
                if v is not None:
                    out[r, i] = v
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "reviewers": list(self.reviewers), "item_ids": list(self.item_ids),
                "values": list(self.values), "matrix": [list(row) for row in self.matrix]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ReliabilityData":
        return cls(str(data["field"]), tuple(data["reviewers"]), tuple(data["item_ids"]), tuple(data["values"]),
                   tuple(tuple(row) for row in data["matrix"]))


def normalise_text(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    """The dimension names as a tuple; ConfigError unless they are distinct, non-empty strings."""
    if isinstance(dimensions, str):
        raise ConfigError(f"`dimensions` must be a list of names, got the string {dimensions!r}")
    dims = tuple(dimensions)
    if not dims:
        raise ConfigError("`dimensions` is empty; give the dataset's rationale dimensions, e.g. subjects, scenes")
    bad = [d for d in dims if not isinstance(d, str) or not d.strip()]
    if bad:
        raise ConfigError(f"`dimensions` must be non-empty names, got {bad!r}")
    repeated = sorted({d for d in dims if dims.count(d) > 1})
    if repeated:
        raise ConfigError(f"`dimensions` names {', '.join(repeated)} more than once")
    return dims


def latest_responses(item: ItemRecord) -> dict[str, Response]:
    """reviewer -> that reviewer's latest response to ``item`` (see the module's conventions)."""
    out: dict[str, Response] = {}
    for response in item.responses:
        kept = out.get(response.reviewer)
        if kept is None or _save_key(response) >= _save_key(kept):
            out[response.reviewer] = response
    return out


def _save_key(response: Response) -> tuple[bool, float]:
    t = response.saved_at
    return (t is not None, t.timestamp() if t is not None else 0.0)


def response_value(response: Response, name: str) -> Optional[str]:
    """The normalised value a response gives for ``name`` (``LABEL_FIELD`` or a dimension), None if none."""
    if name == LABEL_FIELD:
        label = normalise_text(response.label or "")
        return label or None
    text = response.dimensions.get(name)
    return None if text is None else normalise_text(text)


def responses_to_reliability(items: Sequence[ItemRecord], name: str = LABEL_FIELD) -> ReliabilityData:
    """Reviewers x items for one field (the label, or a dimension's text), ready for ``krippendorff.alpha``.

    Only items with values from at least two reviewers are kept (an item with one value pairs with nothing and
    leaves alpha unchanged); reviewers are sorted, items keep their order.
    """
    per_item = []
    for item in items:
        given = {r: v for r, resp in latest_responses(item).items() if (v := response_value(resp, name)) is not None}
        if len(given) >= 2:
            per_item.append((item.item_id, given))
    reviewers = tuple(sorted({r for _, given in per_item for r in given}))
    values = tuple(sorted({v for _, given in per_item for v in given.values()}))
    index = {v: i for i, v in enumerate(values)}
    matrix = tuple(tuple(index[given[r]] if r in given else None for _, given in per_item) for r in reviewers)
    return ReliabilityData(name, reviewers, tuple(i for i, _ in per_item), values, matrix)


def export_responses(items: Sequence[ItemRecord], dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """One JSON row per counted response (latest per reviewer and item), with normalised values.

    Keys: ``item_id``, ``reviewer``, ``label``, ``dimensions`` (name -> text, answered dimensions only),
    ``conclusion``, ``shown_at``, ``saved_at`` (ISO 8601 or None), ``seconds``, ``model_id``, ``prompt_version``.
    """
    dims = check_dimensions(dimensions)
    rows = []
    for item in items:
        for reviewer, resp in sorted(latest_responses(item).items()):
            texts = {d: t for d in dims if (t := response_value(resp, d)) is not None}
            rows.append({
                "item_id": item.item_id, "reviewer": reviewer, "label": response_value(resp, LABEL_FIELD),
                "dimensions": texts,
                "conclusion": None if resp.conclusion is None else normalise_text(resp.conclusion),
                "shown_at": resp.shown_at.isoformat() if resp.shown_at else None,
                "saved_at": resp.saved_at.isoformat() if resp.saved_at else None,
                "seconds": resp.seconds, "model_id": resp.model_id, "prompt_version": resp.prompt_version,
            })
    return rows


def label_alpha(items: Sequence[ItemRecord]) -> Agreement:
    """Krippendorff's alpha (nominal) on the labels, computed by the ``krippendorff`` package."""
    data = responses_to_reliability(items, LABEL_FIELD)
    n_values = sum(v is not None for row in data.matrix for v in row)
    counts = dict(n_items=len(data.item_ids), n_values=n_values)
    if not data.item_ids:
        return Agreement(None, LABEL_ALPHA_METHOD, **counts, reason="no item is labelled by two reviewers")
    if len(data.values) < 2:
        return Agreement(None, LABEL_ALPHA_METHOD, **counts,
                         reason=f"every label given is {data.values[0]!r}: alpha is undefined without variation")
    value = float(krippendorff.alpha(reliability_data=data.as_array(), level_of_measurement="nominal"))
    if not math.isfinite(value):
        return Agreement(None, LABEL_ALPHA_METHOD, **counts, reason="alpha is undefined on these labels")
    return Agreement(value, LABEL_ALPHA_METHOD, **counts)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Cohen's kappa of two raters from their (label of rater A, label of rater B) on each item.

    p_o = share of items with equal labels; p_e = sum over labels of p_A(label) * p_B(label).
    """
    n = len(pairs)
    if n == 0:
        return Agreement(None, KAPPA_METHOD, reason="no item is labelled by both reviewers")
    p_o = sum(a == b for a, b in pairs) / n
    count_a, count_b = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    p_e = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if p_e >= 1.0:
        return Agreement(None, KAPPA_METHOD, n, 2 * n,
                         reason=f"both reviewers gave {pairs[0][0]!r} to every item: kappa is undefined")
    return Agreement((p_o - p_e) / (1.0 - p_e), KAPPA_METHOD, n, 2 * n)


def _labels(items: Sequence[ItemRecord]) -> list[dict[str, str]]:
    """Per item: reviewer -> label, for the reviewers whose latest response has one."""
    return [{r: v for r, resp in latest_responses(item).items() if (v := response_value(resp, LABEL_FIELD)) is not None}
            for item in items]


def _pairs(labels: list[dict[str, str]], first: str, second: str) -> list[tuple[str, str]]:
    return [(given[first], given[second]) for given in labels if first in given and second in given]


def label_kappa(items: Sequence[ItemRecord]) -> tuple[Agreement, tuple[str, ...]]:
    """Cohen's kappa on the labels when exactly two reviewers labelled items, and the reviewers (sorted)."""
    labels = _labels(items)
    reviewers = sorted({r for given in labels for r in given})
    if len(reviewers) != 2:
        return (Agreement(None, KAPPA_METHOD, reason=f"{len(reviewers)} reviewers gave labels; Cohen's kappa "
                          "compares exactly two (see the kappa of each pair)"), tuple(reviewers))
    return cohen_kappa(_pairs(labels, *reviewers)), tuple(reviewers)


def kappa_by_pair(items: Sequence[ItemRecord]) -> list[tuple[str, str, Agreement]]:
    """Cohen's kappa of every pair of reviewers that labelled at least one item in common."""
    labels = [given for given in _labels(items) if len(given) >= 2]
    out = []
    for first, second in itertools.combinations(sorted({r for given in labels for r in given}), 2):
        pairs = _pairs(labels, first, second)
        if pairs:
            out.append((first, second, cohen_kappa(pairs)))
    return out
