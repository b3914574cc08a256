"""QDS lengths from bounds (qverify.verify.qds): L ↔ positions, the length a target ε needs, the
bounds reported beside the measured rates, repudiation measured apart from parameter estimation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.verify.qds import bounds_at, length_for, run_qds

DEFAULTS = dict(s_a=0.08, s_v=0.16, p_depol=0.02, e_abort=0.08, test_fraction=0.2)


def test_lengths_for_the_issue_targets():
    # refs/verification.md (Zoo run.py recipe): L_h = ln(2/ε)/(s_a − p_h)² with p_h = 0.01 dominates;
    # L = 2021.2 at ε = 1e-4 and 4840.7 at 1e-10; positions = 2L/(1 − 0.2) (qds module docstring).
    assert length_for(1e-4, **DEFAULTS) == math.ceil(2 * math.log(2e4) / 0.07**2 / 0.8)
    assert length_for(1e-4, **DEFAULTS) == 5053 and length_for(1e-10, **DEFAULTS) == 12102
    b = bounds_at(2000, **DEFAULTS)  # the old default length
    assert b.honest_abort > 1e-2  # 2000 positions do not reach 1e-4 for honest abort
    assert b.paper_length == pytest.approx(800.0)


@settings(max_examples=40, deadline=None)
@given(eps=st.floats(1e-12, 0.5), f=st.floats(0.05, 0.6))
def test_length_is_the_smallest_meeting_every_bound(eps, f):
    kw = {**DEFAULTS, "test_fraction": f}
    n = length_for(eps, **kw)
    at = bounds_at(n, **kw)
    assert max(at.honest_abort, at.repudiation, at.forgery) <= eps * (1 + 1e-9)
    below = bounds_at(n - 2, **kw)
    assert max(below.honest_abort, below.repudiation, below.forgery) > eps * (1 - 1e-9)


def test_run_reports_bounds_and_splits_repudiation():
    r = run_qds(trials=12, seed=5)
    assert r.params["length"] == 5053 and r.epsilon == 1e-4 and r.bounds is not None
    assert max(r.bounds.honest_abort, r.bounds.repudiation, r.bounds.forgery) <= 1e-4
    assert r.repudiation_parameter_estimation_abort is not None and r.repudiation_past_parameter_estimation is not None
    # the repudiating signer corrupts 12 % of Charlie's states: parameter estimation (e_abort 8 %) aborts it
    assert r.repudiation_parameter_estimation_abort.value == 1.0
    # measured apart from that abort, symmetrisation alone stops it too
    assert r.repudiation_past_parameter_estimation.value == 0.0
    assert r.honest_parameter_estimation_abort is not None and r.honest_parameter_estimation_abort.value == 0.0


def test_bad_input():
    with pytest.raises(ParameterError, match=r"length = 2000 is outside the allowed range \[5053, inf\)"):
        run_qds(length=2000, trials=1)
    with pytest.raises(ParameterError, match="epsilon"):
        length_for(1.5, **DEFAULTS)
    with pytest.raises(ParameterError, match="epsilon"):
        run_qds(epsilon=0.0, trials=1)
    with pytest.raises(ParameterError, match="s_a"):
        length_for(1e-4, **{**DEFAULTS, "p_depol": 0.2})  # honest error 0.1 ≥ s_a
    with pytest.raises(ParameterError, match="length"):
        run_qds(epsilon=None, trials=1)
