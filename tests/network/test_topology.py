"""Topologies: built-ins, generators, GraphML / JSON round-trips, bad files."""

from __future__ import annotations

import networkx as nx
import pytest

from qverify.errors import ChoiceError, ParameterError, QverifyError
from qverify.network.topology import (
    BUILTIN,
    grid,
    load,
    load_builtin,
    random_geometric,
    resolve,
    save,
    waxman,
)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtins_are_connected_and_cited(name):
    g = load_builtin(name)
    assert nx.is_connected(g)
    assert g.graph["source"] and "(" in g.graph["source"]
    for _a, _b, d in g.edges(data=True):
        assert 0 < d["length_km"] < 200 and d["protocol"] in ("mdi", "bb84")


def test_beijing_shanghai_has_32_relays_and_2000_km():
    # Chen et al., Nature 589, 214 (2021): ≈ 2000 km backbone with 32 trusted relays.
    g = load_builtin("beijing_shanghai")
    relays = [n for n in g if str(n).startswith("R")]
    assert len(relays) == 32
    assert sum(d["length_km"] for *_e, d in g.edges(data=True)) == pytest.approx(2000, rel=0.01)


def test_unknown_topology_lists_known_ones():
    with pytest.raises(ChoiceError) as exc:
        resolve("arpanet")
    for name in BUILTIN:
        assert name in str(exc.value)


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_round_trip(tmp_path, suffix):
    g = waxman(40, seed=2)
    path = tmp_path / f"net{suffix}"
    save(g, path)
    h = load(path)
    assert set(map(str, h.nodes)) == set(map(str, g.nodes))
    assert {frozenset(map(str, e)) for e in h.edges} == {frozenset(map(str, e)) for e in g.edges}
    for u, v, d in g.edges(data=True):
        assert h.edges[str(u), str(v)]["length_km"] == pytest.approx(d["length_km"])


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph><node id='a'/>")
    with pytest.raises(QverifyError, match="malformed GraphML"):
        load(bad)
    broken = tmp_path / "neg.json"
    g = grid(2, 2)
    g.edges["n0_0", "n0_1"]["length_km"] = -3.0
    from qverify.network.topology import to_json

    broken.write_text(to_json(g))
    with pytest.raises(ParameterError, match="length_km"):
        load(broken)
    with pytest.raises(QverifyError, match="does not exist"):
        load(tmp_path / "missing.json")


def test_generators():
    assert grid(3, 4).number_of_nodes() == 12
    for g in (random_geometric(200, seed=1), waxman(200, seed=1)):
        assert nx.is_connected(g) and g.number_of_nodes() == 200
