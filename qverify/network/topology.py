"""Built-in QKD network topologies, generators, and GraphML / JSON round-trips.

A topology is a :class:`networkx.Graph` with documented attributes:

* node: ``x_km``, ``y_km`` (planar position, km), ``trusted`` (bool: may relay keys), ``label``;
* edge: ``length_km`` (fibre length), ``protocol`` (``"mdi"`` or ``"bb84"``: what qverify models),
  ``relay_fraction`` (MDI: fraction of the fibre between the first endpoint and the untrusted
  relay), ``system`` (what ran on the link as deployed, free text; empty when not known);
* graph: ``name``, ``source`` (citation), ``note``.

The built-in networks follow their public descriptions. Fibre lengths are rounded values from the
cited papers; node positions are schematic (chosen so that straight-line distances do not exceed the
fibre lengths) and only serve plotting. Each function's docstring states what is approximate.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from qverify.errors import ChoiceError, ParameterError, QverifyError

NODE_ATTRS = ("x_km", "y_km", "trusted", "label")
EDGE_ATTRS = ("length_km", "protocol", "relay_fraction", "system")


Link = tuple[str, str, float, str, str]
"""(node a, node b, fibre length in km, modelled protocol, system as deployed)."""


def _build(name: str, source: str, note: str, nodes: dict[str, tuple[float, float]], links: list[Link]) -> nx.Graph:
    g = nx.Graph(name=name, source=source, note=note)
    for label, (x, y) in nodes.items():
        g.add_node(label, x_km=float(x), y_km=float(y), trusted=True, label=label)
    for a, b, length, protocol, system in links:
        g.add_edge(a, b, length_km=float(length), protocol=protocol, relay_fraction=0.5, system=system)
    validate(g)
    return g


def secoqc() -> nx.Graph:
    """SECOQC Vienna network as deployed (October 2008): six trusted nodes, eight links, ≈ 200 km.

    Peev et al., "The SECOQC quantum key distribution network in Vienna", NJP 11, 075001 (2009):
    nodes SIEM (Siemens), ERD (Erdberg), GUD (Gudrunstraße), BREIT (Breitenfurter Straße), STP
    (St. Pölten) and FRM, the far end of the 80 m free-space link. Six technologies ran on the
    links: plug & play BB84 (id Quantique, two links), one-way decoy BB84 (Toshiba),
    coherent one-way (GAP-Optique / id Quantique / AIT, the 85 km BREIT–STP link), entangled photons
    (Univ. Vienna / AIT), continuous variables (Thales / CNRS / ULB) and free-space decoy BB84 (LMU).

    qverify models prepare-and-measure BB84 and MDI-QKD only, so every link is modelled as decoy
    BB84 (``protocol="bb84"``: exact for the BB84 links, the entanglement-based BBM92 link has the
    same sifted-key statistics as BB84 with the source at the receiver) and ``system`` records what
    ran. COW and CV-QKD are *stand-ins*: their rates differ and qverify does not model them. No link
    ran MDI-QKD. Lengths are rounded; the pairing of systems to the three shorter metro links and the
    lengths of ERD–BREIT and SIEM–BREIT are approximate; positions are schematic.
    """
    nodes = {
        "SIEM": (0.0, 0.0),
        "ERD": (4.0, -3.0),
        "FRM": (4.05, -2.95),
        "GUD": (2.0, -5.0),
        "BREIT": (-6.0, -6.0),
        "STP": (-60.0, -5.0),
    }
    links: list[Link] = [
        ("SIEM", "ERD", 16.0, "bb84", "entangled photons, BBM92 (Univ. Vienna / AIT)"),
        ("SIEM", "GUD", 6.0, "bb84", "plug & play BB84 (id Quantique)"),
        ("ERD", "GUD", 16.0, "bb84", "one-way decoy BB84 (Toshiba)"),
        ("ERD", "FRM", 0.08, "bb84", "free-space decoy BB84 (LMU Munich), 80 m"),
        ("GUD", "BREIT", 25.0, "bb84", "continuous variables (Thales / CNRS / ULB): not modelled, BB84 stand-in"),
        ("ERD", "BREIT", 26.0, "bb84", "plug & play BB84 (id Quantique)"),
        ("SIEM", "BREIT", 26.0, "bb84", "plug & play BB84 (id Quantique)"),
        ("BREIT", "STP", 85.0, "bb84", "coherent one-way (GAP-Optique / id Quantique): not modelled, BB84 stand-in"),
    ]
    return _build(
        "secoqc",
        "Peev et al., NJP 11, 075001 (2009)",
        "6 nodes, 8 links as deployed; modelled as decoy BB84 (COW and CV links are stand-ins); "
        "lengths rounded; positions schematic",
        nodes,
        links,
    )


def tokyo_qkd() -> nx.Graph:
    """Tokyo QKD Network (2010): NICT Koganei, Otemachi, Hakusan and Hongo access points.

    Sasaki et al., "Field test of quantum key distribution in the Tokyo QKD Network",
    Opt. Express 19, 10387 (2011). Koganei–Otemachi ≈ 45 km (two fibres, decoy BB84 systems of NEC
    and Toshiba), a short link between the two Koganei sites (entanglement-based, All Vienna),
    Otemachi–Hakusan ≈ 13 km (SARG04, id Quantique) and Otemachi–Hongo ≈ 13 km (DPS-QKD, NTT).
    Modelled as decoy BB84 (``system`` says what ran; DPS is a stand-in). Lengths rounded,
    positions schematic.
    """
    nodes = {
        "Koganei-1": (-25.0, 0.0),
        "Koganei-2": (-25.0, -0.5),
        "Otemachi": (0.0, 0.0),
        "Hakusan": (0.0, 5.0),
        "Hongo": (1.0, 4.0),
    }
    links: list[Link] = [
        ("Koganei-1", "Otemachi", 45.0, "bb84", "decoy BB84 (NEC)"),
        ("Koganei-2", "Otemachi", 45.0, "bb84", "decoy BB84 (Toshiba)"),
        ("Koganei-1", "Koganei-2", 1.0, "bb84", "entangled photons, BBM92 (All Vienna)"),
        ("Otemachi", "Hakusan", 13.0, "bb84", "SARG04 (id Quantique)"),
        ("Otemachi", "Hongo", 13.0, "bb84", "differential phase shift (NTT): not modelled, BB84 stand-in"),
    ]
    return _build(
        "tokyo",
        "Sasaki et al., Opt. Express 19, 10387 (2011)",
        "modelled as decoy BB84 (DPS is a stand-in); lengths rounded; positions schematic",
        nodes,
        links,
    )


def cambridge() -> nx.Graph:
    """Cambridge UK quantum network: three nodes on installed metro fibre.

    Dynes et al., "Cambridge quantum network", npj Quantum Information 5, 101 (2019): Toshiba
    CRL (Science Park), the University's Engineering Department and the Electrical Engineering
    Division (West Cambridge), links of ≈ 10 km and ≈ 2–4 km, each running Toshiba's decoy BB84
    systems. Lengths rounded; positions schematic.
    """
    nodes = {"CRL": (2.0, 4.0), "EngDept": (0.0, -2.0), "EED": (-3.0, -2.5)}
    links: list[Link] = [
        ("CRL", "EngDept", 10.6, "bb84", "decoy BB84 (Toshiba)"),
        ("EngDept", "EED", 3.8, "bb84", "decoy BB84 (Toshiba)"),
        ("CRL", "EED", 8.8, "bb84", "decoy BB84 (Toshiba)"),
    ]
    return _build(
        "cambridge",
        "Dynes et al., npj Quantum Information 5, 101 (2019)",
        "lengths rounded from the publication; positions schematic",
        nodes,
        links,
    )


def beijing_shanghai() -> nx.Graph:
    """Beijing–Shanghai backbone: ≈ 2000 km of fibre through 32 trusted relays.

    Chen et al., "An integrated space-to-ground quantum communication network over 4,600
    kilometres", Nature 589, 214 (2021): backbone Beijing–Jinan–Hefei–Shanghai with 32 trusted
    relay nodes. Segment lengths here split each city-to-city stretch evenly over its relays
    (Beijing–Jinan ≈ 600 km, Jinan–Hefei ≈ 700 km, Hefei–Shanghai ≈ 700 km, rounded); the
    published per-segment lengths vary around this mean. Positions are along straight lines.
    """
    hubs = {"Beijing": (0.0, 600.0), "Jinan": (0.0, 200.0), "Hefei": (200.0, -300.0), "Shanghai": (500.0, -350.0)}
    stretches = [("Beijing", "Jinan", 600.0, 9), ("Jinan", "Hefei", 700.0, 11), ("Hefei", "Shanghai", 700.0, 12)]
    nodes: dict[str, tuple[float, float]] = dict(hubs)
    links: list[Link] = []
    k = 0
    for a, b, total, relays in stretches:
        (xa, ya), (xb, yb) = hubs[a], hubs[b]
        chain = [a]
        for i in range(1, relays + 1):
            k += 1
            t = i / (relays + 1)
            name = f"R{k:02d}"
            nodes[name] = (xa + t * (xb - xa), ya + t * (yb - ya))
            chain.append(name)
        chain.append(b)
        seg = total / (relays + 1)
        links += [(u, v, round(seg, 1), "bb84", "decoy BB84") for u, v in itertools.pairwise(chain)]
    return _build(
        "beijing_shanghai",
        "Chen et al., Nature 589, 214 (2021)",
        "32 trusted relays; per-segment lengths are the stretch length split evenly",
        nodes,
        links,
    )


def grid(rows: int, cols: int, spacing_km: float = 20.0, protocol: str = "mdi") -> nx.Graph:
    """A rows × cols grid of trusted nodes, neighbours ``spacing_km`` apart."""
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ParameterError("rows×cols", f"{rows}×{cols}", "at least 2 nodes")
    g = nx.Graph(name=f"grid_{rows}x{cols}", source="generator", note="")
    for r in range(rows):
        for c in range(cols):
            g.add_node(f"n{r}_{c}", x_km=c * spacing_km, y_km=r * spacing_km, trusted=True, label=f"n{r}_{c}")
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < rows and c + dc < cols:
                    g.add_edge(
                        f"n{r}_{c}", f"n{r + dr}_{c + dc}", length_km=spacing_km, protocol=protocol, relay_fraction=0.5
                    )
    validate(g)
    return g


def _geometric(
    n: int, area_km: float, seed: int, connect: Callable[[float, np.random.Generator], bool], name: str
) -> nx.Graph:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, area_km, size=(n, 2))
    g = nx.Graph(name=name, source="generator", note=f"seed {seed}")
    for i in range(n):
        g.add_node(f"n{i}", x_km=float(pos[i, 0]), y_km=float(pos[i, 1]), trusted=True, label=f"n{i}")
    # Candidate pairs from a k-d tree keep this O(n log n) for large n.
    from scipy.spatial import cKDTree

    tree = cKDTree(pos)
    radius = area_km * math.sqrt(8.0 / max(n, 2))
    for i, j in sorted(tree.query_pairs(radius)):
        d = float(np.hypot(*(pos[i] - pos[j])))
        if connect(d, rng):
            g.add_edge(f"n{i}", f"n{j}", length_km=round(1.2 * d, 3), protocol="mdi", relay_fraction=0.5)
    # Keep the largest component connected to the rest through nearest neighbours.
    comps = sorted(nx.connected_components(g), key=len, reverse=True)
    main = comps[0]
    for comp in comps[1:]:
        a = next(iter(comp))
        ia = int(a[1:])
        dists, idx = tree.query(pos[ia], k=min(n, 64))
        for d, j in zip(np.atleast_1d(dists), np.atleast_1d(idx), strict=False):
            if f"n{j}" in main:
                g.add_edge(a, f"n{j}", length_km=round(1.2 * float(d), 3), protocol="mdi", relay_fraction=0.5)
                break
        main = main | comp
    validate(g)
    return g


def random_geometric(n: int, radius_km: float = 25.0, area_km: float = 100.0, seed: int = 0) -> nx.Graph:
    """n nodes uniform in an ``area_km`` square, linked when closer than ``radius_km``.

    Fibre length = 1.2 × straight-line distance (a typical route factor); the graph is made
    connected by joining stray components to their nearest node.
    """
    if n < 2:
        raise ParameterError("n", n, "[2, inf)")
    return _geometric(n, area_km, seed, lambda d, _r: d <= radius_km, f"rgg_{n}")


def waxman(n: int, alpha: float = 0.4, beta: float = 0.2, area_km: float = 100.0, seed: int = 0) -> nx.Graph:
    """Waxman graph: link probability ``alpha·exp(−d / (beta·L))``, ``L`` the area diagonal.

    Waxman, IEEE JSAC 6, 1617 (1988). Candidates are limited to nearby pairs for speed.
    """
    if n < 2:
        raise ParameterError("n", n, "[2, inf)")
    diag = area_km * math.sqrt(2)
    return _geometric(n, area_km, seed, lambda d, r: r.random() < alpha * math.exp(-d / (beta * diag)), f"waxman_{n}")


BUILTIN: dict[str, Callable[[], nx.Graph]] = {
    "secoqc": secoqc,
    "tokyo": tokyo_qkd,
    "cambridge": cambridge,
    "beijing_shanghai": beijing_shanghai,
}


def load_builtin(name: str) -> nx.Graph:
    """A built-in topology by name; unknown names list the known ones."""
    if name not in BUILTIN:
        raise ChoiceError("topology", name, sorted(BUILTIN))
    return BUILTIN[name]()


def validate(g: nx.Graph) -> None:
    """Raise ``QverifyError`` unless every node and edge carries valid attributes."""
    if g.number_of_nodes() == 0:
        raise QverifyError("topology has no nodes")
    for n, d in g.nodes(data=True):
        for key in ("x_km", "y_km"):
            if not isinstance(d.get(key), int | float) or not math.isfinite(d[key]):
                raise QverifyError(f"node {n!r}: attribute {key} missing or not a finite number")
        d["trusted"] = parse_bool(d.get("trusted", True), f"trusted of node {n!r}")
        d.setdefault("label", str(n))
    for a, b, d in g.edges(data=True):
        length = d.get("length_km")
        if not isinstance(length, int | float) or not 0 < length < 1e5:
            raise ParameterError(f"length_km of link {a}–{b}", length, "(0, 1e5) km")
        if d.get("protocol", "mdi") not in ("mdi", "bb84"):
            raise ChoiceError(f"protocol of link {a}–{b}", d.get("protocol"), ("mdi", "bb84"))
        d.setdefault("protocol", "mdi")
        d.setdefault("system", "")
        rf = d.setdefault("relay_fraction", 0.5)
        if not 0 <= rf <= 1:
            raise ParameterError(f"relay_fraction of link {a}–{b}", rf, "[0, 1]")


def to_json(g: nx.Graph) -> str:
    """Serialise to JSON (networkx node-link format)."""
    return json.dumps(nx.node_link_data(g, edges="links"), indent=1)


def from_json(text: str) -> nx.Graph:
    """Read what :func:`to_json` wrote; raises ``QverifyError`` on malformed input."""
    try:
        g = nx.node_link_graph(json.loads(text), edges="links")
    except (ValueError, KeyError, TypeError) as exc:
        raise QverifyError(f"not a qverify topology JSON: {exc}") from None
    validate(g)
    return g


def save(g: nx.Graph, path: str | Path) -> None:
    """Write ``g`` as GraphML (``.graphml``) or JSON (``.json``)."""
    p = Path(path)
    if p.suffix == ".graphml":
        nx.write_graphml(g, p)
    elif p.suffix == ".json":
        p.write_text(to_json(g))
    else:
        raise ChoiceError("file suffix", p.suffix, (".graphml", ".json"))


def load(path: str | Path) -> nx.Graph:
    """Read a topology from GraphML or JSON; malformed files raise ``QverifyError``."""
    p = Path(path)
    if not p.exists():
        raise QverifyError(f"topology file {str(p)!r} does not exist")
    if p.suffix == ".json":
        return from_json(p.read_text())
    if p.suffix != ".graphml":
        raise ChoiceError("file suffix", p.suffix, (".graphml", ".json"))
    try:
        g = nx.read_graphml(p)
    except Exception as exc:  # networkx raises several parser errors for malformed XML
        raise QverifyError(f"malformed GraphML in {str(p)!r}: {exc}") from None
    for _n, d in g.nodes(data=True):
        if "trusted" in d:
            d["trusted"] = parse_bool(d["trusted"], f"trusted of node {_n!r}")
    validate(g)
    return nx.Graph(g)


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_bool(value: object, field: str) -> bool:
    """A boolean attribute as files carry it: a bool, 0/1, or ``true``/``false``/``yes``/``no`` text.

    ``bool("false")`` is ``True`` in Python, which is how a GraphML ``trusted="false"`` declared as a
    string attribute would otherwise load as trusted.

    >>> parse_bool("False", "trusted"), parse_bool(1, "trusted")
    (False, True)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ParameterError(field, value, "true or false")


GENERATED = ("grid:ROWSxCOLS", "rgg:N[:SEED]", "waxman:N[:SEED]")
"""Generator specs :func:`resolve` accepts besides built-in names and files."""


def _generated(spec: str) -> nx.Graph:
    kind, _, rest = spec.partition(":")
    try:
        if kind == "grid":
            rows, cols = (int(x) for x in rest.lower().split("x"))
            if rows < 1 or cols < 1 or rows * cols < 2:
                raise ValueError
            return grid(rows, cols)
        parts = [int(x) for x in rest.split(":")]
        if len(parts) not in (1, 2) or parts[0] < 2:
            raise ValueError
        seed = parts[1] if len(parts) == 2 else 0
        return random_geometric(parts[0], seed=seed) if kind == "rgg" else waxman(parts[0], seed=seed)
    except ValueError:
        raise ParameterError(
            "topology", spec, "grid:ROWSxCOLS (≥ 2 nodes), rgg:N[:SEED] or waxman:N[:SEED], N ≥ 2"
        ) from None


def resolve(topology: str) -> nx.Graph:
    """A built-in name, a generator spec (:data:`GENERATED`) or a path to a GraphML / JSON file.

    >>> resolve("grid:3x4").number_of_nodes(), resolve("rgg:30:1").number_of_nodes()
    (12, 30)
    """
    if topology in BUILTIN:
        return load_builtin(topology)
    if topology.split(":")[0] in ("grid", "rgg", "waxman") and ":" in topology:
        return _generated(topology)
    if topology.endswith((".graphml", ".json")):
        return load(topology)
    raise ChoiceError("topology", topology, [*sorted(BUILTIN), *GENERATED, "<file>.graphml", "<file>.json"])


def describe(g: nx.Graph) -> dict[str, Any]:
    """Summary: name, source, node and link counts, total fibre."""
    return {
        "name": g.graph.get("name"),
        "source": g.graph.get("source"),
        "nodes": g.number_of_nodes(),
        "links": g.number_of_edges(),
        "fibre_km": round(sum(d["length_km"] for _a, _b, d in g.edges(data=True)), 1),
    }
