"""GHZ node checks in the measurement path: exact corners, the mixture against Aer with per-qubit
noise, sampled reports, lies, and their way into the weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit_aer.noise import NoiseModel, depolarizing_error

from qverify.backends import exact_density_matrix
from qverify.consensus.control import ABFTPolicy
from qverify.errors import ParameterError
from qverify.network import measure as MS
from qverify.network import model as M
from qverify.network import node_checks as NC
from qverify.network.adversary import Adversary
from qverify.network.sim import Fluctuation, SimConfig, build_params, simulate
from qverify.network.topology import grid, load_builtin
from qverify.protocols.ghz import measured_bases, shared_state
from qverify.verify.ghz import even_thetas, pauli_flip_expectation

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_corner_table_matches_the_ghz_test():
    """Pappa et al.'s test (PRL 108, 260502): a GHZ state passes every challenge, a state with one
    fully depolarised qubit has ⟨M_θ⟩ = 0 and passes half; |+⟩^n passes the all-X challenge and half
    of the 2^(n−1) − 1 others: P = 1/2 + 2^(−n)."""
    t = NC.corner_table()
    for n in range(3, NC.MAX_PARTIES + 1):
        assert t[0, n, 0] == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(t[0, n, 1:n], 0.5, atol=1e-12)
        assert t[1, n, 0] == pytest.approx(0.5 + 2.0**-n, abs=1e-12)
        np.testing.assert_allclose(t[1, n, 1:n], 0.5, atol=1e-12)


def aer_pass_probability(lams: list[float], source: str) -> float:
    """Oracle: Aer's density matrix with a depolarising channel of λ_k on sent qubit k + 1 only."""
    n = len(lams) + 1
    model = NoiseModel(basis_gates=["id", "h", "cx", "u", "reset"])
    for k, lam in enumerate(lams):
        if lam > 0:
            model.add_quantum_error(depolarizing_error(lam, 1), ["id"], [k + 1])
    rho = exact_density_matrix(shared_state(n, source), model)
    thetas = even_thetas(n)
    return float(
        np.mean(
            [
                0.5 + 0.5 * (-1) ** (int(t.sum()) // 2) * pauli_flip_expectation(rho, measured_bases(list(t), "honest"))
                for t in thetas
            ]
        )
    )


@SETTINGS
@given(
    lams=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5),
    cheat=st.floats(0.0, 1.0),
)
def test_mixture_of_corners_equals_aer_with_per_qubit_noise(lams, cheat):
    k = len(lams)
    check_links = jnp.asarray([list(range(k)) + [-1] * (NC.MAX_PARTIES - 1 - k)])
    with jax.enable_x64(True):
        p, parties = NC.pass_probability(
            jnp.asarray(lams, jnp.float64), check_links, jnp.asarray([cheat]), jnp.asarray(NC.corner_table())
        )
    want = (1 - cheat) * aer_pass_probability(lams, "honest") + cheat * aer_pass_probability(lams, "product_source")
    assert int(parties[0]) == k
    assert float(p[0]) == pytest.approx(want, abs=1e-9)
    # Closed form for the honest source (test-only cross-check): 1/2 + Π(1 − λ_k)/2.
    if cheat == 0:
        assert float(p[0]) == pytest.approx(0.5 + 0.5 * np.prod(1 - np.array(lams)), abs=1e-9)


@SETTINGS
@given(lam=st.floats(0.0, 0.9), k=st.integers(1, NC.MAX_PARTIES - 1))
def test_qber_equivalent_inverts_the_honest_pass_rate(lam, k):
    # λ ≤ 0.9: above it (1 − λ)^k drowns in 2P − 1's rounding (float64) for k = 7.
    p = 0.5 + 0.5 * (1 - lam) ** k
    assert float(NC.qber_equivalent(p, k)) == pytest.approx(lam / 2, abs=1e-7)


def secoqc_params(behaviours, rounds=3000, **kw):
    cfg = SimConfig(adversary=Adversary(fraction=0.2, behaviours=behaviours), node_rounds=rounds, epoch_slots=5, **kw)
    return build_params(load_builtin("secoqc"), cfg, seed=1)


def one_epoch(params, seed=0):
    dec = M.Decision(
        jnp.ones(params.n_links, bool), params.nominal_mu, params.is_mdi, jnp.zeros(params.n_demands, jnp.int32)
    )
    state = M.init(jax.random.PRNGKey(seed), params)
    state, out = M.run(jax.random.PRNGKey(seed + 1), state, dec, params, params.epoch_slots, aligned=True)
    return state, out


def test_sampled_claims_converge_to_the_exact_value():
    """Every node's claims approach the QBER-equivalent of its exact pass probability (from the
    epoch's per-link λ and the injector's cheat probability) as rounds grow; the injecting Byzantine
    node's source shows a larger error than every honest one."""
    worst = {}
    for rounds in (1_000, 100_000):
        params = secoqc_params(("inject",), rounds, fluctuation=Fluctuation.off())
        state, out = one_epoch(params)
        byz = np.asarray(params.byzantine)
        injected = byz[np.asarray(params.link_a)] | byz[np.asarray(params.link_b)]
        w = MS.corner_weights(out.qber[0], params.inject_prob * injected, params.is_mdi)  # calm: every slot alike
        lam = MS.depolarising(w)
        cheat = jnp.where(jnp.asarray(byz), params.inject_prob, 0.0)
        p, k = NC.pass_probability(lam, params.check_links, cheat, params.check_table)
        exact = np.asarray(NC.qber_equivalent(np.asarray(p), np.asarray(k)))
        claims = np.asarray(state.node_claims, dtype=float)
        has = np.isfinite(claims)
        worst[rounds] = np.abs(claims - exact[:, None])[has].max()
        b = int(np.flatnonzero(byz)[0])
        assert claims[b][has[b]].min() > claims[~byz][has[~byz]].max()
    assert worst[100_000] < worst[1_000] and worst[100_000] < 2e-3


def test_lying_partners_and_reports():
    """A slandering partner claims 0.5 about an honest node; with collusion a liar vouches (0) for a
    Byzantine one; FidelityReports carry the dishonest-party bound (named) with an interval and the claim."""
    params = secoqc_params(("slander",))
    state, _ = one_epoch(params)
    byz = np.asarray(params.byzantine)
    cl = np.asarray(params.check_links)
    claims = np.asarray(state.node_claims, dtype=float)
    a, b = np.asarray(params.link_a), np.asarray(params.link_b)
    slandered = 0
    for i in range(len(byz)):
        for j, k in enumerate(cl[i]):
            if k < 0:
                continue
            partner = b[k] if a[k] == i else a[k]
            if byz[partner] and not byz[i]:
                assert claims[i, j] == 0.5
                slandered += 1
            elif not byz[partner]:
                assert claims[i, j] < 0.05
    assert slandered
    nodes = [str(x) for x in range(len(byz))]
    reps = NC.node_reports(nodes, cl, a, b, np.asarray(state.node_counts), claims, 5.0)
    assert len(reps) == int(np.isfinite(claims).sum())
    for r in reps:
        assert r.kind == "node" and r.reporter != r.subject and "dishonest-party" in r.estimate.method
        assert r.bound == NC.REPORT_BOUND and "dishonest-party" in r.bound and "honest-measurement" in r.bound
        assert r.estimate.low <= r.estimate.value <= r.estimate.high
        if r.qber == 0.5:
            assert r.estimate.value == 0.0  # a claim of 0.5 is a claim of pass rate 1/2: bound 0
    vouch = secoqc_params(("inject", "lie"))
    st2, _ = one_epoch(vouch)
    assert np.isfinite(np.asarray(st2.node_claims)).any()


def test_node_checks_only_add_loss_and_separate_byzantine_sources():
    """On a 3×3 grid with injecting, lying Byzantine nodes, the control plane's node losses with node
    checks are never below those without (a check loss can only raise a node's loss: max of link and
    check losses), the checks raise some, and every Byzantine node ends at the worst loss.

    Link losses read the upper confidence bound of each link report, check losses the bound of the
    pass fraction each partner's claim implies (6000 GHZ rounds per node, 1500–3000 per partner):
    with the default 10⁴ test rounds per link the links' bounds (losses 0.18–0.20 on the honest
    nodes here) exceed every check, so the links are tested on 10⁵ rounds, where their bounds are
    tight; the checks then raise six honest nodes' losses by 0.013–0.049 (seed 2; their bound is the
    closed-form Hoeffding/Chernoff one, looser than the links' Clopper–Pearson)."""
    g = grid(3, 3)
    base = dict(adversary=Adversary(fraction=0.25, behaviours=("inject", "lie")), epoch_slots=5, verify_rounds=100_000)
    pol = ABFTPolicy(signatures="ideal")
    simulate(g, SimConfig(**base, node_rounds=6000), 60, seed=2, policy=pol)
    losses_on = pol.voting.losses
    pol_off = ABFTPolicy(signatures="ideal")
    res = simulate(g, SimConfig(**base, node_rounds=0), 60, seed=2, policy=pol_off)
    byz = res.byzantine
    assert np.all(losses_on >= pol_off.voting.losses - 1e-12)
    assert np.any(losses_on > pol_off.voting.losses + 1e-3)  # the checks bite somewhere
    assert np.all(losses_on[byz] == 1.0)


def test_bad_node_rounds():
    with pytest.raises(ParameterError, match="node_rounds"):
        SimConfig(node_rounds=-1)


def test_a_partner_that_verified_nothing_reports_nothing():
    """With fewer rounds than partners a partner's share is 0 rounds: it reports nothing (inf), not 0.5."""
    params = secoqc_params(("inject",), rounds=2)
    state, _ = one_epoch(params)
    counts = np.asarray(state.node_counts)
    claims = np.asarray(state.node_claims)
    assert np.all(np.isinf(claims[counts[..., 1] == 0]))
    assert np.all(np.isfinite(claims[counts[..., 1] > 0]))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 3000),
    frac=st.floats(0.0, 1.0),
    k=st.integers(2, NC.MAX_PARTIES - 1),
    conf=st.floats(0.5, 0.999),
)
def test_node_check_bound_is_conservative_and_tightens_with_rounds(n, frac, k, conf):
    """Issue #30, node checks: a partner's claim counts by the QBER-equivalent of a lower confidence
    bound of the pass fraction it implies, never below the claim; the same pass fraction over 4× the
    rounds bounds tighter, a higher confidence looser. The bound of f failures out of n, written out:
    the smaller of Hoeffding's ``q + √(L/2n)`` (W. Hoeffding, JASA 58, 13 (1963), Thm. 1) and the
    relative Chernoff bound solved for p, ``q + L/n + √(2qL/n + (L/n)²)`` (Mitzenmacher–Upfal,
    Thm. 4.5), ``q = f/n``, ``L = −ln(1 − c)``; ½ when f ≥ n/2. Each is at least the exact
    Clopper–Pearson bound (scipy), so the statistic is a valid bound at level ≥ c."""
    from scipy.stats import beta

    passes = round(frac * n)
    claim = float(NC.qber_equivalent(passes / n, k))
    fails = n - round(float(n * (0.5 + 0.5 * (1 - 2 * np.float32(claim)) ** k)))
    up = float(NC.claim_upper(claim, n, k, conf))
    up4 = float(NC.claim_upper(claim, 4 * n, k, conf))
    up_more = float(NC.claim_upper(claim, n, k, min(0.9999, conf + 0.05)))
    q, big_l = fails / n, -np.log(1 - conf)
    bound = min(1.0, q + np.sqrt(big_l / (2 * n)), q + big_l / n + np.sqrt(2 * q * big_l / n + (big_l / n) ** 2))
    expected = 0.5 if 2 * fails >= n else float(NC.qber_equivalent(1 - bound, k))
    assert up == pytest.approx(expected, abs=1e-12)
    if 2 * fails < n and fails < n:
        assert bound >= beta.ppf(conf, fails + 1, n - fails) - 1e-12
    # The claim's own count may differ from `passes` by the float32 round trip only where it is ½.
    assert up >= claim - 1e-6
    assert up4 <= up + 1e-12
    assert up_more >= up - 1e-12


def test_fewer_check_rounds_weigh_a_node_more_conservatively():
    """The same honest claims on every node, node 0's partners verifying 30 and 3000 rounds: node 0's
    check bound, hence its check loss, is larger on 30 rounds, on the host (``node_reports``'
    ``qber_upper`` → the voting layer) and in the model (``claim_upper`` on jax.numpy, float32), which
    agree to float32 rounding (the same function)."""
    from qverify.consensus.voting import FidelityWeightedVoting
    from qverify.consensus.weights import check_losses

    n, width = 5, 3
    nodes = [f"n{i}" for i in range(n)]
    # Node i's partners are nodes i+1, i+2, i+3 (mod n): links of a complete graph on 5 nodes.
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    link = {frozenset(p): e for e, p in enumerate(pairs)}
    cl = np.array([[link[frozenset((i, (i + 1 + w) % n))] for w in range(width)] for i in range(n)])
    losses = {}
    for few in (30, 3000):
        rounds = np.full((n, width), 3000)
        rounds[0] = few
        passes = np.rint(0.97 * rounds).astype(np.int64)
        claims = np.asarray(NC.qber_equivalent(passes / rounds, width))
        counts = np.stack([passes, rounds], axis=-1)
        voting = FidelityWeightedVoting(nodes, 1)
        reps = NC.node_reports(nodes, cl, a, b, counts, claims, 0.0, 0.95)
        for r in reps:
            voting.report(r)
        host = voting._check_losses()
        model = np.asarray(check_losses(NC.claim_upper(claims, rounds, width, 0.95, jnp), 1, xp=jnp))
        np.testing.assert_allclose(model, host, atol=1e-5)  # the same closed form, float32 against float64
        assert all(r.qber_upper >= r.qber for r in reps)
        losses[few] = host
    assert losses[30][0] > losses[3000][0] + 0.05
    np.testing.assert_allclose(losses[30][1:], losses[3000][1:], rtol=0, atol=0)
