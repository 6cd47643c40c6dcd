"""How doubtful a suggestion is: the review queue shows the most doubtful first, with the reason.

Order: parse failures first; then by the points of the suggestion's flags (``review.flags``, summed: a
contradiction 4; an orphan attribute or action 3 and an unsure subject 3, the two signs of a wrong subject, the
grounding Stage I learns; degenerate text 2; an empty dimension 1; a label word in the rationale 1); within the
same points the lowest mean log-probability per token first. The result is one number
(``score``, higher = review sooner: ``100 * points + likelihood term``, the term below 100) so the database sorts
with a plain index, computed once when the suggestion is stored (``db.writes.add_suggestions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from rbft_core.models.prompts import DEFAULT_DIMENSIONS, Dimension
from rbft_core.review.flags import Flag, check_suggestion

__all__ = ["Doubt", "doubt_of", "LOW_LOGPROB", "FLAG_POINTS", "FAILED_POINTS"]

# Below this mean log-probability per token the reason says "low likelihood".
LOW_LOGPROB = -2.0
_TIER_WIDTH = 100.0  # each point spans 100: the likelihood term stays below 100
_MAX_REASON = 200  # suggestions.doubt_reason is VARCHAR(200)
FLAG_POINTS = {"contradiction": 4, "orphan_subject": 3, "uncertain_subject": 3, "degenerate": 2, "empty_dimension": 1,
               "label_leak": 1}
FAILED_POINTS = sum(FLAG_POINTS.values()) + 1  # above any combination of flags


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


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 1] + "…"


def doubt_of(
    *,
    parse_status: str,
    fields: dict[str, Optional[str]],
    conclusion: str,
    label: str,
    labels: Sequence[str],
    mean_logprob: Optional[float],
    flags: Optional[Sequence[Flag]] = None,
    dimensions: Sequence[Dimension] = DEFAULT_DIMENSIONS,
) -> Doubt:
    """The doubt score and the reason shown to the reviewer for one suggestion of a video labelled ``label``.

    ``flags``: the suggestion's flags when already computed (with the prompt); None computes them here without
    the prompt-copy check; ``dimensions``: the dataset's (the paper's four by default).
    """
    term = _likelihood_term(mean_logprob)
    if parse_status == "failed":
        return Doubt(FAILED_POINTS * _TIER_WIDTH + term, "parse failed")
    if flags is None:
        flags = check_suggestion(fields=fields, conclusion=conclusion, label=label, labels=labels,
                                 parse_status=parse_status, dimensions=dimensions)
    if not flags:
        return Doubt(term, _likelihood_reason(mean_logprob))
    points = sum(FLAG_POINTS.get(flag.code, 1) for flag in flags)
    return Doubt(points * _TIER_WIDTH + term, _clip("; ".join(flag.reason for flag in flags)))
