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


# --- finite-key MDI-QKD (after Curty et al., Nat. Commun. 5, 3732, 2014) -----------------------


def _mdi_eta(km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = 10 ** (-0.2 * km / 2 / 10) * 0.145  # symmetric relay, LCQ 2012 detector efficiency
    return half, half


@settings(max_examples=60, deadline=None)
@given(log_e=st.floats(0.0, 9.0), log_eps=st.floats(-12.0, -2.0))
def test_chernoff_interval_covers_a_poisson_mean(log_e, log_eps):
    # Oracle: the exact Poisson tails (scipy). E leaves the interval only when the count lands in a
    # tail of mass ≤ eps on each side (a sum of rare independent Bernoullis tends to Poisson).
    from scipy.stats import poisson

    from qverify.physics.finite import chernoff_interval

    e, eps = 10**log_e, 10**log_eps
    n = np.arange(max(0, int(e - 60 * np.sqrt(e) - 200)), int(e + 60 * np.sqrt(e) + 200))
    lo, hi = chernoff_interval(n, eps)
    too_high = n[lo > e]  # counts whose lower end exceeds the true mean
    too_low = n[hi < e]
    if too_high.size:
        assert poisson.sf(too_high[0] - 1, e) <= eps * (1 + 1e-9)
    if too_low.size:
        assert poisson.cdf(too_low[-1], e) <= eps * (1 + 1e-9)


def test_mdi_asymptotic_limit_is_the_vacuum_weak_rate():
    # finite=False drops every fluctuation: the length per pulse pair is the asymptotic vacuum+weak
    # rate (qverify.physics.mdi.key_rate_vacuum_weak, Xu et al. NJP 15, 113007, 2013) times the
    # probability p_μ² q_z² that a pair is a Z-basis signal pair.
    from qverify.physics import mdi
    from qverify.physics.finite import MDIDecoySettings, mdi_decoy_estimates

    s = MDIDecoySettings(mu=0.45, nu=0.08, p=(0.5, 0.3, 0.2), q_z=0.8)
    eta_a, eta_b = _mdi_eta(DISTANCES_KM)
    eta_b = eta_b * 0.7  # asymmetric arms
    est = mdi_decoy_estimates(1.0, eta_a, eta_b, 3e-6, 0.015, 1.16, s, finite=False)
    ref = mdi.key_rate_vacuum_weak(s.mu, s.nu, eta_a, eta_b, 3e-6, 0.015, 1.16, 1.0, clip=False)
    np.testing.assert_allclose(est["length"], s.p[0] ** 2 * s.q_z**2 * ref, rtol=1e-9)


def test_mdi_finite_rate_tends_to_the_asymptotic_rate_and_grows_with_n():
    from qverify.physics.finite import mdi_finite_rate

    eta_a, eta_b = _mdi_eta(DISTANCES_KM[:3])
    asym = mdi_finite_rate(np.inf, eta_a, eta_b, 3e-6, 0.015)
    rates = [mdi_finite_rate(n, eta_a, eta_b, 3e-6, 0.015) for n in (1e12, 1e14, 1e16, 1e20)]
    gaps = [np.max(np.abs(r - asym) / asym) for r in rates]
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 1e-3
    assert all(np.all(b >= a) for a, b in itertools.pairwise(rates))


def test_mdi_smaller_epsilon_costs_key_and_bad_settings_name_the_field():
    from qverify.physics.finite import MDIDecoySettings, mdi_finite_rate

    eta_a, eta_b = _mdi_eta(np.array(20.0))
    loose = mdi_finite_rate(1e14, eta_a, eta_b, 3e-6, 0.015, settings=MDIDecoySettings(eps_sec=1e-4, eps_cor=1e-4))
    tight = mdi_finite_rate(1e14, eta_a, eta_b, 3e-6, 0.015, settings=MDIDecoySettings(eps_sec=1e-15, eps_cor=1e-15))
    assert 0 < tight < loose
    for kwargs, field in (({"nu": 0.5, "mu": 0.4}, "mu"), ({"q_z": 0.0}, "q_z"), ({"p": (0.5, 0.5, 0.5)}, "p")):
        with pytest.raises(ParameterError, match=field):
            MDIDecoySettings(**kwargs)
    with pytest.raises(ParameterError, match="n_pairs"):
        mdi_finite_rate(0.5, eta_a, eta_b, 3e-6, 0.015)


# --- link level: settings searched per distance -------------------------------------------------


@pytest.mark.parametrize("protocol", ["bb84", "mdi"])
def test_finite_link_rate_orders_block_sizes_and_refuses_bad_input(protocol):
    from qverify.physics import LCQ_2012
    from qverify.physics.finite_link import finite_link_rate, min_block_size

    d = np.array([0.0, 40.0, 80.0])
    rates = [finite_link_rate(d, LCQ_2012, protocol, n).key_rate for n in (1e11, 1e13, np.inf)]
    assert all(np.all(b >= a) for a, b in itertools.pairwise(rates))
    assert rates[-1][0] > 0
    need = min_block_size(LCQ_2012, protocol)
    assert finite_link_rate(np.array(0.0), LCQ_2012, protocol, need * 1.05).key_rate > 0
    assert finite_link_rate(np.array(0.0), LCQ_2012, protocol, need / 1.05).key_rate == 0
    for kwargs, field in (({"n_pulses": 0.0}, "block_size"), ({"eps": 1.0}, "epsilon"), ({"eps": 0.0}, "epsilon")):
        with pytest.raises(ParameterError, match=field):
            finite_link_rate(d, LCQ_2012, protocol, **kwargs)
    if protocol == "mdi":  # the relay's chain is not searched over decoy settings
        with pytest.raises(ParameterError, match="dead_time_slots"):
            finite_link_rate(d, LCQ_2012.replace(dead_time_slots=3), protocol)


def test_bb84_finite_key_pays_for_dead_time_driven_by_the_decoy_stream():
    # Lim et al. (PRA 89, 022307) bounds on gains from the exact detector model: dead time lowers
    # the key where detectors click often, barely where they rarely do, and more pulses still give
    # more key, up to the N → ∞ limit.
    from qverify.physics import LCQ_2012
    from qverify.physics.finite_link import finite_link_rate

    d = np.array([1.0, 20.0, 100.0])
    rates = {
        dead: finite_link_rate(d, LCQ_2012.replace(dead_time_slots=dead), "bb84", 1e12).key_rate for dead in (0, 3, 10)
    }
    assert np.all(rates[10] <= rates[3]) and np.all(rates[3] <= rates[0])
    assert rates[10][0] < 0.9 * rates[0][0] and rates[10][2] > 0.95 * rates[0][2]
    p3 = LCQ_2012.replace(dead_time_slots=3)
    r10, r12, rinf = (finite_link_rate(np.array(20.0), p3, "bb84", n).key_rate for n in (1e10, 1e12, np.inf))
    assert 0 < r10 < r12 < rinf
