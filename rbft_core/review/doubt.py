"""How doubtful a suggestion is: the review queue shows the most doubtful first, with the reason.

Order: parse failures first; then by points, summed:

- the suggestion's flags (``review.flags``): a contradiction 4; an orphan attribute or action 3; degenerate text 2;
  an empty dimension 1; a label word in the rationale 1;
- the subject's doubt, ``SUBJECT_POINTS * (1 - p)``, where p is how likely the model was to write exactly the
  subjects it wrote (``models.confidence.value_probability``: the product of the subject tokens' probabilities,
  recorded at generation). A subject written at p = 0.5 gets 4 points (a contradiction's), at p = 0.2 6.4, at
  p = 0.95 0.4. The unsure-subject flag (a subject token below even odds) tells the reviewer why; its points are
  this term. 8 was chosen on the development worlds (seeds 1-3: 6 found 128 of their 276 wrong subjects in the
  first 30 %, 8 and 12 132, 20 131); the smallest weight on that plateau, so the flags keep theirs.

Within the same points the lowest mean log-probability per token first. The result is one number (``score``,
higher = review sooner: ``100 * points + likelihood term``, the term below 100) so the database sorts with a plain
index, computed once when the suggestion is stored (``db.writes.add_suggestions``).

Why the subject's probability, and continuous: a wrong subject (a raccoon written for a deer) is the error the
review most needs to catch, and what a model knows of it shows in how sure it was of the subject. On the demo
worlds (``bench/bench_doubt.py``, developed on seeds 1-3) that probability separates wrong subjects from right ones
better than every other signal tried (area under the ROC curve 0.83; the mean log-probability of the whole answer
0.59), and a continuous term ranks by it where the 3 fixed points of the unsure-subject flag only split the queue in
two. On the demo's own world the first 30 % of the queue holds 70.6 % of the wrong-subject rationales (12 of 17;
random 30 %, 95 % of shuffles within 11.8-52.9 %), 75-85 % on the development worlds: that is with the base model
pre-trained with grounding heads. The model before them was sure of the subjects it could not see, and the same
order found 50.6 %. The order can only find the errors the model is unsure of.

Tried and not kept, because they added nothing to it on the development worlds (``docs/benchmarks.md``): how much
the label hint raised the subject's probability (the subject scored under the prompt without the hint), the subject
generated without the hint, sampled subjects, the subject's probability with a blank video, other clips' videos or
altered frames, the attention the subject tokens pay to the video, and a focused question ("who or what appears in
the video?").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from rbft_core.models.confidence import value_probability
from rbft_core.models.prompts import DEFAULT_DIMENSIONS, Dimension
from rbft_core.review.flags import Flag, check_suggestion

__all__ = ["Doubt", "doubt_of", "LOW_LOGPROB", "FLAG_POINTS", "SUBJECT_POINTS", "FAILED_POINTS", "subject_points"]

# Below this mean log-probability per token the reason says "low likelihood".
LOW_LOGPROB = -2.0
_TIER_WIDTH = 100.0  # each point spans 100: the likelihood term stays below 100
_MAX_REASON = 200  # suggestions.doubt_reason is VARCHAR(200)
# The unsure-subject flag has no points of its own: the subject's doubt (SUBJECT_POINTS * (1 - p)) scores it.
FLAG_POINTS = {"contradiction": 4, "orphan_subject": 3, "uncertain_subject": 0, "degenerate": 2, "empty_dimension": 1,
               "label_leak": 1}
SUBJECT_POINTS = 8.0  # a subject the model could not have been less sure of; at p = 0.5 it weighs a contradiction
FAILED_POINTS = sum(FLAG_POINTS.values()) + SUBJECT_POINTS + 1  # above any combination of flags and subject doubt


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


def subject_points(confidence: Optional[Mapping[str, Mapping]]) -> tuple[float, Optional[float]]:
    """(points, p): the subject's doubt points and the probability they come from; (0, None) when the suggestion
    recorded no confidence for its subjects (older suggestions, a failed parse)."""
    p = value_probability(confidence, "subjects")
    if p is None:
        return 0.0, None
    return SUBJECT_POINTS * (1.0 - p), p


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
    confidence: Optional[Mapping[str, Mapping]] = None,
    dimensions: Sequence[Dimension] = DEFAULT_DIMENSIONS,
) -> Doubt:
    """The doubt score and the reason shown to the reviewer for one suggestion of a video labelled ``label``.

    ``flags``: the suggestion's flags when already computed (with the prompt); None computes them here without
    the prompt-copy check. ``confidence``: the suggestion's ``dimension_logprobs`` (None: no subject term);
    ``dimensions``: the dataset's (the paper's four by default).
    """
    term = _likelihood_term(mean_logprob)
    if parse_status == "failed":
        return Doubt(FAILED_POINTS * _TIER_WIDTH + term, "parse failed")
    if flags is None:
        flags = check_suggestion(fields=fields, conclusion=conclusion, label=label, labels=labels,
                                 parse_status=parse_status, confidence=confidence, dimensions=dimensions)
    subject, p = subject_points(confidence)
    points = sum(FLAG_POINTS.get(flag.code, 1) for flag in flags) + subject
    reasons = [flag.reason for flag in flags] or [_likelihood_reason(mean_logprob)]
    if p is not None and not any(flag.code == "uncertain_subject" for flag in flags):
        reasons.append(f"subject p = {p:.2f}")  # the flag's reason already gives it
    return Doubt(points * _TIER_WIDTH + term, _clip("; ".join(reasons)))
