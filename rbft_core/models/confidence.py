"""How sure the model was of each dimension it wrote: the least likely token inside the dimension's value.

A rationale's mean log-probability hides the one word that matters: "a cat" is two confident tokens and one
coin toss ("cat" at p = 0.2 when the clip shows a deer). ``dimension_logprobs`` finds each parsed value in the
generated text, maps it to the tokens that wrote it (prefix decoding, so multi-byte and merged tokens count
right) and keeps the lowest log-probability and its token, and the log-probability of the whole value (the sum
over its tokens: how likely the model was to write exactly this value). Generation stores the result with the
suggestion; the review reads it (``rbft_core.review.flags``: an unsure subject is flagged; ``rbft_core.review.doubt``:
the less likely the subject, the sooner it is reviewed, ``value_probability``).
"""

from __future__ import annotations

import math
import re
from typing import Callable, Mapping, Optional, Sequence

__all__ = ["value_spans", "dimension_logprobs", "value_probability"]

_GAP = 8  # characters allowed between a key and its value (quotes, colon, spaces, markdown)


def value_spans(text: str, fields: Mapping[str, Optional[str]]) -> dict[str, tuple[int, int]]:
    """Character span of each non-empty dimension value in ``text`` (``fields``: the parsed text of the dataset's
    dimensions): the value right after the last occurrence of its key that is followed by it (a key written twice:
    the parser keeps the last). A value that does not appear verbatim (JSON escapes) has no span."""
    spans: dict[str, tuple[int, int]] = {}
    for dim, value in fields.items():
        value = (value or "").strip()
        if not value:
            continue
        key_pattern = r"[_\s\-]".join(re.escape(part) for part in dim.split("_"))
        for key in reversed(list(re.finditer(rf"\b{key_pattern}\b", text, re.I))):
            start = text.find(value, key.end(), key.end() + _GAP + len(value))
            if start >= 0:
                spans[dim] = (start, start + len(value))
                break
    return spans


def dimension_logprobs(token_ids: Sequence[int], logprobs: Sequence[float], decode: Callable[[Sequence[int]], str],
                       fields: Mapping[str, Optional[str]]) -> dict[str, dict]:
    """Per dimension found in the generated text: ``{"min_logprob": float, "token": str, "logprob": float}``: its
    least likely token and the sum over its tokens (whitespace-only tokens left out of both). ``decode(ids)`` is the
    tokenizer's decode of a token prefix."""
    text = decode(list(token_ids))
    spans = value_spans(text, fields)
    if not spans:
        return {}
    last = max(end for _, end in spans.values())
    ends: list[int] = []
    for i in range(len(token_ids)):  # where each token's text ends, up to the last value
        ends.append(len(decode(list(token_ids[:i + 1]))))
        if ends[-1] >= last:
            break
    out: dict[str, dict] = {}
    for dim, (a, z) in spans.items():
        inside = [i for i, end in enumerate(ends) if end > a and (i == 0 or ends[i - 1] < z)
                  and text[(ends[i - 1] if i else 0):end].strip()]
        if inside:
            worst = min(inside, key=lambda i: logprobs[i])
            out[dim] = {"min_logprob": round(float(logprobs[worst]), 4),
                        "token": text[(ends[worst - 1] if worst else 0):ends[worst]].strip(),
                        "logprob": round(float(sum(logprobs[i] for i in inside)), 4)}
    return out


def value_probability(confidence: Optional[Mapping[str, Mapping]], dim: str) -> Optional[float]:
    """How likely the model was to write the stored value of ``dim``: exp of the value's summed log-probability;
    for suggestions stored before the sum was kept, exp of its least likely token (an upper bound). None when
    nothing was recorded."""
    entry = (confidence or {}).get(dim) or {}
    logprob = entry.get("logprob", entry.get("min_logprob"))
    if logprob is None:
        return None
    return math.exp(min(float(logprob), 0.0))
