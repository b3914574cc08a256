"""The control plane's weight rule is one function: the host's voting and the network model (where the
agent trains) compute the same scores and weights from the same reports."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qverify.consensus.voting import FidelityWeightedVoting
from qverify.consensus.weights import node_incidence, node_losses, project_wheat, trimmed_losses
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.node_checks import node_reports
from qverify.network.sim import Fluctuation, SimConfig, build_params
from qverify.network.topology import load_builtin, random_geometric

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Reports on a coarse grid make ties common (the tie-breaking rule is then exercised).
REPORT = st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.08, 0.11, 0.2, 0.5])


def losses_oracle(errors: dict[tuple[int, int], float], n: int, f: int) -> np.ndarray:
    """The definition, written out: per node, sort its link errors, drop f at each end when it has more
    than 2f, take the upper median, divide by 0.11 and cap at 1; 1 without links."""
    out = np.ones(n)
    for k in range(n):
        errs = sorted(e for (i, j), e in errors.items() if k in (i, j))
        if errs:
            kept = errs[f : len(errs) - f] if len(errs) > 2 * f else errs
            out[k] = min(1.0, kept[len(kept) // 2] / 0.11)
    return out


def wheat_oracle(scores: list[float], f: int) -> list[int]:
    """WHEAT (Sitjà et al., SRDS 2015): the 2f best (ties: lower index) get f + Δ, the rest f."""
    n = len(scores)
    if f == 0:
        return [1] * n
    heavy = set(sorted(range(n), key=lambda i: (-scores[i], i))[: 2 * f])
    return [n - 2 * f - 1 if i in heavy else f for i in range(n)]


@st.composite
def graphs(draw: st.DrawFn, min_nodes: int = 1, min_edges: int = 0) -> nx.Graph:
    n = draw(st.integers(min_nodes, 9))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if not pairs:
        edges = []
    else:
        edges = draw(
            st.lists(st.sampled_from(pairs), unique=True, min_size=min(min_edges, len(pairs)), max_size=len(pairs))
        )
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return g


@SETTINGS
@given(g=graphs(), data=st.data())
def test_node_losses_match_the_definition(g, data):
    n = g.number_of_nodes()
    f = data.draw(st.integers(0, max(0, (n - 1) // 3)))
    errors = {tuple(sorted(e)): data.draw(REPORT) for e in g.edges}
    np.testing.assert_array_equal(node_losses(errors, n, f), losses_oracle(errors, n, f))


@SETTINGS
@given(scores=st.lists(st.sampled_from([0.0, -0.1, -0.5, -1.0, -5.0]), min_size=1, max_size=12), data=st.data())
def test_wheat_projection_matches_the_definition(scores, data):
    f = data.draw(st.integers(0, (len(scores) - 1) // 3))
    assert project_wheat(np.array(scores), f) == wheat_oracle(scores, f)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs(min_nodes=5, min_edges=4), data=st.data())
def test_model_weight_rule_equals_the_voting_layer(g, data):
    """Epoch after epoch, the model's rule (jax, float64 here) and FidelityWeightedVoting agree exactly.

    Five nodes or more, so that f ≥ 1 and WHEAT has spare weight (n > 3f + 1 for most draws): the
    order of the nodes, hysteresis included, decides the vector."""
    n = g.number_of_nodes()
    f = (n - 1) // 3
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    a = np.array([i for i, _ in edges])
    b = np.array([j for _, j in edges])
    epochs = data.draw(st.integers(1, 6))
    reports = np.array(data.draw(st.lists(REPORT, min_size=epochs * len(edges) * 2, max_size=epochs * len(edges) * 2)))
    reports = reports.reshape(epochs, len(edges), 2)
    # Node-check reports: partner w of node i (any other node here) reports a QBER-equivalent, or nothing.
    width = 3
    claims = np.array(data.draw(st.lists(st.one_of(REPORT, st.just(np.inf)), min_size=epochs * n * width,
                                         max_size=epochs * n * width))).reshape(epochs, n, width)  # fmt: skip
    names = [f"n{i}" for i in range(n)]
    voting = FidelityWeightedVoting(names, f)
    with jax.enable_x64(True):
        params = M.NetParams(  # only the fields the weight rule reads
            *(jnp.zeros(1) for _ in range(13)),
            node_links=jnp.asarray(node_incidence(a, b, n)),
            weight_f=f,
        )
        scores = jnp.zeros(n, jnp.float64)
        weights = jnp.ones(n, jnp.float64)
        for k in range(epochs):
            for (i, j), r in zip(edges, reports[k], strict=True):
                voting.report_link(names[i], names[j], float(r[0]), float(r[1]))
            for i in range(n):
                for w in range(width):
                    if np.isfinite(claims[k, i, w]):
                        partner = names[(i + 1 + w) % n]
                        if partner != names[i]:
                            voting.report(
                                SimpleNamespace(kind="node", subject=names[i], reporter=partner, qber=claims[k, i, w])
                            )
                        else:
                            claims[k, i, w] = np.inf
            voting.end_epoch()
            scores, weights = M.weight_rule(scores, weights, jnp.asarray(reports[k]), jnp.asarray(claims[k]), params)
            np.testing.assert_allclose(np.asarray(scores), voting.scores, rtol=0, atol=1e-12)
            assert tuple(int(w) for w in np.asarray(weights)) == voting.weights().weights


def test_weights_in_the_model_are_the_control_planes_candidates():
    """On SECOQC with liars and slanderers, the weights the model computes at each epoch end (float32,
    what the agent observes) equal the vectors the host voting layer proposes from the same reports
    (link and node-check reports, the latter as FidelityReports through ``node_reports``),
    and they do move away from equal weights (so this test can fail)."""
    g = load_builtin("secoqc")
    cfg = SimConfig(
        adversary=Adversary(fraction=0.25, behaviours=("inject", "lie", "slander")), epoch_slots=4, verify_rounds=2000,
        fluctuation=Fluctuation(),
    )  # fmt: skip
    params = build_params(g, cfg, seed=3)
    nodes = [str(x) for x in sorted(g.nodes)]
    n = len(nodes)
    voting = FidelityWeightedVoting(nodes, (n - 1) // 3)
    state = M.init(jax.random.PRNGKey(3), params)
    dec = M.Decision(
        jnp.ones(params.n_links, bool), params.nominal_mu, params.is_mdi, jnp.zeros(params.n_demands, jnp.int32)
    )
    run = jax.jit(lambda k, s: M.run(k, s, dec, params, cfg.epoch_slots, aligned=True))
    moved = False
    for epoch in range(12):
        state, _ = run(jax.random.PRNGKey(100 + epoch), state)
        rep = np.asarray(state.reported, dtype=float)
        for k in range(params.n_links):
            i, j = int(params.link_a[k]), int(params.link_b[k])
            voting.report_link(nodes[i], nodes[j], float(np.clip(rep[k, 0], 0, 0.5)), float(np.clip(rep[k, 1], 0, 0.5)))
        for r in node_reports(nodes, np.asarray(params.check_links), np.asarray(params.link_a), np.asarray(params.link_b),
                              np.asarray(state.node_counts), np.asarray(state.node_claims), 0.0):  # fmt: skip
            voting.report(r)
        voting.end_epoch()
        np.testing.assert_allclose(np.asarray(state.scores), voting.scores, atol=1e-4)
        assert tuple(int(w) for w in np.asarray(state.weights)) == voting.weights().weights
        moved |= len(set(voting.weights().weights)) > 1
    assert moved


def test_random_graph_weights_track_reports_under_vmap():
    """Under vmap over seeds each instance runs its own rule (weights differ between seeds with
    different Byzantine placements) and every vector is a WHEAT vector for the instance's f. Twelve
    nodes: with n = 3f + 1 (ten nodes) WHEAT has no spare weight and every vector is equal."""
    g = random_geometric(12, seed=1)
    cfg = SimConfig(adversary=Adversary(fraction=0.3, behaviours=("inject", "lie")), epoch_slots=2, verify_rounds=600)
    params = build_params(g, cfg, seed=0, random_byzantine=True)
    dec = M.Decision(
        jnp.ones(params.n_links, bool), params.nominal_mu, params.is_mdi, jnp.zeros(params.n_demands, jnp.int32)
    )

    def episode(key):
        state = M.init(key, params)
        state, _ = M.run(jax.random.fold_in(key, 1), state, dec, params, 12, aligned=True)
        return state.weights

    w = np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(0), 8)))
    f = params.weight_f
    n = w.shape[1]
    for row in w:
        assert sorted(row.tolist()) == sorted([float(n - 2 * f - 1)] * (2 * f) + [float(f)] * (n - 2 * f))
    assert len({tuple(r) for r in w.tolist()}) > 1
    assert all(len(set(r)) == 2 for r in w.tolist())


@SETTINGS
@given(data=st.data(), f=st.integers(1, 3))
def test_up_to_f_liars_cannot_move_a_trimmed_loss_outside_the_honest_range(data, f):
    """Slanderers (0.5) raise and vouchers (0) lower a node's reports; with more than 2f reports, up to
    f of them cannot push the trimmed upper median outside [min, max] of the honest reports."""
    honest = data.draw(st.lists(st.floats(0.0, 0.5), min_size=f + 1, max_size=8))
    liars = data.draw(st.integers(0, f))
    if len(honest) + liars <= 2 * f:
        return
    lie = data.draw(st.sampled_from([0.0, 0.5]))
    row = np.array([honest + [lie] * liars])
    loss = float(trimmed_losses(row, f)[0])
    assert min(1.0, min(honest) / 0.11) - 1e-12 <= loss <= min(1.0, max(honest) / 0.11) + 1e-12
