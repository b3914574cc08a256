"""Links of a topology as arrays, and their key rates from :mod:`qverify.physics` (vectorised).

Every link is either an MDI-QKD link (untrusted relay at ``relay_fraction`` of the fibre) or a
decoy-BB84 link between trusted nodes. Rates use the infinite-decoy closed forms at a given μ per
link; fluctuating excess loss, detector-efficiency and source-rate drifts enter as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import networkx as nx
import numpy as np

from qverify.physics.params import LinkParams
from qverify.physics.rates import fibre_link_rates, link_rate


@dataclass(frozen=True)
class LinkArrays:
    """A topology compiled to arrays (links in a fixed order).

    Attributes:
        nodes: node names; index ``i`` everywhere refers to ``nodes[i]``.
        a, b: endpoint indices per link (int arrays, shape (E,)).
        length_km: fibre length per link.
        is_mdi: True for MDI-QKD links, False for decoy BB84.
        relay_fraction: MDI relay position per link.
        trusted: per node, whether it may relay keys.
    """

    nodes: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    length_km: np.ndarray
    is_mdi: np.ndarray
    relay_fraction: np.ndarray
    trusted: np.ndarray

    @property
    def n_links(self) -> int:
        return len(self.a)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.nodes)}

    def link_of(self) -> dict[tuple[int, int], int]:
        """(i, j) and (j, i) → link index."""
        out = {}
        for k, (i, j) in enumerate(zip(self.a.tolist(), self.b.tolist(), strict=True)):
            out[(i, j)] = k
            out[(j, i)] = k
        return out


def _edge_length(u: object, v: object, d: dict[str, object]) -> float:
    """An edge's ``length_km`` as a number in (0, 1e5] km, or a ``ParameterError`` naming the edge."""
    import math

    from qverify.errors import ParameterError

    field = f"length_km of link {u}–{v}"
    value = d.get("length_km")
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ParameterError(field, value, "a number in (0, 1e5] km")
    if not (math.isfinite(float(value)) and 0 < float(value) <= 1e5):
        raise ParameterError(field, value, "(0, 1e5] km")
    return float(value)


def compile_links(g: nx.Graph) -> LinkArrays:
    """Arrays of ``g``'s links (see :mod:`qverify.network.topology` for the attributes).

    A network needs at least two nodes and one edge, and every edge a numeric ``length_km``;
    otherwise a ``ParameterError`` names what is missing.
    """
    from qverify.errors import ParameterError

    if g.number_of_nodes() < 2:
        raise ParameterError("nodes", g.number_of_nodes(), "[2, inf) (a network links at least two nodes)")
    if g.number_of_edges() == 0:
        raise ParameterError("edges", 0, "[1, inf) (no link between the nodes: no key to distil)")
    nodes = tuple(str(n) for n in g.nodes)
    idx = {n: i for i, n in enumerate(g.nodes)}
    edges = list(g.edges(data=True))
    lengths = [_edge_length(u, v, d) for u, v, d in edges]
    return LinkArrays(
        nodes=nodes,
        a=np.array([idx[u] for u, _v, _d in edges], dtype=np.int64),
        b=np.array([idx[v] for _u, v, _d in edges], dtype=np.int64),
        length_km=np.array(lengths, dtype=float),
        is_mdi=np.array([d.get("protocol", "mdi") == "mdi" for *_e, d in edges], dtype=bool),
        relay_fraction=np.array([d.get("relay_fraction", 0.5) for *_e, d in edges], dtype=float),
        trusted=np.array([bool(g.nodes[n].get("trusted", True)) for n in g.nodes], dtype=bool),
    )


class LinkState(NamedTuple):
    """Per-link rates and errors in one slot (arrays of shape (E,))."""

    key_rate_bps: np.ndarray
    qber: np.ndarray
    gain: np.ndarray


def link_state(
    links: LinkArrays,
    params: LinkParams,
    mu: np.ndarray,
    use_mdi: np.ndarray,
    excess_loss_db: np.ndarray | float = 0.0,
    eta_scale: np.ndarray | float = 1.0,
    clock_scale: np.ndarray | float = 1.0,
    extra_error: np.ndarray | float = 0.0,
) -> LinkState:
    """Key rate (bit/s), signal QBER and gain of every link.

    Args:
        mu: signal mean photon number per link.
        use_mdi: protocol per link (True: MDI-QKD, False: decoy BB84 between the endpoints).
        excess_loss_db: loss on top of ``length_km × loss_db_per_km``, split between the two arms of
            an MDI link in proportion to ``relay_fraction``.
        eta_scale: detector-efficiency drift factor (multiplies ``eta_det``).
        clock_scale: source-rate drift factor (multiplies ``clock_hz``).
        extra_error: bit-flip probability added by a misbehaving party (composed with ``e_mis``:
            ``e = e_mis + x − 2 e_mis x``).
    """
    ch, det = params.channel, params.detector
    rate, qber, gain = fibre_link_rates(
        links.length_km, links.relay_fraction, mu, use_mdi, ch.loss_db_per_km, det.eta_det, det.p_dark, ch.e_mis,
        params.ec.f_ec, params.source.sift_for("mdi"), params.source.sift_for("bb84"), params.source.clock_hz, excess_loss_db, eta_scale, clock_scale,
        extra_error, det.dead_time_slots, det.double_click,
    )  # fmt: skip
    return LinkState(rate, qber, gain)


def nominal_mu(links: LinkArrays, params: LinkParams, use_mdi: np.ndarray | None = None) -> np.ndarray:
    """μ that maximises each link's key rate at its nominal loss (the static setting)."""
    use = links.is_mdi if use_mdi is None else use_mdi
    out = np.empty(links.n_links)
    for flag, proto in ((True, "mdi"), (False, "bb84")):
        sel = use == flag
        if not sel.any():
            continue
        for frac in np.unique(links.relay_fraction[sel]):
            sub = sel & (links.relay_fraction == frac)
            p = params.replace(relay_fraction=float(frac))
            out[sub] = link_rate(links.length_km[sub], p, proto).mu
    return out
