"""Parameter estimation: the Clopper–Pearson upper bound in JAX, the endpoints' abort rule, false and
missed aborts against the truth (simulator-only), and the key test rounds cost."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta

from qverify.errors import ChoiceError
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.estimation import cp_bracket, cp_upper, pe_aborts
from qverify.network.sim import Fluctuation, SimConfig, build_params
from qverify.network.topology import grid


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20_000), frac=st.floats(0, 1), conf=st.sampled_from([0.9, 0.95, 0.99]))
def test_cp_upper_matches_scipy(n, frac, conf):
    # Reference: the one-sided Clopper–Pearson bound is the conf-quantile of Beta(k + 1, n − k)
    # (Clopper & Pearson 1934); scipy's beta.ppf in float64.
    k = round(frac * n)
    want = 1.0 if k >= n else float(beta.ppf(conf, k + 1, n - k))
    got = float(cp_upper(k, n, conf))
    # Accuracy stated in cp_upper's docstring: float32 betainc loses digits to lgamma cancellation as
    # n grows (largest error seen over 12 000 random (n, k, conf): 1.0e-5 for n ≤ 1000, 6.6e-5 for
    # n ≤ 20 000, against scipy in float64).
    assert abs(got - want) <= (2e-5 if n <= 1000 else 1e-4)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10**6), frac=st.floats(0, 1), conf=st.sampled_from([0.5, 0.8, 0.95, 0.999, 0.999999]))
def test_cp_bracket_contains_the_bound(n, frac, conf):
    # The closed-form bracket Newton starts from must hold the exact bound (scipy, float64), or the
    # solver could not reach it: k/n ≤ u ≤ min(Hoeffding, relative Chernoff).
    k = min(round(frac * n), n - 1)
    lo, hi = (float(v) for v in cp_bracket(jnp.float32(k), jnp.float32(n), jnp.float32(conf)))
    want = float(beta.ppf(conf, k + 1, n - k))
    assert lo <= want * (1 + 1e-12) and want <= hi * (1 + 1e-12)


def test_cp_upper_in_one_batch_matches_scipy():
    # Under vmap every Newton step runs for the whole batch until its slowest element settles: a
    # batch mixing tiny and large n, k = 0 to n and confidences from 0.5 to 0.999 must still give
    # every element its bound. Reference: scipy's beta.ppf (Clopper & Pearson 1934) in float64.
    rng = np.random.default_rng(7)
    n = rng.integers(1, 20_001, 20_000)
    n[:10_000] = rng.integers(1, 1001, 10_000)
    k = np.round(rng.random(n.size) ** 3 * n).astype(int)
    k[:2000] = rng.integers(0, 4, 2000).clip(max=n[:2000])
    conf = rng.choice([0.5, 0.9, 0.95, 0.99, 0.999], n.size)
    want = np.where(k >= n, 1.0, beta.ppf(conf, k + 1, np.maximum(n - k, 1)))
    got = np.asarray(jax.jit(cp_upper)(k, n, conf))
    err = np.abs(got - want)
    # Largest errors measured (seed 7): 1.9e-5 for n ≤ 1000 and 9.2e-5 for n ≤ 20 000, the float32
    # betainc's own (the bisection this solver replaced: 1.9e-5 and 1.1e-4 on the same kind of set).
    assert err[n <= 1000].max() <= 3e-5
    assert err.max() <= 1.5e-4
    assert np.all(got[k == 0] == pytest.approx(-np.expm1(np.log1p(-conf[k == 0]) / n[k == 0]), abs=1e-6))


def test_cp_upper_edges_and_monotone():
    assert float(cp_upper(0, 0, 0.95)) == 1.0
    assert float(cp_upper(5, 5, 0.95)) == 1.0
    # k = 0: the bound is 1 − (1 − c)^(1/n) (closed form of the Beta(1, n) quantile).
    assert abs(float(cp_upper(0, 100, 0.95)) - (1 - 0.05 ** (1 / 100))) < 1e-5
    u = np.asarray(cp_upper(jnp.arange(0, 50), 200, 0.95))
    assert np.all(np.diff(u) > 0)
    assert np.all(np.asarray(cp_upper(20, jnp.array([100, 400, 1600]) * 1, 0.95)) >= 20 / jnp.array([100, 400, 1600]))


def counts_of(errors: np.ndarray, heralds: np.ndarray) -> jnp.ndarray:
    """(E, 3, 2) counts with the given Z/X totals split over Z and X (Y empty)."""
    c = np.zeros((len(errors), 3, 2), np.int32)
    c[:, 0, 0], c[:, 1, 0] = errors // 2, errors - errors // 2
    c[:, 0, 1], c[:, 1, 1] = heralds // 2, heralds - heralds // 2
    return jnp.asarray(c)


def test_abort_rule():
    # 100/1000 = 0.10 measured: upper bound above 0.11 at 95 %, so abort; 60/1000 continues;
    # no herald at all aborts (nothing verified).
    ab, upper = pe_aborts(counts_of(np.array([100, 60, 0]), np.array([1000, 1000, 0])), 0.11, 0.95)
    assert np.asarray(ab).tolist() == [True, False, True]
    assert float(upper[0]) > 0.11 > float(upper[1])
    # Fewer rounds, same rate: more conservative (the bound grows, so 9/100 aborts where 90/1000 does not).
    ab, _ = pe_aborts(counts_of(np.array([9, 90]), np.array([100, 1000])), 0.11, 0.95)
    assert np.asarray(ab).tolist() == [True, False]


def test_byzantine_endpoint_cannot_stop_an_honest_abort():
    p = build_params(grid(1, 3), SimConfig(n_demands=1, adversary=Adversary(fraction=0.0, behaviours=("lie",))))
    # Links of grid(1, 3): 0–1 and 1–2. Both links measure an error rate far above the threshold.
    bad = counts_of(np.array([300, 300]), np.array([1000, 1000]))
    none = jnp.zeros(3, bool)
    assert np.asarray(M.endpoint_aborts(bad, none, none, p)).tolist() == [True, True]
    middle = jnp.array([False, True, False])  # node 1 lies on both its links: the other ends abort anyway
    assert np.asarray(M.endpoint_aborts(bad, middle, middle, p)).tolist() == [True, True]
    both = jnp.array([True, True, False])  # link 0–1 has no honest end: nobody aborts it
    assert np.asarray(M.endpoint_aborts(bad, both, both, p)).tolist() == [False, True]


def test_aborts_follow_the_measurement_not_the_truth():
    # Few test rounds: the estimate is noisy, so the endpoints abort some links whose true QBER is
    # below the threshold (false aborts) and the truth never decides an abort by itself.
    cfg = SimConfig(n_demands=2, epoch_slots=2, verify_rounds=60, node_rounds=0, fluctuation=Fluctuation.off(),
                    adversary=Adversary(fraction=0.0))  # fmt: skip
    p = build_params(grid(2, 2), cfg, seed=0)
    dec = M.Decision(jnp.ones(p.n_links, bool), p.nominal_mu, p.is_mdi, jnp.zeros(p.n_demands, jnp.int32))
    state = M.init(jax.random.PRNGKey(0), p)
    _state, out = M.run(jax.random.PRNGKey(3), state, dec, p, 40, aligned=True)
    aborted, qber = np.asarray(out.aborted), np.asarray(out.qber)
    assert np.all(qber < p.qber_threshold)  # every link truly fine...
    assert aborted.any()  # ...and some aborted all the same: ~20 Z/X rounds cannot vouch for < 11 %
    # An aborted link distils nothing in that slot.
    assert np.all(np.asarray(out.generated)[aborted] == 0)


def test_test_rounds_cost_key():
    cfg = SimConfig(n_demands=1, epoch_slots=2, node_rounds=0, fluctuation=Fluctuation.off(),
                    adversary=Adversary(fraction=0.0))  # fmt: skip
    p = build_params(grid(1, 2), cfg, seed=0)
    dec = M.Decision(jnp.ones(p.n_links, bool), p.nominal_mu, p.is_mdi, jnp.zeros(p.n_demands, jnp.int32))
    state = M.init(jax.random.PRNGKey(0), p)
    _s, few = M.step(jax.random.PRNGKey(1), state, dec, p)
    _s, many = M.step(jax.random.PRNGKey(1), state, dec.replace(test_scale=jnp.full(p.n_links, 100.0)), p)
    g_few, g_many = float(few.generated[0]), float(many.generated[0])
    assert 0 < g_many < g_few
    # Conservation of the link's key: distilled + spent on tests is the same either way.
    assert np.isclose(g_few + float(few.test_bits[0]), g_many + float(many.test_bits[0]), rtol=1e-5)


def test_fewer_rounds_make_host_decisions_more_conservative():
    from qverify.network.measure import claim_upper

    rep = np.array([[0.09, 0.09], [0.09, 0.09]])
    counts = np.zeros((2, 3, 2), np.int64)
    counts[0, :2, 1] = 100  # 200 Z/X rounds
    counts[1, :2, 1] = 5000  # 10 000
    up = claim_upper(rep, counts)
    assert up[0, 0] > 0.11 > up[1, 0] > 0.09  # the same claim: unusable on few rounds, usable on many
    assert np.all(claim_upper(rep, np.zeros((2, 3, 2))) == rep)  # nothing measured yet: the claim stands


def test_simulate_reports_per_link_measurements_and_abort_rates():
    from qverify.network.sim import simulate

    cfg = SimConfig(n_demands=2, epoch_slots=2, verify_rounds=3000, node_rounds=0,
                    adversary=Adversary(fraction=0.25, behaviours=("inject", "lie")))  # fmt: skip
    r = simulate(grid(2, 3), cfg, 40, seed=1)
    rows = r.link_table()
    assert len(rows) == r.zx_counts.shape[1] and r.zx_counts.shape[0] == 20
    for row in rows:
        lo, hi = row["interval"]
        assert row["rounds"] > 0 and lo <= row["measured_qber"] <= hi and isinstance(row["aborted"], bool)
    s = r.summary()
    # CP intervals are conservative: coverage at least about the nominal 95 % (80 intervals here).
    assert s["interval_coverage"] >= 0.85
    # Injected links (QBER ≈ 15 %) are stopped by their honest ends: few missed aborts, and with
    # 3000 rounds per epoch almost no false ones.
    assert s["missed_abort_rate"] < 0.3 and s["false_abort_rate"] < 0.1


@cache
def _rollout(cfg: SimConfig, slots: int, seed: int = 3) -> tuple[M.NetParams, M.SlotOut, M.NetState]:
    p = build_params(grid(2, 3), cfg, seed=0)
    dec = M.Decision(jnp.ones(p.n_links, bool), p.nominal_mu, p.is_mdi, jnp.zeros(p.n_demands, jnp.int32))
    state, out = M.run(jax.random.PRNGKey(seed), M.init(jax.random.PRNGKey(0), p), dec, p, slots, aligned=True)
    return p, out, state


# Injecting Byzantine nodes push their links above the threshold (≈ 15 % injected error), and so few
# test rounds make the measured rule abort good links too: both rules have something to differ on.
ORACLE_CASE = SimConfig(n_demands=2, epoch_slots=2, verify_rounds=60, node_rounds=0,
                        adversary=Adversary(fraction=0.25, behaviours=("inject", "lie")))  # fmt: skip


def test_oracle_aborts_exactly_where_the_true_qber_is_above_the_threshold():
    p, out, state = _rollout(replace(ORACLE_CASE, abort_rule="oracle"), 30)
    aborted, qber = np.asarray(out.aborted), np.asarray(out.qber)
    truth = qber > float(p.qber_threshold)
    assert truth.any() and (~truth).any()
    np.testing.assert_array_equal(aborted, truth)  # slot by slot, link by link, lying ends or not
    assert np.all(np.asarray(out.generated)[aborted] == 0)
    # What the network shows as aborted (observation, host) is the abort that acted in the last slot.
    np.testing.assert_array_equal(np.asarray(state.pe_abort), truth[-1])
    # The measured rule on the same draws differs from the truth (a lying end keeps its injected link).
    _p, measured, _s = _rollout(ORACLE_CASE, 30)
    assert not np.array_equal(np.asarray(measured.aborted), truth)
    np.testing.assert_array_equal(np.asarray(measured.qber), qber)  # the same truth: aborts never feed back


def test_oracle_observation_is_the_measured_one_plus_the_truth():
    p, _out, state = _rollout(ORACLE_CASE, 30)
    po = build_params(grid(2, 3), replace(ORACLE_CASE, observation="oracle"), seed=0)
    assert po.observation == "oracle" and p.observation == "measured"
    measured, oracle = np.asarray(M.observe(state, p)), np.asarray(M.observe(state, po))
    n = M.obs_size(p)
    assert oracle.shape == (M.obs_size(po),) == (n + p.n_links + p.n_nodes,) and len(M.obs_fields(po)) == len(oracle)
    np.testing.assert_array_equal(oracle[:n], measured)
    np.testing.assert_allclose(oracle[n : n + p.n_links], np.asarray(state.qber) / float(p.qber_threshold), rtol=1e-6)
    np.testing.assert_array_equal(oracle[n + p.n_links :], np.asarray(state.byzantine, np.float32))
    assert M.obs_fields(po)[n] == "link0.true_qber" and M.obs_fields(po)[-1] == f"node{p.n_nodes - 1}.byzantine"


def test_realism_switches_refuse_unknown_values():
    with pytest.raises(ChoiceError, match="abort_rule"):
        SimConfig(abort_rule="truth")
    with pytest.raises(ChoiceError, match="observation"):
        SimConfig(observation="latent")


def test_interval_coverage_is_within_tolerance_of_its_exact_value():
    # Calm links without adversary: each link's true QBER is the same in every epoch and each epoch
    # draws fresh test counts, so every interval covers the truth independently with the probability
    # the Clopper–Pearson construction gives at that (n, q), computed here exactly from the binomial
    # pmf (scipy); Clopper–Pearson is conservative, so that is at or above the nominal 95 %.
    from scipy.stats import binom

    from qverify.network.sim import simulate
    from qverify.verify.stats import clopper_pearson_arrays

    cfg = SimConfig(n_demands=2, epoch_slots=2, verify_rounds=1500, node_rounds=0, fluctuation=Fluctuation.off(),
                    adversary=Adversary(fraction=0.0))  # fmt: skip
    r = simulate(grid(2, 3), cfg, 160, seed=4)
    c = r.realism_counts()
    n = r.zx_counts[..., 1]
    truth = r.qber_series[0]  # constant over slots (no fluctuation)
    assert np.allclose(r.qber_series, truth)
    exact = []
    for q, trials in zip(np.broadcast_to(truth, n.shape).ravel(), n.ravel(), strict=True):
        ks = np.arange(trials + 1)
        lo, hi = clopper_pearson_arrays(ks, np.full_like(ks, trials), 0.95)
        exact.append(float(binom.pmf(ks, trials, q)[(lo <= q) & (q <= hi)].sum()))
    exact_arr = np.array(exact)
    assert c["intervals"] == n.size == 80 * 7 and np.all(exact_arr >= 0.95 - 1e-9)
    # Tolerance: 4 standard deviations of the count of independent covering events.
    tol = 4 * np.sqrt(np.sum(exact_arr * (1 - exact_arr))) / c["intervals"]
    assert abs(c["covered"] / c["intervals"] - exact_arr.mean()) <= tol
    assert abs(c["covered"] / c["intervals"] - 0.95) <= 0.05  # and so near the nominal level
    assert c["upper_covered"] / c["intervals"] >= 0.95 - tol  # the one-sided bound at pe_confidence
    assert c["covered"] / c["intervals"] == r.interval_coverage()


def test_claim_bounds_for_every_kind_of_claim():
    # Each endpoint's claim as errors out of the link's heralded Z/X rounds, bounded as Clopper and
    # Pearson (1934) bound a rate (scipy's float64 beta.ppf as the reference), clipped to ½ as every
    # reader clips it: the counts' own estimate (honest), 0 (a liar), ½ (a slanderer), and other
    # values, which take their own bisection.
    from qverify.network.estimation import claim_bounds

    n, k = 400, 20
    counts = counts_of(np.full(4, k), np.full(4, n))
    reported = np.array([[0.05, 0.0], [0.05, 0.5], [0.05, 0.03], [0.07, 0.0125]], np.float32)
    claimed = np.rint(reported * n)
    want = np.where(claimed < n, beta.ppf(0.95, claimed + 1, np.maximum(n - claimed, 1)), 1.0)
    upper, per = claim_bounds(jnp.asarray(reported), counts, 0.95)
    np.testing.assert_allclose(np.asarray(upper), beta.ppf(0.95, k + 1, n - k), atol=2e-5)
    np.testing.assert_allclose(np.minimum(np.asarray(per), 0.5), np.minimum(want, 0.5), atol=2e-5)
    # Under vmap, a batch element with an "other" claim gets its bisection even when the rest have none.
    batch = np.stack([np.array([[0.05, 0.0]] * 4, np.float32), reported])
    _u, per_b = jax.vmap(claim_bounds, in_axes=(0, None, None))(jnp.asarray(batch), counts, 0.95)
    np.testing.assert_array_equal(np.asarray(per_b[1]), np.asarray(per))
