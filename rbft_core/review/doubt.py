"""How doubtful a suggestion is: the review queue shows the most doubtful first, with the reason.

Order: parse failures, then conclusions that contradict the label, then incomplete parses, then the
rest; within each tier the lowest mean log-probability per token first. The result is one number
(``score``, higher = review sooner) so the database can sort 20,000 rows with a plain ``ORDER BY``,
computed once when the suggestion is stored (``db.queries.add_suggestion``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from rbft_core.models.prompts import DIMENSIONS
from rbft_core.models.rationale import named_labels

__all__ = ["Doubt", "doubt_of", "LOW_LOGPROB"]

# Below this mean log-probability per token the reason says "low likelihood".
LOW_LOGPROB = -2.0
_TIER_WIDTH = 100.0  # each tier spans [tier * 100, tier * 100 + 100): the likelihood term stays below 100


@dataclass(frozen=True)
class Doubt:
    score: float
    reason: str


def _likelihood_term(mean_logprob: Optional[float]) -> float:
    if mean_logprob is None:
        return 0.0
    return min(max(-float(mean_logprob), 0.0), _TIER_WIDTH - 0.01)


def _likelihood_reason(mean_logprob: Optional[float]) -> str:
    if mean_logprob is None:
        return "no likelihood recorded"
    if mean_logprob < LOW_LOGPROB:
        return f"low likelihood ({mean_logprob:.1f}/token)"
    return f"likelihood {mean_logprob:.2f}/token"


def doubt_of(
    *,
    parse_status: str,
    fields: dict[str, Optional[str]],
    conclusion: str,
    label: str,
    labels: Sequence[str],
    mean_logprob: Optional[float],
) -> Doubt:
    """The doubt score and the reason shown to the reviewer for one suggestion of a video labelled ``label``."""
    term = _likelihood_term(mean_logprob)
    if parse_status == "failed":
        return Doubt(3 * _TIER_WIDTH + term, "parse failed")
    named = named_labels(conclusion, list(labels)) if labels else []
    if named and label.lower() not in named:
        return Doubt(2 * _TIER_WIDTH + term, f"conclusion says {' / '.join(named)} but label is {label}")
    missing = [dim for dim in DIMENSIONS if not (fields.get(dim) or "").strip()]
    if parse_status == "partial" or missing:
        return Doubt(1 * _TIER_WIDTH + term, f"incomplete parse (missing {', '.join(missing) or 'fields'})")
    return Doubt(term, _likelihood_reason(mean_logprob))
