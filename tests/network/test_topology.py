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


def test_graphml_text_booleans_and_untrusted_relays(tmp_path):
    # A hand-written GraphML with trusted declared as a string attribute: "false" must load as False,
    # and routing must never pass a key through an untrusted node (it may only be an endpoint).
    import numpy as np

    from qverify.network.keys import candidate_paths
    from qverify.network.links import compile_links
    from qverify.network.topology import load

    nodes = {"A": (0, 0, "true"), "B": (10, 0, "false"), "C": (20, 0, "true"), "D": (10, 8, "True")}
    xml = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
           '<key id="x" for="node" attr.name="x_km" attr.type="double"/>',
           '<key id="y" for="node" attr.name="y_km" attr.type="double"/>',
           '<key id="t" for="node" attr.name="trusted" attr.type="string"/>',
           '<key id="l" for="edge" attr.name="length_km" attr.type="double"/>',
           '<graph edgedefault="undirected">']  # fmt: skip
    for n, (x, y, t) in nodes.items():
        xml.append(f'<node id="{n}"><data key="x">{x}</data><data key="y">{y}</data><data key="t">{t}</data></node>')
    for u, v, km in (("A", "B", 10), ("B", "C", 10), ("A", "D", 13), ("D", "C", 13)):
        xml.append(f'<edge source="{u}" target="{v}"><data key="l">{km}</data></edge>')
    xml += ["</graph>", "</graphml>"]
    path = tmp_path / "t.graphml"
    path.write_text("\n".join(xml))
    g = load(path)
    assert [g.nodes[n]["trusted"] for n in "ABCD"] == [True, False, True, True]
    links = compile_links(g)
    idx = links.index()
    paths = candidate_paths(g, links, np.array([[idx["A"], idx["C"]], [idx["A"], idx["B"]]]), k=3)
    inner = {int(x) for x in paths.inner[0].ravel() if x >= 0}
    assert inner == {idx["D"]}  # the shorter route through the untrusted B is not offered
    assert paths.valid[1].any()  # B is still reachable as an endpoint
    bad = path.read_text().replace(">false<", ">maybe<")
    path.write_text(bad)
    with pytest.raises(ParameterError, match="trusted"):
        load(path)
