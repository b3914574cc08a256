"""Paired differences and 'converged' as staying above a target."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from qverify.experiments.stats import episodes_to_stay, paired_difference


def test_bca_interval_covers_the_true_difference_at_about_its_level():
    # Paired normal data with a common per-seed effect: the interval must track the difference's
    # spread, not either sample's. Nominal 95 %; BCa at n = 12 covers a little less; ≥ 88 % of 200.
    rng = np.random.default_rng(0)
    hits = 0
    for k in range(200):
        common = rng.normal(0, 5, 12)
        a = common + 0.3 + rng.normal(0, 0.2, 12)
        b = common + rng.normal(0, 0.2, 12)
        d = paired_difference(a, b, seed=k)
        hits += d.low <= 0.3 <= d.high
        assert d.high - d.low < 1.0  # the common effect (σ = 5) cancels
    assert hits >= 176


def test_small_and_degenerate_samples_say_so():
    assert paired_difference(np.array([1.0, 2.0]), np.array([0.0, 1.0])).method == "too few seeds"
    d = paired_difference(np.ones(4), np.zeros(4))
    assert d.method == "degenerate" and d.low == d.high == 1.0 and "all 4 seeds equal" in d.text()


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.floats(0, 1))
def test_episodes_to_stay_is_the_last_crossing(curve, target):
    c = np.array(curve)
    r = episodes_to_stay(c, target)
    if r is None:
        assert c[-1] < target
    else:
        assert np.all(c[r - 1 :] >= target) and (r == 1 or c[r - 2] < target)
