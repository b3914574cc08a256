"""Binomial confidence intervals and the :class:`Estimate` type every check returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta

from qverify.physics._validate import check_range


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided interval for a binomial proportion.

    >>> lo, hi = clopper_pearson(0, 10, 0.95)
    >>> lo, round(hi, 4)   # upper end = 1 - 0.025**(1/10)
    (0.0, 0.3085)
    """
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        check_range("successes", successes, 0, trials)
    lo, hi = clopper_pearson_arrays(np.asarray(successes), np.asarray(trials), confidence)
    return float(lo), float(hi)


def clopper_pearson_arrays(successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95) -> tuple[Any, Any]:
    """:func:`clopper_pearson` element by element (no range checks); no trials gives [0, 1].

    >>> lo, hi = clopper_pearson_arrays(np.array([0, 5]), np.array([10, 10]))
    >>> float(lo[0]), round(float(hi[0]), 4), bool(lo[1] < 0.5 < hi[1])
    (0.0, 0.3085, True)
    """
    k, n = np.asarray(successes), np.asarray(trials)
    alpha = 1 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)), 1.0)
    empty = n <= 0
    return np.where(empty, 0.0, lo), np.where(empty, 1.0, hi)


def hoeffding(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Hoeffding interval ``p̂ ± sqrt(ln(2/δ) / (2n))``, clipped to [0, 1].

    >>> lo, hi = hoeffding(50, 100, 0.95)
    >>> round(hi - 0.5, 4)
    0.1358
    """
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    half = math.sqrt(math.log(2 / (1 - confidence)) / (2 * trials))
    return max(0.0, p - half), min(1.0, p + half)


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its confidence interval.

    Attributes:
        value: point estimate.
        low, high: interval end points.
        confidence: confidence level of the interval, in (0, 1).
        trials: number of shots or rounds the estimate rests on.
        method: ``"exact"`` (distribution from the density matrix, then sampled shots) or
            ``"sampled"`` (Aer's sampling methods).
        interval: ``"clopper-pearson"``, ``"hoeffding"`` or ``"bonferroni"`` (a combination).
        exact: the exact value when the exact method was used, else ``None``.
    """

    value: float
    low: float
    high: float
    confidence: float
    trials: int
    method: str
    interval: str = "clopper-pearson"
    exact: float | None = None

    @classmethod
    def binomial(
        cls,
        successes: int,
        trials: int,
        confidence: float,
        method: str,
        exact: float | None = None,
        interval: str = "clopper-pearson",
    ) -> Estimate:
        """Proportion ``successes / trials`` with a Clopper–Pearson or Hoeffding interval."""
        fn = hoeffding if interval == "hoeffding" else clopper_pearson
        lo, hi = fn(int(successes), int(trials), confidence)
        value = successes / trials if trials else float("nan")
        return cls(value, lo, hi, confidence, int(trials), method, interval, exact)

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies inside the interval."""
        return self.low <= x <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
