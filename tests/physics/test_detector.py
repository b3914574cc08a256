"""Exact per-slot detector model: closed-form limits, a brute-force twin, and the rates built on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.physics import LCQ_2012, bb84, link_rate
from qverify.physics import detector as D


@pytest.mark.parametrize("convention", ["squash", "discard"])
@given(mu=st.floats(0.01, 2.0), eta=st.floats(1e-5, 1.0), p_dark=st.floats(0.0, 1e-3), e=st.floats(0.0, 0.2))
@settings(max_examples=30, deadline=None)
def test_no_dead_time_equals_the_per_slot_closed_form(convention, mu, eta, p_dark, e):
    # DESIGN.md "The physics": p_r = 1 − e^{−μη(1−e)}(1−p_d), p_w = 1 − e^{−μηe}(1−p_d); discard gives
    # gain p_r(1−p_w) + p_w(1−p_r), squash adds p_r p_w (error ½).
    f = D.slot_figures(mu, eta, p_dark, e, 0, convention)
    g = bb84.gains_per_slot(mu, eta, p_dark, e, convention)
    assert f.gain == pytest.approx(float(g.gain), rel=1e-12, abs=1e-300)
    assert f.error_gain == pytest.approx(float(g.error_gain), rel=1e-12, abs=1e-300)
    assert f.live_fraction == 1.0


def test_single_photon_yields_match_gllp_without_dead_time():
    # Ma et al. PRA 72, 012326 (2005) Eq. (7) with Y0 = 2 p_d: the exact per-slot Y0 = 1 − (1 − p_d)²
    # differs by (1 − η) p_d², so the yields agree to within p_d² absolute.
    eta, p_dark, e = np.array([1e-4, 1e-2, 0.3]), 1e-6, 0.015
    f = D.slot_figures(0.5, eta, p_dark, e)
    np.testing.assert_allclose(f.y1, bb84.y1(eta, p_dark), rtol=0, atol=p_dark**2)
    np.testing.assert_allclose(f.e1y1 / f.y1, bb84.e1(eta, p_dark, e), rtol=1e-4)
    np.testing.assert_allclose(f.y0, p_dark * (2 - p_dark), rtol=1e-9)


@pytest.mark.parametrize(("dead", "convention"), [(3, "squash"), (3, "discard"), (7, "squash")])
def test_dead_time_chain_matches_brute_force_slots(dead, convention):
    # Bright enough that detectors are often dead (μη = 0.3): dead time changes gain and QBER by tens
    # of percent here, far more than the 4σ statistical band of 60 000 simulated slots.
    mu, eta, p_dark, e = 0.5, 0.6, 2e-3, 0.03
    f = D.slot_figures(mu, eta, p_dark, e, dead, convention)
    matched, bits, wrong = D.simulate_slots(mu, eta, p_dark, e, dead, convention, 60_000, np.random.default_rng(7))
    gain, qber = bits / matched, wrong / bits
    assert abs(gain - f.gain) < 4 * np.sqrt(f.gain * (1 - f.gain) / matched)
    q = f.error_gain / f.gain
    assert abs(qber - q) < 4 * np.sqrt(q * (1 - q) / bits)
    no_dead = D.slot_figures(mu, eta, p_dark, e, 0, convention)
    assert f.gain < 0.8 * no_dead.gain and f.live_fraction < 0.8


def test_decoy_stream_drives_the_dead_time_per_slot():
    # Three intensities sent at random: the detectors' live law is set by the whole stream, and each
    # intensity's gain is averaged over it (what finite-key BB84 uses). Bright enough that the stream
    # matters: treating every pulse as signal would give a gain 14 % lower than the mixture's.
    mus, probs = (0.6, 0.1, 2e-4), (0.5, 0.3, 0.2)
    f = D.stream_figures(mus, probs, 0.5, 2e-3, 0.03, 3, "squash", 0.5)
    matched, bits, _wrong = D.simulate_slots(mus, 0.5, 2e-3, 0.03, 3, "squash", 80_000, np.random.default_rng(5),
                                            0.5, probs)  # fmt: skip
    for k in range(3):
        g = float(f[k].gain)
        assert abs(bits[k] / matched[k] - g) < 4 * np.sqrt(g * (1 - g) / matched[k])
    assert float(D.slot_figures(0.6, 0.5, 2e-3, 0.03, 3).gain) < 0.9 * float(f[0].gain)


def _full_chain_alive(mu_eta, e_mis, p_dark, d, p_match):
    """Oracle: the stationary law of both dead-time counters over all (d + 1)² states, built slot by
    slot from the click rules (a detector with counter c > 0 is blind and counts down; a live one
    that clicks restarts at d) and solved densely. Returns P(both live), P(exactly one), P(none)."""
    import itertools

    states = [(a, b) for a in range(d + 1) for b in range(d + 1)]
    index = {s: k for k, s in enumerate(states)}
    trans = np.zeros((len(states), len(states)))
    settings_ = [
        (p_match / 2, (mu_eta * (1 - e_mis), mu_eta * e_mis)),
        (p_match / 2, (mu_eta * e_mis, mu_eta * (1 - e_mis))),
        (1 - p_match, (mu_eta / 2, mu_eta / 2)),
    ]
    for k, counters in enumerate(states):
        for weight, means in settings_:
            p_click = [1 - np.exp(-m) * (1 - p_dark) for m in means]
            for pattern in itertools.product((False, True), repeat=2):
                prob, nxt = weight, []
                for c, clicked, pc in zip(counters, pattern, p_click, strict=True):
                    if c > 0:
                        prob *= 0.0 if clicked else 1.0
                        nxt.append(c - 1)
                    else:
                        prob *= pc if clicked else 1 - pc
                        nxt.append(d if clicked else 0)
                trans[k, index[tuple(nxt)]] += prob
    a = trans.T - np.eye(len(states))
    a[-1, :] = 1.0
    pi = np.linalg.solve(a, np.eye(len(states))[-1])
    live = np.array([(s[0] == 0) + (s[1] == 0) for s in states])
    return pi[live == 2].sum(), pi[live == 1].sum(), pi[live == 0].sum()


@given(
    d=st.integers(1, 6),
    log_mu_eta=st.floats(-9.0, 0.5),
    e_mis=st.floats(0.0, 0.3),
    p_dark=st.floats(0.0, 1e-2),
    p_match=st.sampled_from([0.5, 0.9, 1.0]),
)
@settings(max_examples=60, deadline=None)
def test_reduced_chain_equals_the_full_counter_chain(d, log_mu_eta, e_mis, p_dark, p_match):
    # The d × d reduction (alive_fractions) against the (d + 1)²-state chain solved densely, and the
    # renewal identity of one detector: live a geometric time of mean 1/q, then dead d slots.
    mu_eta = float(np.exp(log_mu_eta))
    got = D.alive_fractions(mu_eta, e_mis, p_dark, d, p_match)
    want = _full_chain_alive(mu_eta, e_mis, p_dark, d, p_match)
    np.testing.assert_allclose(np.array(got, dtype=float), want, rtol=1e-9, atol=1e-13)
    q, _, _ = D._click_law(np.asarray(mu_eta), e_mis, p_dark, p_match, np)
    assert float(got[0] + got[1] / 2) == pytest.approx(1 / (1 + q * d), rel=1e-10)


def test_detector_figures_run_under_jit_and_agree_with_numpy():
    import jax
    import jax.numpy as jnp

    mu = np.array([0.05, 0.3, 0.8])
    want = D.slot_figures(mu, 0.05, 1e-5, 0.02, 5, "discard")
    with jax.enable_x64(True):
        got = jax.jit(lambda m: D.figures(m, 0.05, 1e-5, 0.02, 5, "discard"))(jnp.asarray(mu))
        for name in ("gain", "error_gain", "y1", "e1y1", "live_fraction"):
            np.testing.assert_allclose(np.asarray(getattr(got, name)), getattr(want, name), rtol=1e-12)


def test_long_dead_time_is_tractable():
    # 200 slots of dead time: the full chain would have 40 401 states; the reduced one has 200.
    f = D.slot_figures(np.array([0.1, 0.5]), 0.01, 1e-6, 0.01, 200)
    assert np.all(f.live_fraction > 0) and np.all(f.live_fraction < 1)
    assert np.all(np.diff(f.gain) > 0)


def test_dead_time_raises_qber_and_lowers_the_rate():
    # A dead right detector lets the wrong one click alone: the QBER rises with dead time.
    base = LCQ_2012.replace(double_click="discard")
    r0 = link_rate(np.array([1.0, 10.0]), base, "bb84")
    r3 = link_rate(np.array([1.0, 10.0]), base.replace(dead_time_slots=3), "bb84")
    assert np.all(r3.qber > r0.qber) and np.all(r3.key_rate < r0.key_rate)


def test_key_rate_pays_for_the_convention_it_reports():
    # The rate under "discard" is built from the discard QBER, not from the squash one.
    p = LCQ_2012.replace(double_click="discard", mu=0.5)
    r = link_rate(np.array(5.0), p, "bb84")
    eta = 0.145 * 10 ** (-0.2 * 5 / 10)
    f = D.slot_figures(0.5, eta, 3e-6, 0.015, 0, "discard")
    assert float(r.qber) == pytest.approx(f.error_gain / f.gain, rel=1e-12)
    g = bb84.Gains(np.asarray(f.gain), np.asarray(f.error_gain))
    expect = bb84.key_rate_from_yields(0.5, f.y1, f.e1y1, g, 1.16, 0.5)
    assert float(r.key_rate) == pytest.approx(float(expect), rel=1e-12)


def test_standard_bb84_sifts_half_and_efficient_is_named():
    r_std = link_rate(np.array(20.0), LCQ_2012, "bb84")
    r_eff = link_rate(np.array(20.0), LCQ_2012.replace(sift_factor=1.0), "bb84")
    assert float(r_std.key_rate) == pytest.approx(0.5 * float(r_eff.key_rate), rel=1e-6)
    assert LCQ_2012.source.sift_for("mdi") == 1.0 and LCQ_2012.source.sift_for("bb84") == 0.5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dead_time_slots": -1}, "dead_time_slots"),
        ({"dead_time_slots": 2.5}, "dead_time_slots"),
        ({"dead_time_slots": 201}, "dead_time_slots"),
        ({"double_click": "keep"}, "double_click"),
        ({"p_match": 0.0}, "p_match"),
    ],
)
def test_bad_detector_input_names_the_field(kwargs, field):
    args = {"mu": 0.5, "eta": 0.1, "p_dark": 1e-6, "e_mis": 0.01, **kwargs}
    with pytest.raises(Exception, match=field):
        D.slot_figures(**args)


def test_mdi_dead_time_past_the_relay_model_is_refused_not_ignored():
    # Charlie's four-detector chain (qverify.physics.relay) holds up to 10 slots; beyond, no silent rate.
    with pytest.raises(ParameterError, match="dead_time_slots"):
        link_rate(np.array(10.0), LCQ_2012.replace(dead_time_slots=11), "mdi")
    with pytest.raises(ParameterError, match="dead_time_slots"):
        LCQ_2012.replace(dead_time_slots=1.5)


def _reference_max_distance(params, protocol, decoys, lo=0.0, hi=2000.0):
    """Bisection on the best rate over 20 000 log-spaced μ (the slow, obviously-correct search)."""
    from qverify.physics.rates import MU_MAX, MU_MIN, rate_function

    mu_lo = params.source.nu * 1.0001 if decoys == "vacuum+weak" else MU_MIN
    mus = np.exp(np.linspace(np.log(mu_lo), np.log(MU_MAX), 20_000))

    def positive(d):
        return bool(np.max(rate_function(np.array(d), params, protocol, decoys)(mus)[0]) > 0)

    if not positive(lo):
        return 0.0
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if positive(mid) else (lo, mid)
    return lo


@given(
    e_mis=st.floats(0.0, 0.06),
    log_p_dark=st.floats(-8, -4),
    eta_det=st.floats(0.05, 0.9),
    protocol=st.sampled_from(["mdi", "bb84"]),
    decoys=st.sampled_from(["infinite", "vacuum+weak"]),
)
@settings(max_examples=12, deadline=None)
def test_optimised_reach_matches_a_fine_reference_search(e_mis, log_p_dark, eta_det, protocol, decoys):
    # Issue: a coarse μ grid used to return μ = 1e-4 and rate 0 near the cutoff, where the unclipped
    # MDI rate has a spurious maximum at μ → 0; the reach must agree with a 20 000-point search.
    from qverify.physics import max_distance_km

    p = LCQ_2012.replace(e_mis=e_mis, p_dark=10**log_p_dark, eta_det=eta_det)
    assert abs(max_distance_km(p, protocol, decoys) - _reference_max_distance(p, protocol, decoys)) < 0.01
