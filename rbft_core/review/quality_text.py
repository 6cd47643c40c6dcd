"""Review quality, part two: agreement between reviewers on the free text of each rationale dimension.

Two similarities per pair of reviewers (``token_f1``, ``char_similarity``), averaged over every pair of
reviewers on every item that both answered, and Krippendorff's alpha with a text distance (``text_alpha``).
Texts are compared after ``quality.normalise_text``; the conventions are in ``rbft_core.review.quality``.

Alpha on text is computed here, in its pairwise form, rather than by ``krippendorff.alpha`` with a callable
distance: the package builds items x values x values arrays, and almost every text is its own value, so it
needs gigabytes from a few hundred items on. The pairwise form gives the same number (the tests compare the
two within 1e-9) in bounded memory. Its expected disagreement is a mean over all pairs of answers: exact up to
``MAX_EXACT_PAIRS`` pairs of distinct answers (about 1,400 of them), beyond that estimated from as many seeded
random pairs, which the returned method says.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from rbft_core.errors import ConfigError
from rbft_core.review.quality import Agreement, ItemRecord, latest_responses, response_value

__all__ = [
    "MeanScore", "TOKEN_F1_METHOD", "CHAR_SIMILARITY_METHOD", "TEXT_ALPHA_METHOD", "tokens", "token_f1",
    "char_similarity", "text_distance", "text_similarity", "text_alpha", "alpha_with_distance",
    "MAX_EXACT_PAIRS",
]

TOKEN_F1_METHOD = ("token F1: multisets of casefolded word tokens (regex \\w+), 2 * common / (len A + len B); "
                   "1 when both texts have no token")
CHAR_SIMILARITY_METHOD = ("character similarity: 1 - Levenshtein distance / length of the longer text "
                          "(rapidfuzz Levenshtein.normalized_similarity); 1 when both texts are empty")
TEXT_ALPHA_METHOD = ("Krippendorff's alpha with distance = Levenshtein distance / length of the longer text "
                     "(rapidfuzz Levenshtein.normalized_distance), pairwise form 1 - D_o / D_e")
_WORD = re.compile(r"\w+")
MAX_EXACT_PAIRS = 1_000_000  # about a second of distances on one core; the sampled D_e is within ~1e-3 beyond
_BLOCK_CELLS = 1 << 22  # distances computed per block when summing over all pairs of texts (32 MiB of float64)


@dataclass(frozen=True)
class MeanScore:
    """The mean of a score over ``n_pairs`` reviewer pairs on ``n_items`` items (None when there is no pair)."""

    mean: Optional[float]
    n_pairs: int
    n_items: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "n_pairs": self.n_pairs, "n_items": self.n_items, "method": self.method}


def tokens(text: str) -> list[str]:
    """The casefolded word tokens of ``text`` in NFC (``\\w+``: letters, digits and underscore in any script;
    NFC first, as a decomposed accent is no word character and would split the word)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


def token_f1(a: str, b: str) -> float:
    """F1 of the two texts' token multisets: 2 * common tokens / (tokens of a + tokens of b)."""
    ta, tb = Counter(tokens(a)), Counter(tokens(b))
    total = sum(ta.values()) + sum(tb.values())
    if total == 0:
        return 1.0
    return 2 * sum((ta & tb).values()) / total


def char_similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / length of the longer text (1.0 for two empty texts)."""
    return float(Levenshtein.normalized_similarity(a, b))


def text_distance(a: str, b: str) -> float:
    """Levenshtein distance / length of the longer text: 0 for equal texts, 1 for nothing in common."""
    return float(Levenshtein.normalized_distance(a, b))


def _answers(items: Sequence[ItemRecord], dimension: str) -> list[list[str]]:
    """Per item, the normalised texts of ``dimension`` from the reviewers who answered it (two or more)."""
    out = []
    for item in items:
        texts = [t for _, resp in sorted(latest_responses(item).items())
                 if (t := response_value(resp, dimension)) is not None]
        if len(texts) >= 2:
            out.append(texts)
    return out


def text_similarity(items: Sequence[ItemRecord], dimension: str) -> dict[str, MeanScore]:
    """Mean token F1 and mean character similarity over every pair of reviewers on every item.

    Every pair counts once (an item with three reviewers gives three pairs); returns
    ``{"token_f1": MeanScore, "char_similarity": MeanScore}``.
    """
    units = _answers(items, dimension)
    pairs = [(a, b) for texts in units for a, b in itertools.combinations(texts, 2)]
    out = {}
    for name, score, method in (("token_f1", token_f1, TOKEN_F1_METHOD),
                                ("char_similarity", char_similarity, CHAR_SIMILARITY_METHOD)):
        mean = sum(score(a, b) for a, b in pairs) / len(pairs) if pairs else None
        out[name] = MeanScore(mean, len(pairs), len(units), method)
    return out


def text_alpha(items: Sequence[ItemRecord], dimension: str, max_pairs: int = MAX_EXACT_PAIRS) -> Agreement:
    """Krippendorff's alpha on the texts of ``dimension`` with ``text_distance`` as the distance."""
    return alpha_with_distance(_answers(items, dimension), Levenshtein.normalized_distance, max_pairs=max_pairs)


def alpha_with_distance(units: Sequence[Sequence[str]], distance: Callable[..., float], *,
                        method: str = TEXT_ALPHA_METHOD, max_pairs: int = MAX_EXACT_PAIRS,
                        seed: int = 0) -> Agreement:
    """Krippendorff's alpha of ``units`` (each the values several coders gave one unit) under ``distance``.

    ``distance`` is a rapidfuzz scorer (``rapidfuzz.process`` computes it over many pairs at once) with
    distance(x, x) = 0. With n = number of values in units of two or more values:
    D_o = (1/n) * sum over units u of (1/(m_u - 1)) * sum over ordered pairs i != j in u of d(v_i, v_j);
    D_e = 1/(n (n - 1)) * sum over ordered pairs i != j of all n values of d(v_i, v_j); alpha = 1 - D_o / D_e.

    D_e costs one distance per pair of distinct values; above ``max_pairs`` such pairs it is the mean
    distance of ``max_pairs`` random ordered pairs of the n values (seeded: the same data gives the same
    number), and the returned ``method`` says so. Undefined: ``value`` None with the reason.
    """
    if max_pairs < 1:
        raise ConfigError(f"`max_pairs` must be >= 1, got {max_pairs}")
    pairable = [list(u) for u in units if len(u) >= 2]
    n = sum(map(len, pairable))
    if not pairable:
        return Agreement(None, method, reason="no item has answers from two reviewers")
    within = sum(2 * sum(distance(a, b) for a, b in itertools.combinations(u, 2)) / (len(u) - 1) for u in pairable)
    counts = Counter(v for u in pairable for v in u)
    if len(counts) < 2:
        return Agreement(None, method, len(pairable), n,
                         "every answer is the same text: alpha is undefined without variation")
    if len(counts) * (len(counts) - 1) // 2 <= max_pairs:
        expected = _sum_over_pairs(list(counts), np.array(list(counts.values()), dtype=np.float64),
                                   distance) / (n * (n - 1))
    else:
        expected = _sampled_mean(list(counts.elements()), distance, max_pairs, seed)
        method = f"{method}; D_e estimated from {max_pairs:,} random pairs of answers (seed {seed})"
    if expected <= 0:
        return Agreement(None, method, len(pairable), n,
                         "every pair of answers is at distance 0: alpha is undefined without variation")
    return Agreement(1.0 - (within / n) / expected, method, len(pairable), n)


def _sampled_mean(values: list[str], distance: Callable[..., float], pairs: int, seed: int) -> float:
    """The mean distance of ``pairs`` ordered pairs (i, j), i != j, drawn uniformly from ``values``."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(values), size=pairs)
    second = (first + rng.integers(1, len(values), size=pairs)) % len(values)  # uniform over j != i
    pool = np.array(values, dtype=object)
    d = process.cpdist(pool[first], pool[second], scorer=distance, dtype=np.float64)
    return float(np.mean(d))


def _sum_over_pairs(values: list[str], counts: np.ndarray, distance: Callable[..., float]) -> float:
    """sum over ordered pairs of distinct values c, k of counts[c] * counts[k] * d(c, k), upper triangle in blocks."""
    total = 0.0
    rows = max(1, _BLOCK_CELLS // len(values))
    for start in range(0, len(values), rows):
        stop = min(start + rows, len(values))
        block = process.cdist(values[start:stop], values[start:], scorer=distance, dtype=np.float64)
        here = counts[start:stop]
        # the square on the diagonal holds both orders of each pair; the rest of the row once, so twice it
        total += here @ block[:, : stop - start] @ here + 2.0 * (here @ block[:, stop - start:] @ counts[stop:])
    return float(total)
