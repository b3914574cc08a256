"""Charlie's four detectors with dead time: closed-form limits, an exact dense chain, a per-slot
simulation, decoy consistency of the single-photon figures, and the MDI-QKD rates built on them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.physics import LCQ_2012, link_rate, mdi
from qverify.physics import relay as R
from qverify.physics.rates import _mdi_per_slot


@given(
    mu=st.floats(0.01, 2.0),
    eta_a=st.floats(1e-4, 1.0),
    eta_b=st.floats(1e-4, 1.0),
    p_dark=st.floats(0.0, 1e-3),
    e=st.floats(0.0, 0.2),
)
@settings(max_examples=40, deadline=None)
def test_no_dead_time_equals_ma_razavi(mu, eta_a, eta_b, p_dark, e):
    # Ma & Razavi, PRA 86, 062319 (2012): gains Eq. (B1)–(B3), Y11 Eq. (A9), e11 Eq. (A10)–(A11).
    f = R.relay_figures(mu, eta_a, eta_b, p_dark, e)
    g = mdi.gains_z(mu, mu, eta_a, eta_b, p_dark, e)
    assert f.gain == pytest.approx(float(g.gain), rel=1e-9)
    assert f.error_gain == pytest.approx(float(g.error_gain), rel=1e-9, abs=1e-300)
    y = float(mdi.y11(eta_a, eta_b, p_dark))
    assert f.y11_z == pytest.approx(y, rel=1e-12) and f.y11_x == pytest.approx(y, rel=1e-12)
    # The closed form computes e11 Y11 as a difference (Y11/2 − (1/2 − e)·…), exact only to ~1e-15 Y11.
    assert f.e11y11_x == pytest.approx(float(mdi.e11(eta_a, eta_b, p_dark, e, "X")) * y, rel=1e-9, abs=1e-14 * y)
    assert f.e11y11_z == pytest.approx(float(mdi.e11(eta_a, eta_b, p_dark, e, "Z")) * y, rel=1e-9, abs=1e-14 * y)
    assert f.live_fraction == 1.0


def _dense_chain(law: np.ndarray, d: int) -> np.ndarray:
    """Oracle: all (d + 1)⁴ counter states listed one by one, moved slot by slot by the click rules
    (a blind detector counts down; a live one restarts at d if it clicks, else stays at 0) under
    the would-click law, and the stationary law solved densely. Returns π(L) per live-set mask."""
    states = list(itertools.product(range(d + 1), repeat=4))
    index = {s: k for k, s in enumerate(states)}
    p = np.zeros((len(states), len(states)))
    for s in states:
        for w in range(16):
            nxt = tuple((d if w >> i & 1 else 0) if s[i] == 0 else s[i] - 1 for i in range(4))
            p[index[s], index[nxt]] += law[w]
    a = np.vstack([p.T - np.eye(len(states)), np.ones(len(states))])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(len(states)), 1.0], rcond=None)[0]
    out = np.zeros(16)
    for s, mass in zip(states, pi, strict=True):
        out[sum(1 << i for i in range(4) if s[i] == 0)] += mass
    return out


@pytest.mark.parametrize(("d", "basis_z"), [(1, 1.0), (2, 1.0), (3, 0.7)])
def test_live_set_law_matches_the_dense_chain(d, basis_z):
    mu, eta_a, eta_b, p_dark = np.array([0.6, 0.3]), np.array([0.4, 0.05]), np.array([0.3, 0.2]), 1e-3
    pi, change = R.live_set_law(mu, eta_a, eta_b, p_dark, d, basis_z)
    assert np.all(change <= R.tolerance(np.float64))
    law = R.stream_law(mu, eta_a, eta_b, p_dark, basis_z)
    for k in range(2):
        np.testing.assert_allclose([float(v[k]) for v in pi], _dense_chain(law[k], d), rtol=1e-10, atol=1e-14)


@given(mu=st.floats(0.05, 2.0), eta=st.floats(1e-3, 1.0), d=st.integers(1, 6))
@settings(max_examples=15, deadline=None)
def test_each_detector_alone_is_a_renewal_process(mu, eta, d):
    # A detector that would click with probability q per slot is live for a geometric time of mean
    # 1/q and then blind for d slots: P(live) = 1/(1 + q d), whatever the other three do.
    pi, _ = R.live_set_law(np.array(mu), np.array(eta), np.array(eta / 2), 1e-4, d)
    law = R.stream_law(np.array(mu), np.array(eta), np.array(eta / 2), 1e-4)
    for i in range(4):
        q = sum(float(law[w]) for w in range(16) if w >> i & 1)
        live = sum(float(pi[m]) for m in range(16) if m >> i & 1)
        assert live == pytest.approx(1 / (1 + q * d), rel=1e-11)


@pytest.mark.parametrize(("d", "basis_z"), [(3, 1.0), (2, 0.6)])
def test_dead_time_matches_a_per_slot_simulation(d, basis_z):
    # Bright light at Charlie (λ ≈ 0.4 per arm): every detector is blind a third of the time, which
    # halves the gain — far more than the 4σ band of 60 000 simulated slots.
    mu, eta_a, eta_b, p_dark, e = 0.8, 0.5, 0.4, 2e-3, 0.03
    f = R.relay_figures(mu, eta_a, eta_b, p_dark, e, d, basis_z)
    pairs, ok, wrong = R.simulate_relay_slots(
        mu, eta_a, eta_b, p_dark, e, d, 60_000, np.random.default_rng(11), basis_z
    )
    assert abs(ok / pairs - f.gain) < 4 * np.sqrt(f.gain * (1 - f.gain) / pairs)
    q = f.error_gain / f.gain
    assert abs(wrong / ok - q) < 4 * np.sqrt(q * (1 - q) / ok)
    assert f.gain < 0.8 * R.relay_figures(mu, eta_a, eta_b, p_dark, e, 0, basis_z).gain


def test_single_photon_figures_agree_with_decoy_extraction_per_live_set():
    # For every live set and setting, the photon-level Y11 (two-photon bosonic routing) must equal
    # what the decoy identity extracts from the coherent-state click law (a different computation):
    # G(a) = Q_aa e^{2a} − (Q_a0 + Q_0a) e^{a} + Q_00 = Σ_{n,m≥1} a^{n+m}/(n! m!) Y_nm, Richardson in a.
    eta_a, eta_b, p_dark, e = np.array(0.6), np.array(0.45), 1e-3, 0.02
    for basis in ("Z", "X"):
        pols = R._POLARISATION[basis]
        for x, y in itertools.product((0, 1), (0, 1)):
            a_pol, b_pol = pols[x], pols[y]

            def q(ma: float, mb: float, a_pol=a_pol, b_pol=b_pol, x=x, y=y, basis=basis):
                law = R._coherent_law(np.array(ma) * eta_a, np.array(mb) * eta_b, a_pol, b_pol, p_dark, np)
                return np.array(R._per_live_set(law, basis, x, y, np.asarray(e)[..., None]))

            def g(a: float) -> np.ndarray:
                return q(a, a) * np.exp(2 * a) - (q(a, 0.0) + q(0.0, a)) * np.exp(a) + q(0.0, 0.0)

            a = 2e-4  # Richardson leaves O(a²): ~4e-9 here; rounding in G stays ~1e-11 relative
            extracted = 2 * g(a) / a**2 - g(2 * a) / (2 * a) ** 2
            law1 = R._photon_law(eta_a, eta_b, a_pol, b_pol, p_dark, np)
            direct = np.array(R._per_live_set(law1, basis, x, y, np.asarray(e)[..., None]))
            np.testing.assert_allclose(extracted, direct, rtol=1e-5, atol=1e-8)


def test_jax_and_numpy_chains_agree():
    import jax
    import jax.numpy as jnp

    mu, eta_a, eta_b = np.array([0.3, 0.9]), np.array([0.2, 0.05]), np.array([0.1, 0.3])
    want = R.relay_figures(mu, eta_a, eta_b, 1e-4, 0.02, 4, 0.8)
    with jax.enable_x64(True):
        got = jax.jit(lambda m: R.figures(m, jnp.asarray(eta_a), jnp.asarray(eta_b), 1e-4, 0.02, 4, 0.8))(
            jnp.asarray(mu)
        )
        for name in R.RelayFigures._fields:
            np.testing.assert_allclose(np.asarray(getattr(got, name)), getattr(want, name), rtol=1e-12)


def test_the_rate_pays_for_the_relay_figures_it_reports():
    # Lo–Curty–Qi, PRL 108, 130503 (2012), Eq. (1) with every figure from the dead-time model; with
    # d = 0 the same assembly gives the closed-form rate.
    eta = 0.145 * 10 ** (-0.2 * 10 / 10)
    r0, _ = _mdi_per_slot(np.array(0.4), eta, eta, 3e-6, 0.015, 1.16, 1.0, 0)
    assert float(r0) == pytest.approx(float(mdi.key_rate_infinite(0.4, eta, eta, 3e-6, 0.015, 1.16)), rel=1e-9)
    p = LCQ_2012.replace(dead_time_slots=3, mu=0.4)
    r = link_rate(np.array(20.0), p, "mdi")
    f = R.relay_figures(0.4, eta, eta, 3e-6, 0.015, 3)
    assert float(r.qber) == pytest.approx(f.error_gain / f.gain, rel=1e-12)
    assert float(r.gain) == pytest.approx(f.gain, rel=1e-12)


def test_dead_time_lowers_the_mdi_rate_where_clicks_are_frequent():
    d = np.array([0.0, 50.0])
    r0 = link_rate(d, LCQ_2012, "mdi")
    r3 = link_rate(d, LCQ_2012.replace(dead_time_slots=3), "mdi")
    assert np.all(r3.key_rate < r0.key_rate)
    # Each detector would click in ~2 % of slots at 0 km and ~3× fewer at 50 km (μ ≈ 0.55, η = 14.5 %).
    assert r3.key_rate[0] / r0.key_rate[0] < r3.key_rate[1] / r0.key_rate[1] < 0.97


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1e-6, 0.01, R.MAX_DEAD_TIME_SLOTS + 1), "dead_time_slots"),
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1e-6, 0.01, -1), "dead_time_slots"),
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1e-6, 0.01, 2.5), "dead_time_slots"),
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1.0, 0.01, 2), "p_dark"),
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1e-6, 0.6, 2), "e_mis"),
        (lambda: R.relay_figures(0.5, 0.1, 0.1, 1e-6, 0.01, 2, 1.5), "basis_z"),
        (lambda: link_rate(np.array(10.0), LCQ_2012.replace(dead_time_slots=11), "mdi"), "dead_time_slots"),
    ],
)
def test_bad_relay_input_names_the_field(call, field):
    with pytest.raises(ParameterError, match=field):
        call()
