"""Finite-key decoy BB84 (Lim et al., PRA 89, 022307, 2014): limits, monotonicity, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.physics import bb84
from qverify.physics.finite import DecoySettings, bb84_finite_rate, decoy_estimates

ETA_DET = 0.1
DISTANCES_KM = np.array([0.0, 25.0, 50.0, 100.0, 140.0])


def _eta(km: np.ndarray) -> np.ndarray:
    return 10 ** (-0.2 * km / 10) * ETA_DET


def test_asymptotic_bounds_are_ma_vacuum_weak_decoy_bounds():
    # With μ3 = 0 and N → ∞, Lim et al.'s Eq. (4) and (5) reduce to Ma, Qi, Zhao, Lo, PRA 72, 012326,
    # Eq. (34) (Y1 lower bound) and Eq. (37) (e1 upper bound), written here from that paper.
    mu, nu, p_dark, e_mis = 0.5, 0.1, 1e-6, 0.015
    s = DecoySettings(mu=(mu, nu, 0.0), p=(0.6, 0.2, 0.2), q_x=0.5)
    eta = _eta(DISTANCES_KM)
    est = decoy_estimates(1.0, eta, p_dark, e_mis, 1.16, s, finite=False)
    y0 = 2 * p_dark
    g_mu, g_nu = bb84.gains(mu, eta, p_dark, e_mis), bb84.gains(nu, eta, p_dark, e_mis)
    y1_low = (
        mu
        / (mu * nu - nu**2)
        * (g_nu.gain * np.exp(nu) - g_mu.gain * np.exp(mu) * nu**2 / mu**2 - (mu**2 - nu**2) / mu**2 * y0)
    )
    e1_up = (g_nu.error_gain * np.exp(nu) - y0 / 2) / (y1_low * nu)
    tau1 = sum(pk * m * np.exp(-m) for m, pk in zip(s.mu, s.p, strict=True))
    np.testing.assert_allclose(est["s_x1"] / (s.q_x**2 * tau1), y1_low, rtol=1e-9)
    np.testing.assert_allclose(est["v_z1"] / est["s_z1"], e1_up, rtol=1e-9)


def test_finite_rate_tends_to_the_asymptotic_rate():
    eta = _eta(DISTANCES_KM[:4])
    asym = bb84_finite_rate(np.inf, eta, 1e-6, 0.015)
    gaps = [np.max(np.abs(bb84_finite_rate(n, eta, 1e-6, 0.015) - asym) / asym) for n in (1e10, 1e12, 1e14, 1e18)]
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 1e-3


@settings(max_examples=40, deadline=None)
@given(km=st.floats(0.0, 200.0), exp_lo=st.floats(6.0, 15.0), step=st.floats(0.1, 3.0))
def test_more_pulses_never_give_less_key_per_pulse(km, exp_lo, step):
    eta = _eta(np.array(km))
    lo = bb84_finite_rate(10**exp_lo, eta, 1e-6, 0.015)
    hi = bb84_finite_rate(10 ** (exp_lo + step), eta, 1e-6, 0.015)
    assert hi >= lo - 1e-15
    assert bb84_finite_rate(np.inf, eta, 1e-6, 0.015) >= hi - 1e-15


def test_smaller_epsilon_costs_key():
    eta = _eta(np.array(50.0))
    loose = bb84_finite_rate(1e11, eta, 1e-6, 0.015, settings=DecoySettings(eps_sec=1e-6, eps_cor=1e-6))
    tight = bb84_finite_rate(1e11, eta, 1e-6, 0.015, settings=DecoySettings(eps_sec=1e-15, eps_cor=1e-15))
    assert 0 < tight < loose


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mu": (0.1, 0.2, 0.0)}, "mu1"),  # μ1 must exceed μ2 + μ3
        ({"mu": (0.5, 0.1, 0.2)}, "mu2"),
        ({"p": (0.5, 0.2, 0.2)}, "p"),
        ({"q_x": 1.0}, "q_x"),
        ({"eps_sec": 0.0}, "eps_sec"),
        ({"eps_cor": 2.0}, "eps_cor"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ParameterError, match=field):
        DecoySettings(**kwargs)


def test_bad_block_size_names_the_field():
    with pytest.raises(ParameterError, match="n_pulses"):
        bb84_finite_rate(0, 0.01, 1e-6, 0.015)
