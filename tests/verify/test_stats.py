"""Binomial intervals: reference values and empirical coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.verify.stats import Estimate, clopper_pearson, hoeffding


def test_clopper_pearson_reference():
    # Clopper & Pearson, Biometrika 26, 404 (1934): for k = 0 the upper end is 1 - (alpha/2)^(1/n).
    lo, hi = clopper_pearson(0, 20, 0.95)
    assert lo == 0.0
    assert hi == pytest.approx(1 - 0.025 ** (1 / 20), rel=1e-10)
    # k = n: lower end is (alpha/2)^(1/n).
    lo, hi = clopper_pearson(20, 20, 0.95)
    assert lo == pytest.approx(0.025 ** (1 / 20), rel=1e-10) and hi == 1.0


@given(k=st.integers(0, 200), extra=st.integers(0, 200), conf=st.floats(0.5, 0.999))
def test_intervals_contain_point_estimate(k, extra, conf):
    n = k + extra
    for fn in (clopper_pearson, hoeffding):
        lo, hi = fn(k, n, conf)
        assert 0.0 <= lo <= hi <= 1.0
        if n:
            assert lo - 1e-12 <= k / n <= hi + 1e-12


@pytest.mark.parametrize("interval", ["clopper-pearson", "hoeffding"])
@pytest.mark.parametrize("p", [0.01, 0.2, 0.5])
def test_empirical_coverage_at_least_nominal(interval, p):
    rng = np.random.default_rng(12345)
    n, conf, reps = 200, 0.9, 2000
    ks = rng.binomial(n, p, size=reps)
    covered = sum(Estimate.binomial(int(k), n, conf, "sampled", interval=interval).contains(p) for k in ks)
    # Both intervals are conservative; allow 3 binomial standard errors of Monte-Carlo noise.
    assert covered / reps >= conf - 3 * np.sqrt(conf * (1 - conf) / reps)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5])
def test_confidence_outside_unit_interval(bad):
    with pytest.raises(ParameterError, match="confidence"):
        clopper_pearson(1, 10, bad)
