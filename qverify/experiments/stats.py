"""Paired comparisons over seeds: the mean difference with a BCa bootstrap interval.

Two policies run on the same seeds (same placements, same fluctuations) give paired samples; their
per-seed differences carry the comparison, and their spread — not that of either policy alone —
sets its uncertainty. Intervals are BCa (Efron 1987) from :func:`scipy.stats.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class Difference:
    """Mean of ``a − b`` over paired seeds, with its interval (``nan`` when it cannot be had).

    Attributes:
        mean: mean paired difference.
        low, high: BCa interval at ``confidence``; equal to ``mean`` when every difference is the
            same (a degenerate sample: the interval is a point, stated as such), ``nan`` with fewer
            than 3 seeds.
        n: number of pairs.
        confidence: the interval's level.
        method: ``"bca"``, ``"degenerate"`` or ``"too few seeds"``.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    method: str

    def text(self, fmt: str = "+.3g") -> str:
        if self.method == "too few seeds":
            return f"{self.mean:{fmt}} (n = {self.n}: too few seeds for an interval)"
        if self.method == "degenerate":
            return f"{self.mean:{fmt}} (all {self.n} seeds equal)"
        return (
            f"{self.mean:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}] (paired, n = {self.n}, BCa {self.confidence:.0%})"
        )


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, seed: int = 0) -> Difference:
    """Mean of ``a − b`` (same seeds, same order) with a BCa interval.

    >>> d = paired_difference(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 1.0, 2.5, 3.0]))
    >>> round(d.mean, 3), d.low <= d.mean <= d.high, d.method
    (0.75, True, 'bca')
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n < 3:
        return Difference(mean, float("nan"), float("nan"), n, confidence, "too few seeds")
    if np.ptp(d) == 0:
        return Difference(mean, mean, mean, n, confidence, "degenerate")
    res = stats.bootstrap(
        (d,), np.mean, confidence_level=confidence, method="BCa", n_resamples=4999, rng=np.random.default_rng(seed)
    )
    return Difference(
        mean, float(res.confidence_interval.low), float(res.confidence_interval.high), n, confidence, "bca"
    )


def one_sample(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> Difference:
    """Mean of the finite ``values`` with its BCa interval (the paired difference against zero)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return paired_difference(v, np.zeros_like(v), confidence, seed)


def mean_ci(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """BCa interval of the mean over seeds: ``(nan, nan)`` with fewer than 3 finite values (no
    interval can be had), ``(mean, mean)`` when every value is equal (stated as such by callers).

    >>> lo, hi = mean_ci(np.array([0.1, 0.4, 0.2, 0.3, 0.25]))
    >>> bool(lo < 0.25 < hi)
    True
    >>> mean_ci(np.array([1.0, 2.0]))
    (nan, nan)
    """
    d = one_sample(values, confidence, seed)
    return d.low, d.high


def over_seeds(values: Any, confidence: float = 0.95) -> dict[str, Any]:
    """One figure over seeds: mean of the finite values, its BCa interval (:func:`mean_ci`: NaN with
    fewer than three), and every seed's value (JSON-ready).

    >>> r = over_seeds([0.1, 0.4, 0.2, 0.3, 0.25])
    >>> round(r["mean"], 3), r["low"] < 0.25 < r["high"], len(r["per_seed"])
    (0.25, True, 5)
    """
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    low, high = mean_ci(v, confidence)
    mean = float(finite.mean()) if finite.size else float("nan")
    return {"mean": mean, "low": float(low), "high": float(high), "per_seed": v.tolist()}


Verdict = Literal["yes", "no", "inconclusive"]


def side(low: float, high: float, threshold: float, want_above: bool) -> Verdict:
    """``"yes"`` when the interval lies on the claim's side of ``threshold``, ``"no"`` when it lies on
    the other side, ``"inconclusive"`` when it straddles it or is missing (nan).

    >>> side(0.96, 0.99, 0.95, True), side(0.90, 0.97, 0.95, True), side(0.02, 0.03, 0.01, False)
    ('yes', 'inconclusive', 'no')
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if want_above:
        return "yes" if low >= threshold else ("no" if high < threshold else "inconclusive")
    return "yes" if high < threshold else ("no" if low >= threshold else "inconclusive")


def episodes_to_stay(curve: np.ndarray, target: float) -> int | None:
    """First episode (1-based) from which *every* later value is ≥ ``target`` (converged, not a first touch).

    >>> episodes_to_stay(np.array([0.2, 0.97, 0.5, 0.96, 0.99]), 0.95)
    4
    """
    below = np.flatnonzero(np.asarray(curve) < target)
    if not len(curve) or (below.size and below[-1] == len(curve) - 1):
        return None
    return int(below[-1]) + 2 if below.size else 1


def bootstrap_ci(values: np.ndarray, stat: Callable[[np.ndarray], float] = np.mean, n: int = 2000,
                 seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap 95 % interval of ``stat`` over the first axis (seeds).

    Kept for statistics other than the mean; means use the BCa :func:`mean_ci`.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        v = float(stat(values)) if len(values) else float("nan")
        return v, v
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    stats = np.array([stat(values[i]) for i in idx])
    return float(np.nanpercentile(stats, 2.5)), float(np.nanpercentile(stats, 97.5))


def ratio_ci(num: np.ndarray, den: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of means and its bootstrap interval (independent resampling of both samples)."""
    rng = np.random.default_rng(seed)
    est = float(np.mean(num) / np.mean(den)) if np.mean(den) > 0 else float("nan")
    if len(num) < 2 or len(den) < 2:
        return est, est, est
    r = []
    for _ in range(2000):
        a = num[rng.integers(0, len(num), len(num))].mean()
        b = den[rng.integers(0, len(den), len(den))].mean()
        r.append(a / b if b > 0 else np.nan)
    return est, float(np.nanpercentile(r, 2.5)), float(np.nanpercentile(r, 97.5))
