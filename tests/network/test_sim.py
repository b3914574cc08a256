"""Network simulator: physics agreement, reproducibility, adversaries, relays, bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from qverify.consensus.control import ABFTPolicy
from qverify.consensus.weights import node_incidence
from qverify.errors import ParameterError
from qverify.network import node_checks
from qverify.network.adversary import Adversary, injected_error
from qverify.network.links import compile_links, link_state, nominal_mu
from qverify.network.sim import Fluctuation, SimConfig, simulate
from qverify.network.topology import grid, load_builtin, random_geometric
from qverify.physics import LCQ_2012, link_rate
from qverify.physics import mdi as mdi_formulas

QUIET = Fluctuation.off()


@pytest.mark.parametrize(("topology", "protocol"), [("grid:2x3", "mdi"), ("secoqc", "bb84")])
def test_link_rates_equal_physics_closed_form(topology, protocol):
    from qverify.network.topology import resolve

    links = compile_links(resolve(topology))
    assert set(np.where(links.is_mdi, "mdi", "bb84")) == {protocol}
    mu = nominal_mu(links, LCQ_2012)
    st = link_state(links, LCQ_2012, mu, links.is_mdi)
    ref = link_rate(links.length_km, LCQ_2012, protocol)  # μ optimised per link, as nominal_mu does
    np.testing.assert_allclose(st.key_rate_bps, ref.key_rate_bps, rtol=1e-12)
    np.testing.assert_allclose(st.qber, ref.qber, rtol=1e-12)


def test_injected_error_calibrated_from_circuit():
    # Replacing a photon by a maximally mixed state with probability p flips the bit with p/2.
    assert injected_error(0.3) == pytest.approx(0.15, abs=1e-9)


def test_attacked_links_show_the_circuit_qber():
    from qverify.network.topology import resolve

    g = resolve("grid:2x3")  # MDI links: the closed form below is Ma–Razavi's
    cfg = SimConfig(fluctuation=QUIET, adversary=Adversary(fraction=0.2, behaviours=("inject",), inject_prob=0.4))
    r = simulate(g, cfg, 5, seed=3)
    links = compile_links(g)
    bad = r.byzantine[links.a] | r.byzantine[links.b]
    assert bad.any()
    x = injected_error(0.4)
    expected = link_state(links, LCQ_2012, nominal_mu(links, LCQ_2012), links.is_mdi, extra_error=x * bad)
    # The network model computes in float32: agreement to ~1e-7 relative.
    np.testing.assert_allclose(r.qber_mean, expected.qber, rtol=1e-5)
    # and the MDI closed form with e_mis composed with the injected flip (e + x - 2ex)
    k = int(np.flatnonzero(bad & links.is_mdi)[0])
    e = LCQ_2012.channel.e_mis
    eta = LCQ_2012.detector.eta_det * 10 ** (-0.2 * links.length_km[k] / 2 / 10)
    mu = nominal_mu(links, LCQ_2012)[k]
    g_z = mdi_formulas.gains_z(mu, mu, eta, eta, LCQ_2012.detector.p_dark, e + x - 2 * e * x)
    assert r.qber_mean[k] == pytest.approx(g_z.error_gain / g_z.gain, rel=1e-5)
    assert np.all(r.qber_mean[~bad] < r.qber_mean[bad].min())


def test_same_seed_same_result_and_seed_matters():
    g = random_geometric(25, seed=4)
    cfg = SimConfig(n_demands=6, adversary=Adversary(fraction=0.2))
    a, b = simulate(g, cfg, 60, seed=5), simulate(g, cfg, 60, seed=5)
    np.testing.assert_array_equal(a.delivered_bits, b.delivered_bits)
    np.testing.assert_array_equal(a.qber_series, b.qber_series)
    c = simulate(g, cfg, 60, seed=6)
    assert not np.array_equal(a.qber_series, c.qber_series)


def test_honest_quiet_network_serves_everything():
    r = simulate(load_builtin("secoqc"), SimConfig(fluctuation=QUIET), 50, seed=0)
    assert r.summary()["availability"] == 1.0
    assert r.exposed_bits.sum() == 0


def test_fades_reduce_key_and_raise_qber_variance():
    g = load_builtin("secoqc")
    calm = simulate(g, SimConfig(fluctuation=QUIET), 400, seed=1)
    rough = simulate(g, SimConfig(fluctuation=Fluctuation(fade_rate=0.05, fade_db=15.0)), 400, seed=1)
    assert rough.qber_var.mean() > calm.qber_var.mean()
    assert rough.pool_mean_bits.mean() < calm.pool_mean_bits.mean()


def _line_with_bypass() -> nx.Graph:
    """A–B–C plus a disjoint A–D–C path, and an isolated node E."""
    g = grid(1, 2)
    g.clear()
    for n, x in (("A", 0), ("B", 10), ("C", 20), ("D", 10), ("E", 50)):
        g.add_node(n, x_km=float(x), y_km=0.0 if n != "D" else 5.0, trusted=True, label=n)
    for u, v, km in (("A", "B", 10.0), ("B", "C", 10.0), ("A", "D", 11.0), ("D", "C", 11.0)):
        g.add_edge(u, v, length_km=km, protocol="mdi", relay_fraction=0.5)
    return g


def test_exposure_single_vs_xor_multipath(monkeypatch):
    import qverify.network.sim as sim_mod

    g = _line_with_bypass()
    # Force the demand A→C and make B the only Byzantine node (a passive relay that learns keys).
    monkeypatch.setattr(sim_mod, "choose_demands", lambda *a, **k: np.array([[0, 2]]))
    monkeypatch.setattr(sim_mod, "choose_byzantine", lambda n, f, rng: np.array([False, True, False, False, False]))
    adv = Adversary(fraction=0.2, behaviours=("lie",))
    single = simulate(g, SimConfig(n_demands=1, fluctuation=QUIET, adversary=adv, paths=1), 20, seed=0)
    assert single.delivered_bits.sum() > 0
    assert single.exposed_bits.sum() == pytest.approx(single.delivered_bits.sum())
    xor = simulate(g, SimConfig(n_demands=1, fluctuation=QUIET, adversary=adv, relay="xor", paths=2), 20, seed=0)
    assert xor.served.all() and xor.exposed_bits.sum() == 0
    assert xor.learned_bits[1] > 0  # B learned a share, which alone is useless


def test_disconnected_demand_is_unservable_not_a_crash(monkeypatch):
    import qverify.network.sim as sim_mod

    monkeypatch.setattr(sim_mod, "choose_demands", lambda *a, **k: np.array([[0, 4]]))
    r = simulate(_line_with_bypass(), SimConfig(n_demands=1, fluctuation=QUIET), 5, seed=0)
    assert r.unservable.tolist() == [True]
    assert r.summary()["unservable_demands"] == 1
    # The headline counts every requested demand: the only one cannot be served.
    assert r.summary()["availability"] == 0.0 and np.all(r.availability == 0.0)


def test_abft_control_plane_is_safe_and_helps():
    g = random_geometric(30, radius_km=30.0, seed=3)
    cfg = SimConfig(n_demands=10, adversary=Adversary(fraction=0.1, behaviours=("inject", "drop", "lie")))
    base = simulate(g, cfg, 200, seed=1).summary()
    abft = simulate(g, cfg, 200, seed=1, policy=ABFTPolicy()).summary()
    assert abft["control_violations"] == 0
    assert abft["control_committed"] == abft["control_instances"] > 0
    assert abft["availability"] > base["availability"]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Adversary(fraction=1.0), "byzantine fraction"),
        (lambda: Adversary(fraction=-0.1), "byzantine fraction"),
        (lambda: SimConfig(demand_bits=0), "demand_bits"),
        (lambda: Fluctuation(fade_rate=2.0), "fade_rate"),
    ],
)
def test_bad_input(make, field):
    with pytest.raises(ParameterError, match=field):
        make()
    with pytest.raises(ParameterError, match="slots"):
        simulate(load_builtin("secoqc"), SimConfig(), 0)


def test_byzantine_count_rounds_half_up():
    from qverify.network.adversary import byzantine_count

    # 10 % of the five SECOQC nodes is one node, not zero (round half to even would give 0).
    assert [byzantine_count(5, f) for f in (0.0, 0.1, 0.2, 0.3)] == [0, 1, 1, 2]
    assert byzantine_count(36, 0.3) == 11 and byzantine_count(3, 0.99) == 2


def test_fidelity_enters_the_weights_only_through_measured_reports(monkeypatch):
    # The ABFT control plane folds each endpoint's FidelityReport (built from the sampled test-round
    # counts) through FidelityWeightedVoting.report; the bare report_link path is never used.
    from qverify.consensus.voting import FidelityWeightedVoting
    from qverify.verify.report import FidelityReport

    seen: list[FidelityReport] = []
    real = FidelityWeightedVoting.report
    monkeypatch.setattr(FidelityWeightedVoting, "report", lambda self, r: (seen.append(r), real(self, r))[1])
    monkeypatch.setattr(FidelityWeightedVoting, "report_link", lambda *a, **k: pytest.fail("report_link used"))
    g = load_builtin("secoqc")
    cfg = SimConfig(adversary=Adversary(fraction=0.2, behaviours=("inject", "lie")), epoch_slots=5, verify_rounds=3000)
    r = simulate(g, cfg, 20, seed=2, policy=ABFTPolicy())
    links = compile_links(g)
    link_reps = [x for x in seen if x.kind == "link"]
    node_reps = [x for x in seen if x.kind == "node"]
    assert len(link_reps) == 3 * 2 * links.n_links  # epochs 2..4 start with the previous epoch's reports
    checks = int((node_checks.partners(node_incidence(links.a, links.b, links.n_nodes)) >= 0).sum())
    assert len(node_reps) == 3 * checks  # every check partner of every checked node, every epoch
    assert all(isinstance(x, FidelityReport) and x.estimate.trials > 0 for x in seen)
    # a Byzantine endpoint's report claims QBER 0 and perfect fidelity on its links
    byz = {links.nodes[i] for i in np.flatnonzero(r.byzantine)}
    liars = [x for x in link_reps if x.reporter in byz]
    assert liars and all(x.qber == 0.0 and x.estimate.value == 1.0 for x in liars)
    honest = [x for x in link_reps if x.reporter not in byz and set(x.link) & byz]
    assert honest and all(x.qber > 0.1 for x in honest)  # they measured the injected error
    # honest partners see the injector's product states in its node checks
    on_byz = [x for x in node_reps if x.subject in byz and x.reporter not in byz]
    on_honest = [x for x in node_reps if x.subject not in byz and x.reporter not in byz]
    assert on_byz and on_honest and min(x.qber for x in on_byz) > max(x.qber for x in on_honest)


def test_weight_vectors_are_adopted_only_through_committed_instances(monkeypatch):
    # Issue #14 item 7: weights used to be adopted from the scores directly. Now an instance's batch
    # carries the candidate vector; the replicas vote under a vector only once it was committed, and
    # the first instance under a new vector also needs quorums under the one it replaced.
    import qverify.consensus.control as control

    g = random_geometric(12, radius_km=30.0, seed=3)
    cfg = SimConfig(n_demands=4, adversary=Adversary(fraction=0.25, behaviours=("lie",)), epoch_slots=5)
    seen: list[tuple] = []
    real = control.simulate

    def spy(schedule, requests, *a, **k):
        seen.append((schedule, requests[0][1]))
        return real(schedule, requests, *a, **k)

    monkeypatch.setattr(control, "simulate", spy)
    pol = ABFTPolicy()
    simulate(g, cfg, 40, seed=1, policy=pol)
    assert pol.extras["control_committed"] == pol.extras["control_instances"] == len(seen) > 2
    assert pol.extras["control_weight_changes"] >= 1
    hist = pol.weights_history
    for k, (schedule, request) in enumerate(seen):
        order = [(i + k + 1) % g.number_of_nodes() for i in range(g.number_of_nodes())]  # leader rotation
        used = tuple(schedule.vectors[0].weights[order.index(i)] for i in range(len(order)))
        assert used == hist[k]  # voted under the vector adopted before this instance
        assert "weights=" in request
        if k >= 1 and hist[k] != hist[k - 1]:
            prev = tuple(schedule.previous.weights[order.index(i)] for i in range(len(order)))
            assert prev == hist[k - 1]  # joint quorum with the vector it replaced
        elif k >= 1:
            assert schedule.previous is None

    # An instance that never commits leaves the adopted weights where they were.
    monkeypatch.setattr(control, "simulate", lambda s, r, *a, **k: real(s, [], *a, **k))
    stuck = ABFTPolicy()
    simulate(g, cfg, 40, seed=1, policy=stuck)
    assert stuck.extras["control_committed"] == 0
    assert set(stuck.weights_history) == {stuck.weights_history[0]}
    assert stuck.voting.weights().weights != stuck.weights_history[0]  # the scores moved; the vote did not
