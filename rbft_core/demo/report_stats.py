"""The demo report's statistics: exact binomial tests and bootstrap intervals over test clips and seeds.

- ``binomial_two_sided(k, n)``: exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (the sum of
  the probabilities of every outcome at most as likely as ``k``; for p = 1/2 that is twice the smaller tail);
- ``mcnemar_exact(b, c)``: McNemar's exact test on the discordant pairs of two classifiers on the same clips
  (``b``: only the first is right, ``c``: only the second) = ``binomial_two_sided(b, b + c)``;
- ``sign_test(diffs)``: across seeds, positive vs negative paired differences (ties dropped);
- ``bootstrap_interval(matrix)``: mean of a [seeds x clips] matrix with a 95 % percentile interval, resampling
  seeds and clips with replacement (two-level: the same clips for every drawn seed, as every seed is scored on
  the same test clips), so the interval covers both the training-seed and the test-sample variation;
- ``verdict(interval)``: the sentence the page may say, decided by the interval alone.

Exact arithmetic with ``fractions.Fraction`` for the tests; numpy only for the bootstrap's resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

__all__ = ["binomial_two_sided", "mcnemar_exact", "sign_test", "Interval", "bootstrap_interval", "verdict",
           "discordant", "fmt_interval", "BOOTSTRAP_RESAMPLES"]

BOOTSTRAP_RESAMPLES = 2000


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` of ``n`` under Binomial(n, 1/2); 1.0 for n = 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    p = Fraction(sum(math.comb(n, i) for i in range(tail + 1)), 2 ** n) * 2
    if 2 * tail == n:  # the middle outcome is counted once: the two tails are the whole distribution
        p = Fraction(1)
    return float(min(Fraction(1), p))


def mcnemar_exact(b: int, c: int) -> float:
    """McNemar's exact test: ``b`` clips only the first model gets right, ``c`` only the second."""
    return binomial_two_sided(min(b, c), b + c)


def discordant(first: Sequence[bool], second: Sequence[bool]) -> tuple[int, int]:
    """(clips only ``first`` gets right, clips only ``second`` gets right), paired by position."""
    if len(first) != len(second):
        raise ValueError(f"paired results need the same clips, got {len(first)} and {len(second)}")
    b = sum(bool(x) and not bool(y) for x, y in zip(first, second))
    c = sum(bool(y) and not bool(x) for x, y in zip(first, second))
    return b, c


def sign_test(diffs: Sequence[float]) -> dict:
    """Sign test across seeds: positives vs negatives (zeros are ties and dropped), exact two-sided p."""
    pos, neg = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return {"positive": pos, "negative": neg, "ties": len(diffs) - pos - neg, "p": binomial_two_sided(min(pos, neg), pos + neg)}


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % bootstrap interval (same unit as the data: fractions, not percent)."""

    mean: float
    low: float
    high: float
    seeds: int
    clips: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "seeds": self.seeds, "clips": self.clips}

    @classmethod
    def from_dict(cls, d: dict) -> "Interval":
        return cls(float(d["mean"]), float(d["low"]), float(d["high"]), int(d["seeds"]), int(d["clips"]))


def bootstrap_interval(matrix: Sequence[Sequence[float]], *, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> Optional[Interval]:
    """Mean of ``matrix`` [seeds][clips] with a 95 % percentile interval resampling seeds and clips.

    None for an empty matrix. Seeded: the same matrix always gives the same interval."""
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.size == 0:
        return None
    seeds, clips = data.shape
    rng = np.random.default_rng(seed)
    s_idx = rng.integers(0, seeds, size=(resamples, seeds))
    c_idx = rng.integers(0, clips, size=(resamples, clips))
    # mean over the drawn seeds of each drawn seed's mean over the drawn clips (equal weights: every row is full);
    # a drawn clip set is its count vector, so every seed's clip mean of every resample is one matrix product
    flat = (c_idx + np.arange(resamples)[:, None] * clips).ravel()
    counts = np.bincount(flat, minlength=resamples * clips).reshape(resamples, clips).astype(float)
    clip_means = data @ counts.T / clips  # [seeds, resamples]
    means = clip_means[s_idx, np.arange(resamples)[:, None]].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(data.mean()), float(low), float(high), seeds, clips)


def verdict(interval: Optional[Interval], first: str = "RB-FT", second: str = "direct SFT") -> str:
    """What the page may say about ``first`` - ``second``: a direction only when the interval excludes 0."""
    if interval is None:
        return "not measured"
    if interval.low > 0:
        return f"{first} beats {second}"
    if interval.high < 0:
        return f"{second} beats {first}"
    return "no significant difference"


def fmt_interval(interval: Optional[Interval | dict], *, scale: float = 100.0, signed: bool = False) -> str:
    """``72.2 [65.1, 79.0]`` (percent by default); ``-`` when missing."""
    if interval is None:
        return "-"
    if isinstance(interval, dict):
        interval = Interval.from_dict(interval)
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(scale * interval.mean)} [{f.format(scale * interval.low)}, {f.format(scale * interval.high)}]"
