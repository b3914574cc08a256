"""The study across networks and the claims map: counts, path diversity, pairing, the control plane beyond f."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError, QverifyError
from qverify.experiments.grid import GridConfig, Task, run_task
from qverify.experiments.networks import (
    MapConfig,
    NetworkStudyConfig,
    byzantine_counts,
    map_tasks,
    path_diversity,
    study_tasks,
    summarise_map,
    summarise_study,
)
from qverify.network.topology import grid, load_builtin, resolve


@given(st.integers(min_value=4, max_value=400))
def test_byzantine_counts_are_distinct_and_reach_f_plus_one(n):
    counts = byzantine_counts(n)
    f = (n - 1) // 3
    assert list(counts) == sorted(set(counts)) and counts[0] == 0
    assert f in counts and (f + 1 in counts or f + 1 > n - 2)
    assert max(counts) <= n - 2


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=5, max_value=14), st.integers(min_value=0, max_value=10_000))
def test_path_diversity_is_mengers_number(n, seed):
    # Independent oracle: the maximum flow with unit node capacities (Menger's theorem), computed
    # on the split-node digraph by hand; adjacent endpoints count their direct link as one path.
    g = nx.gnp_random_graph(n, 0.4, seed=seed)
    rng = np.random.default_rng(seed)
    a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
    h = nx.DiGraph()
    for v in g.nodes:
        h.add_edge((v, "in"), (v, "out"), capacity=1 if v not in (a, b) else n)
    for u, v in g.edges:
        h.add_edge((u, "out"), (v, "in"), capacity=1)
        h.add_edge((v, "out"), (u, "in"), capacity=1)
    flow = nx.maximum_flow_value(h, (a, "out"), (b, "in")) if nx.has_path(g, a, b) else 0
    assert path_diversity(g, [(a, b)]) == flow
    assert path_diversity(g, [(a, b)]) <= min(g.degree(a), g.degree(b))


def test_path_diversity_of_chain_ladder_grid():
    assert path_diversity(grid(1, 8), [("n0_0", "n0_7")]) == 1
    assert path_diversity(grid(2, 5), [("n0_0", "n1_4")]) == 2
    assert path_diversity(grid(4, 4), [("n1_1", "n2_2")]) == 4


def test_study_is_paired_and_every_cell_distinct():
    cfg = NetworkStudyConfig.quick()
    tasks = study_tasks(cfg)
    keys = {(t.topology, t.fraction, t.behaviours, t.seed) for t in tasks}
    for k in keys:
        assert {t.policy for t in tasks if (t.topology, t.fraction, t.behaviours, t.seed) == k} == {"baseline", "abft"}
    for topo in cfg.networks:
        n = resolve(topo).number_of_nodes()
        counts = sorted({round(t.fraction * n) for t in tasks if t.topology == topo})
        assert counts == list(byzantine_counts(n))
    assert len({t.key for t in tasks}) == len(tasks)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: NetworkStudyConfig(seeds=2), "study seeds"),
        (lambda: NetworkStudyConfig(networks=()), "networks"),
        (lambda: NetworkStudyConfig(behaviours=("teleport",)), "behaviours"),
        (lambda: MapConfig(seeds=1), "map seeds"),
        (lambda: MapConfig(e_mis=(0.7,)), "e_mis"),
        (lambda: MapConfig(counts=(1, 2)), "counts"),
        (lambda: GridConfig(fractions=(0.0, 0.1, 0.2)).counts(), "fractions"),
    ],
)
def test_bad_study_settings_name_the_field(build, field):
    with pytest.raises(QverifyError, match=field):
        build()


def test_map_refuses_more_byzantine_nodes_than_a_topology_can_hold():
    with pytest.raises(ParameterError, match="counts"):
        map_tasks(MapConfig(topologies=("grid:1x3",), counts=(0, 2)))


def test_grid_fractions_are_node_counts_on_secoqc():
    cfg = GridConfig()
    assert cfg.counts() == [0, 1, 2]
    assert cfg.claim_fraction() == 0.2 and cfg.label(0.2) == "1 of 6 nodes (17%)"


def test_builtin_topologies_as_deployed():
    g = load_builtin("secoqc")  # Peev et al., NJP 11, 075001 (2009): 6 nodes, 8 links, ≈ 200 km
    assert g.number_of_nodes() == 6 and g.number_of_edges() == 8
    assert 190 <= sum(d["length_km"] for *_e, d in g.edges(data=True)) <= 210
    for name in ("secoqc", "tokyo", "cambridge"):  # none of these networks ran MDI-QKD
        assert all(d["protocol"] == "bb84" and d["system"] for *_e, d in load_builtin(name).edges(data=True))
    assert load_builtin("secoqc").edges["BREIT", "STP"]["system"].startswith("coherent one-way")
    t = load_builtin("tokyo")  # Sasaki et al. (2011): Hongo hangs off Otemachi, ≈ 13 km
    assert t.has_edge("Otemachi", "Hongo") and t.edges["Otemachi", "Hongo"]["length_km"] == 13.0


def test_listen_lie_exposes_key_that_drop_sets_cannot():
    # A chain: every key between the ends passes the middle relays. A Byzantine relay that forwards
    # (listen-lie) learns the key it relays; one that drops makes that key fail instead.
    rows = {}
    for beh in ("listen-lie", "inject-drop-lie"):
        rows[beh] = run_task(Task("grid:1x5", 2 / 5, beh, False, "baseline", 0, 30, 1, 1e3, demand_seed=None))
    assert rows["listen-lie"]["exposed_fraction"] > 0.5
    assert rows["inject-drop-lie"]["exposed_fraction"] == 0


def test_misalignment_override_reaches_the_links():
    # e_mis is the floor of an honest link's QBER (Lo–Curty–Qi); the measured QBER of links in use
    # follows the override.
    low = run_task(Task("grid:1x3", 0.0, "inject-drop-lie", False, "baseline", 0, 40, 1, 1e3, e_mis=0.005))
    high = run_task(Task("grid:1x3", 0.0, "inject-drop-lie", False, "baseline", 0, 40, 1, 1e3, e_mis=0.03))
    assert 0.004 < low["measured_qber_in_use"] < 0.008
    assert 0.027 < high["measured_qber_in_use"] < 0.036


def _control(topology: str, count: int, seed: int) -> dict:
    n = resolve(topology).number_of_nodes()
    return run_task(Task(topology, count / n, "inject-drop-lie", False, "abft", seed, 100, 2, 1e3, demand_seed=None))


@pytest.mark.parametrize("seed", [0, 1])
def test_control_plane_agrees_up_to_f(seed):
    # grid 4×4: n = 16 = 3·5 + 1; up to f = 5 equivocating, amnesiac replicas, some of them leaders.
    row = _control("grid:4x4", 5, seed)
    assert row["control_faulty"] == 5 and row["control_f"] == 5
    assert row["control_violations"] == 0 and row["control_committed"] == row["control_instances"]


def test_control_plane_breaks_at_f_plus_one_where_quorums_barely_overlap():
    # n = 3f + 1: two quorums of 2f + 1 overlap in f + 1 replicas, all of which may now be faulty;
    # an equivocating leader gets both of its values committed. The checker must see it.
    row = _control("grid:4x4", 6, 0)
    assert row["control_faulty"] == 6
    assert row["control_violations"] > 0


def test_summaries_pair_the_policies_on_a_tiny_study():
    cfg = NetworkStudyConfig(networks=("grid:2x3",), behaviours=("inject-drop-lie",), seeds=3, slots=20, demands=2)
    tasks = study_tasks(cfg)
    rows = [run_task(t) | {"key": t.key} for t in tasks]
    s = summarise_study(cfg, rows)
    info = s["networks"]["grid:2x3"]
    assert info["nodes"] == 6 and info["f"] == 1 and info["counts"] == [0, 1, 2]
    assert [c["count"] for c in s["cells"]] == [0, 1, 2]
    for c in s["cells"]:
        gap = c["abft_minus_baseline"]["availability"]
        assert gap["n"] == 3
        assert gap["mean"] == pytest.approx(c["abft"]["availability"]["mean"] - c["baseline"]["availability"]["mean"])
        assert c["abft"]["control_faulty"] == c["count"]
    m_cfg = MapConfig(topologies=("grid:1x4",), counts=(0, 1), e_mis=(0.005,), seeds=3, slots=20, demands=1)
    m_rows = [run_task(t) | {"key": t.key} for t in map_tasks(m_cfg)]
    cells = summarise_map(m_cfg, m_rows)["cells"]
    assert [c["count"] for c in cells] == [0, 1]
    assert cells[0]["key_kept"][0] == pytest.approx(1.0)
    assert all(set(c["verdicts"].values()) <= {"yes", "no", "inconclusive"} for c in cells)
