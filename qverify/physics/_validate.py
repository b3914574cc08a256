"""Small range checks shared by the parameter dataclasses; each raises ``ParameterError``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qverify.errors import ParameterError


def _values(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=float).ravel()


def check_range(
    field: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ParameterError`` unless every element of ``value`` lies in the interval.

    >>> check_range("e_mis", 0.6, 0.0, 0.5)
    Traceback (most recent call last):
    ...
    qverify.errors.ParameterError: e_mis = 0.6 is outside the allowed range [0, 0.5]
    """
    closing = ")" if high_open or math.isinf(high) else "]"
    allowed = f"{'(' if low_open else '['}{low:g}, {high:g}{closing}"
    try:
        arr = _values(value)
    except (TypeError, ValueError):
        raise ParameterError(field, value, allowed) from None
    if arr.size == 0:
        return
    bad_nan = ~np.isfinite(arr) & ~(np.isinf(arr) & (arr > 0) & math.isinf(high))
    bad_low = arr <= low if low_open else arr < low
    bad_high = arr >= high if high_open else arr > high
    bad = bad_nan | bad_low | bad_high
    if bad.any():
        first = arr[np.argmax(bad)]
        shown = float(first) if isinstance(value, np.ndarray) or np.ndim(value) else value
        raise ParameterError(field, shown, allowed)
