"""The JAX network model: conservation laws, a slow Python twin of the relay, the measurement path,
what the observation may contain, reports of lying endpoints, exposure accounting."""

from __future__ import annotations

import itertools
from functools import cache

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.network import measure as MS
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.sim import Fluctuation, SimConfig, build_params
from qverify.network.topology import grid, load_builtin, random_geometric
from qverify.protocols.mdi import BSMNoise
from qverify.verify.bsm import run_bsm

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOPOLOGIES = {
    "secoqc": lambda: load_builtin("secoqc"),
    "grid": lambda: grid(2, 3),
    "rgg": lambda: random_geometric(9, seed=2),
}


@cache
def instance(topo: str, relay: str, behaviours: tuple[str, ...] = ("inject", "drop", "lie")) -> M.NetParams:
    cfg = SimConfig(
        n_demands=4, relay=relay, paths=2, shamir_k=1 if relay == "shamir" else 2, demand_bits=4e5,
        pool_cap_bits=2e6, adversary=Adversary(fraction=0.25, behaviours=behaviours), epoch_slots=3,
        verify_rounds=300, fluctuation=Fluctuation(fade_rate=0.1, fade_db=12.0),
    )  # fmt: skip
    return build_params(TOPOLOGIES[topo](), cfg, seed=0)


def random_decision(rng: np.random.Generator, p: M.NetParams) -> M.Decision:
    e, d = p.n_links, p.n_demands
    return M.Decision(
        jnp.asarray(rng.random(e) < 0.85),
        jnp.asarray(rng.choice(np.asarray(p.mu_levels), e), jnp.float32),
        jnp.asarray(rng.random(e) < 0.5),
        jnp.asarray(rng.integers(0, p.path_valid.shape[1], d), jnp.int32),
    )


@SETTINGS
@given(
    topo=st.sampled_from(sorted(TOPOLOGIES)),
    relay=st.sampled_from(M.RELAY_MODES),
    seed=st.integers(0, 2**31 - 1),
)
def test_key_conservation_and_bounds(topo, relay, seed):
    p = instance(topo, relay)
    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    state0 = M.init(key, p)
    _state, out = jax.jit(M.run, static_argnums=4)(jax.random.fold_in(key, 1), state0, random_decision(rng, p), p, 20)
    pool_before = np.concatenate([np.asarray(state0.pool)[None], np.asarray(out.pool)[:-1]])
    gen, cons, disc = (np.asarray(x, dtype=np.float64) for x in (out.generated, out.consumed, out.discarded))
    # generated = Δpool + consumed + discarded, slot by slot and link by link (float32 arithmetic)
    scale = 1e-5 * (np.abs(gen) + np.abs(pool_before) + 1.0)
    assert np.all(np.abs(gen - (np.asarray(out.pool) - pool_before) - cons - disc) <= scale)
    cap = float(p.pool_cap_bits)
    assert np.all(np.asarray(out.pool) >= 0) and np.all(np.asarray(out.pool) <= cap * (1 + 1e-6))
    delivered = np.asarray(out.delivered)
    assert np.all(delivered >= 0) and np.all(delivered <= float(p.demand_bits) * (1 + 1e-6))
    # served ≤ requested: a demand is served only if its whole request arrived
    assert np.all(delivered[np.asarray(out.served)] >= float(p.demand_bits) * (1 - 1e-5))
    # no key through a link its endpoints' parameter estimation aborted (the truth decides nothing)
    aborted = np.asarray(out.aborted)
    assert np.all(cons[aborted] == 0) and np.all(gen[aborted] == 0)
    # every delivered bit was drawn from the pools
    assert delivered.sum() <= cons.sum() * (1 + 1e-5) + 1e-3
    assert np.all(np.asarray(out.exposed) <= delivered.sum(axis=1) * (1 + 1e-6) + 1e-3)


def twin_relay(p: M.NetParams, dec: M.Decision, pool: np.ndarray, aborted: np.ndarray, active: np.ndarray) -> dict:
    """The relay rules of qverify.network.model written as plain loops over demands, paths and hops."""
    pl, pi, pv = (np.asarray(x) for x in (p.path_links, p.path_inner, p.path_valid))
    usable, route = np.asarray(dec.usable), np.asarray(dec.route)
    trusted = np.asarray(p.trusted)
    bits, k = float(p.demand_bits), p.shamir_k
    d_n, p_n, _ = pl.shape
    chosen = {
        d: ([min(max(int(route[d]), 0), p_n - 1)] if p.relay == "single" else list(range(p_n))) for d in range(d_n)
    }
    hops = {(d, j): [int(x) for x in pl[d, j] if x >= 0] for d in range(d_n) for j in range(p_n)}
    relays = {(d, j): [int(x) for x in pi[d, j] if x >= 0] for d in range(d_n) for j in range(p_n)}
    ok = {
        (d, j): bool(pv[d, j]) and all(usable[h] and not aborted[h] for h in hops[d, j])
        for d in chosen
        for j in chosen[d]
    }
    requested = np.zeros(len(pool))
    for (d, j), good in ok.items():
        for h in hops[d, j]:
            requested[h] += bits if good else 0.0
    share = {h: (min(1.0, pool[h] / requested[h]) if requested[h] > 0 else 1.0) for h in range(len(pool))}
    frac = {
        dj: (min(share[h] for h in hops[dj]) if good and hops[dj] else (1.0 if good else 0.0))
        for dj, good in ok.items()
    }
    consumed = np.zeros(len(pool))
    seen = np.zeros(len(trusted))
    in_use = np.zeros(len(pool), dtype=bool)
    for dj, f in frac.items():
        for h in hops[dj]:
            consumed[h] += f * bits
            in_use[h] |= bool(pv[dj])
        for n in relays[dj]:
            seen[n] += f * bits
    delivered, served, exposed = np.zeros(d_n), np.zeros(d_n, dtype=bool), 0.0
    for d in range(d_n):
        fr, hit, valid = [], [], []
        for j in chosen[d]:
            f = frac[d, j]
            if bool(p.drop_keys) and any(active[n] for n in relays[d, j]):
                f = 0.0
            fr.append(f)
            hit.append(bool(pv[d, j]) and any(active[n] or not trusted[n] for n in relays[d, j]))
            valid.append(bool(pv[d, j]))
        full = [f >= 1 - M.SERVED_TOLERANCE for f in fr]
        if p.relay == "single":
            served[d], delivered[d], exp = full[0], fr[0] * bits, hit[0]
        elif p.relay == "xor":
            nv = sum(valid)
            served[d] = nv > 0 and all(fu or not v for fu, v in zip(full, valid, strict=True))
            delivered[d] = min([f for f, v in zip(fr, valid, strict=True) if v], default=0.0) * bits if nv else 0.0
            every = nv > 0 and sum(hit) == nv
            exp = every if bool(p.collude) else every and nv == 1
        else:
            served[d] = sum(full) >= k
            ranked = sorted([f if v else 0.0 for f, v in zip(fr, valid, strict=True)], reverse=True)
            delivered[d] = (ranked[k - 1] if len(ranked) >= k else 0.0) * bits
            exp = sum(hit) >= k if bool(p.collude) else (k == 1 and sum(hit) >= 1)
        exposed += delivered[d] * exp
    return {"pool": np.maximum(pool - consumed, 0.0), "delivered": delivered, "served": served, "exposed": exposed,
            "consumed": consumed, "in_use": in_use, "seen": seen}  # fmt: skip


@pytest.mark.parametrize("collude", [True, False])
@pytest.mark.parametrize("relay", M.RELAY_MODES)
def test_relay_equals_slow_python_twin(relay, collude):
    relay_fn = jax.jit(M._relay)
    exposed_cases = served_cases = 0
    for seed in range(24):
        rng = np.random.default_rng(seed)
        p = instance(sorted(TOPOLOGIES)[seed % 3], relay)
        n = p.n_nodes
        p = p.replace(
            collude=jnp.asarray(collude),
            trusted=jnp.asarray(rng.random(n) < 0.8),
            drop_keys=jnp.asarray(bool(rng.random() < 0.3)),
        )
        dec = random_decision(rng, p)
        pool = rng.choice([0.0, 1e5, 4e5, 2e6, 2e6, 2e6], p.n_links).astype(np.float32)
        aborted = rng.random(p.n_links) < 0.1
        active = rng.random(n) < 0.3
        got = relay_fn(p, dec, jnp.asarray(pool), jnp.asarray(aborted), jnp.asarray(active))
        want = twin_relay(p, dec, pool.astype(np.float64), aborted, active)
        names = ("pool", "delivered", "served", "exposed", "consumed", "in_use", "seen")
        for name, value in zip(names, got, strict=True):
            np.testing.assert_allclose(np.asarray(value, np.float64), want[name], rtol=1e-5, atol=1e-2, err_msg=name)
        exposed_cases += want["exposed"] > 0
        served_cases += bool(want["served"].any())
    # the comparison is not vacuous: keys were delivered, and some of them exposed
    assert served_cases > 0 and (exposed_cases > 0 or (relay != "single" and not collude))


@pytest.mark.parametrize(("qber", "inject_prob"), [(0.015, 0.0), (0.16, 0.3), (0.2, 0.3), (0.5, 1.0)])
def test_circuit_mixture_is_exact_and_matches_the_link_qber(qber, inject_prob):
    corners = MS.corner_distributions()
    w = np.asarray(MS.corner_weights(jnp.asarray([qber], jnp.float32), jnp.asarray([inject_prob], jnp.float32)))
    probs = np.asarray(MS.distribution(jnp.asarray(w), jnp.asarray(corners)))[0]
    err = probs[:, 0] / (probs[:, 0] + probs[:, 1])
    # the calibration: the circuit's Z and X error equal the link's signal QBER
    np.testing.assert_allclose(err[:2], qber, atol=1e-6)
    # the mixture equals Aer's exact distribution of the circuit at those (λ, p) (qverify.verify.bsm)
    lam = float(w[0, 1] + w[0, 3])
    if inject_prob < 1:
        ref = run_bsm(BSMNoise(e_mis=lam / 2), relay="inject", inject_prob=inject_prob, shots=1)
        for b, est in enumerate((ref.e_z, ref.e_x, ref.e_y)):
            assert err[b] == pytest.approx(est.exact, abs=1e-6)
        assert probs[0, 0] + probs[0, 1] == pytest.approx(ref.success.exact, abs=1e-6)


def test_sampled_verification_qber_converges_to_the_circuit_value():
    p = instance("secoqc", "single")
    qber = jnp.asarray(np.linspace(0.01, 0.3, p.n_links), jnp.float32)
    mix = MS.corner_weights(qber, jnp.zeros(p.n_links))
    none = jnp.zeros(p.n_nodes, bool)
    errors = []
    for rounds in (300, 30_000, 3_000_000):
        est = np.stack([
            np.asarray(MS.measure(jax.random.PRNGKey(s), mix, none, none, p.replace(verify_rounds=rounds))[0][:, 0])
            for s in range(8)
        ])  # fmt: skip
        errors.append(np.abs(est - np.asarray(qber)).mean())
        # heralded Z+X rounds ≈ rounds·(2/3)·(1/2); 5 binomial standard deviations
        sd = np.sqrt(np.asarray(qber) * (1 - np.asarray(qber)) / (rounds / 3))
        assert np.all(np.abs(est - np.asarray(qber)) <= 5 * sd + 1e-6)
    assert errors[0] > errors[1] > errors[2]


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_observation_never_reads_the_truth(seed):
    p = instance("rgg", "single")
    key = jax.random.PRNGKey(seed)
    state, _ = M.run(key, M.init(key, p), random_decision(np.random.default_rng(seed), p), p, 7)
    rng = np.random.default_rng(seed + 1)
    e = p.n_links
    other = state.replace(
        byzantine=jnp.asarray(rng.random(p.n_nodes) < 0.5),
        qber=jnp.asarray(rng.random(e) * 0.5, jnp.float32),
        # Latent truth too: drifts, excess loss and fades, the exact loss, the noise-free rate.
        log_eta=jnp.asarray(rng.normal(0, 1, e), jnp.float32),
        log_src=jnp.asarray(rng.normal(0, 1, e), jnp.float32),
        excess_db=jnp.asarray(rng.normal(0, 5, e), jnp.float32),
        fade_left=jnp.asarray(rng.integers(0, 30, e), jnp.int32),
        loss_db=jnp.asarray(rng.uniform(0, 40, e), jnp.float32),
        rate_bps=jnp.asarray(rng.uniform(0, 1e6, e), jnp.float32),
        detected=jnp.asarray(rng.uniform(0, 1e7, e), jnp.float32),
    )
    np.testing.assert_array_equal(np.asarray(M.observe(state, p)), np.asarray(M.observe(other, p)))
    # and nothing in the observation's inputs is the Byzantine set: its gradient w.r.t. the true QBER is 0
    g = jax.grad(lambda q: M.observe(state.replace(qber=q), p).sum())(state.qber)
    assert not np.any(np.asarray(g))
    assert len(M.obs_fields(p)) == M.obs_size(p) == M.observe(state, p).shape[0]


def test_lying_and_slandering_endpoints_report_what_they_claim():
    for behaviours, claim in ((("inject", "lie"), 0.0), (("inject", "slander"), 0.5)):
        p = instance("secoqc", "single", behaviours)
        byz = np.asarray(p.byzantine)
        assert byz.any()
        key = jax.random.PRNGKey(3)
        state, out = M.run(key, M.init(key, p), M.Decision(jnp.ones(p.n_links, bool), p.nominal_mu, p.is_mdi,
                                                             jnp.zeros(p.n_demands, jnp.int32)), p, 3)  # fmt: skip
        assert bool(out.measured[-1])
        rep = np.asarray(state.reported)
        c = np.asarray(state.counts)
        measured = c[:, :2, 0].sum(1) / c[:, :2, 1].sum(1)
        a, b = np.asarray(p.link_a), np.asarray(p.link_b)
        for side, me, other in ((0, a, b), (1, b, a)):
            bad = byz[me] & (~byz[other] if claim == 0.5 else True)
            np.testing.assert_allclose(rep[bad, side], claim)
            np.testing.assert_allclose(rep[~byz[me], side], measured[~byz[me]], rtol=1e-6)
        # Injected links measure high QBER through the honest endpoint.
        injected = byz[a] | byz[b]
        assert measured[injected].min() > measured[~injected].max()


def test_link_reports_carry_intervals_and_consistent_claims():
    nodes = ("a", "b")
    counts = np.array([[[40, 2000], [60, 2000], [50, 2000]]])  # errors, heralds for Z, X, Y
    measured = 100 / 4000
    reps = MS.link_reports(nodes, np.array([0]), np.array([1]), counts, np.array([[measured, 0.0]]), 10.0)
    honest, liar = reps
    f_exact = 1 - (0.02 + 0.03 + 0.025) / 2
    assert honest.estimate.value == pytest.approx(f_exact)
    assert honest.estimate.low < f_exact < honest.estimate.high and honest.qber == pytest.approx(measured)
    assert liar.qber == 0.0 and liar.estimate.value == 1.0 and liar.reporter == "b"
    # What the weights read: the one-sided Clopper–Pearson bound of each claim over the 4000 heralded
    # Z/X rounds (beta quantile, Clopper & Pearson 1934); the liar's 0 errors give 1 − 0.05^(1/4000).
    from scipy.stats import beta

    assert honest.qber_upper == pytest.approx(beta.ppf(0.95, 101, 3900), rel=1e-12)
    assert liar.qber_upper == pytest.approx(1 - 0.05 ** (1 / 4000), rel=1e-12)
    assert honest.qber < honest.qber_upper < 0.5


def test_exposure_shamir_k1_single_path_xor_and_untrusted_relays():
    g = nx.Graph()
    for name in "ABCDE":
        g.add_node(name, trusted=True)
    for u, v in (("A", "B"), ("B", "C"), ("A", "D"), ("D", "C"), ("C", "E")):
        g.add_edge(u, v, length_km=10.0, protocol="mdi", relay_fraction=0.5)
    cases = []
    for relay, k in (("shamir", 1), ("xor", 2)):
        cfg = SimConfig(relay=relay, paths=2, shamir_k=k, n_demands=1, demand_bits=10.0,
                        adversary=Adversary(fraction=0.0, collude=False))  # fmt: skip
        cases.append(build_params(g, cfg, seed=0))
    names = list(g.nodes)
    for p in cases:
        demand = np.asarray(p.path_inner)[0]
        dec = M.Decision(jnp.ones(p.n_links, bool), p.nominal_mu, p.is_mdi, jnp.zeros(1, jnp.int32))
        pool = jnp.full(p.n_links, 1e3)
        none = jnp.zeros(p.n_links, bool)
        active = np.zeros(p.n_nodes, bool)
        relay_nodes = [int(x) for x in demand.ravel() if x >= 0]
        active[relay_nodes[0]] = True  # one Byzantine relay on one of the paths, no collusion
        p = p.replace(drop_keys=jnp.asarray(False))
        _pool, delivered, _s, exposed, *_ = M._relay(p, dec, pool, none, jnp.asarray(active))
        n_paths = int(np.asarray(p.path_valid)[0].sum())
        if p.relay == "shamir":  # k = 1: one share is the key
            assert float(exposed) == pytest.approx(float(delivered.sum()))
        elif n_paths == 1:  # XOR over the only path: that relay sees everything
            assert float(exposed) == pytest.approx(float(delivered.sum()))
        else:
            assert float(exposed) == 0.0
        if p.relay == "xor" and n_paths == 2:
            # a different Byzantine relay on each of the two disjoint paths: exposed only if they collude
            both = np.zeros(p.n_nodes, bool)
            for j in range(2):
                both[int(np.asarray(p.path_inner)[0, j][0])] = True
            for collude in (False, True):
                q = p.replace(collude=jnp.asarray(collude))
                _pl, deliv2, _s2, exp2, *_ = M._relay(q, dec, pool, none, jnp.asarray(both))
                assert float(deliv2.sum()) > 0
                assert (float(exp2) > 0) == collude
        # an untrusted relay (not Byzantine) on a single path also counts as a learner
        single = p.replace(
            relay="single", trusted=jnp.asarray([names[i] != names[relay_nodes[0]] for i in range(p.n_nodes)])
        )
        *_, exposed_u, _c, _u, _seen = M._relay(single, dec, pool, none, jnp.zeros(p.n_nodes, bool))
        route0 = [int(x) for x in np.asarray(p.path_inner)[0, 0] if x >= 0]
        assert (float(exposed_u) > 0) == (relay_nodes[0] in route0)


@pytest.mark.parametrize(
    ("field", "kwargs"), [("verify_rounds", {"verify_rounds": 0}), ("epoch_slots", {"epoch_slots": 0})]
)
def test_bad_measurement_settings(field, kwargs):
    with pytest.raises(ParameterError, match=field):
        SimConfig(**kwargs)


def test_all_corners_are_distributions():
    c = MS.corner_distributions()
    np.testing.assert_allclose(c.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(c >= -1e-12)
    # λ = 1 or p = 1 randomise the photon: error = correct herald in every basis (Z, X, Y), both protocols
    for corner in (1, 2, 3, 5, 6, 7):
        np.testing.assert_allclose(c[corner, :, 0], c[corner, :, 1], atol=1e-12)
    assert list(itertools.chain(c[0, :, 0], c[4, :, 0])) == pytest.approx([0.0] * 6, abs=1e-12)
    # BB84 test rounds are all detected; the BSM heralds half (linear optics: ψ− and ψ+ of four Bell states)
    np.testing.assert_allclose(c[4:, :, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(c[0, :, 1], 0.5, atol=1e-12)


@pytest.mark.parametrize(("qber", "inject_prob"), [(0.015, 0.0), (0.16, 0.3), (0.5, 1.0)])
def test_bb84_mixture_equals_aer_on_the_bb84_rounds(qber, inject_prob):
    """The BB84 corners mixed at a link's (λ, p) equal Aer's exact distribution of the six
    prepare-and-measure rounds under that channel; the key-basis error is the link's QBER."""
    from qverify.backends import exact_distributions
    from qverify.protocols import bb84_rounds

    w = MS.corner_weights(jnp.asarray([qber]), jnp.asarray([inject_prob]), jnp.asarray([False]))
    assert float(np.asarray(w)[0, :4].sum()) == 0.0
    probs = np.asarray(MS.distribution(w, jnp.asarray(MS.corner_distributions())))[0]
    np.testing.assert_allclose(probs[:2, 0], qber, atol=1e-6)
    lam = float(MS.depolarising(w)[0])
    rounds = bb84_rounds.all_rounds()
    ref = exact_distributions([qc for _, _, qc in rounds], bb84_rounds.channel_noise(lam, inject_prob))
    for b, name in enumerate(MS.BASIS_NAMES):
        wrong = np.mean([ref[i, 1 - bit] for i, (basis, bit, _) in enumerate(rounds) if basis == name])
        assert probs[b, 0] == pytest.approx(wrong, abs=1e-6)
