"""Plot a topology with its nominal link key rates."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from qverify.network.links import compile_links, link_state, nominal_mu
from qverify.physics.params import LinkParams


def link_rates_bps(g: nx.Graph, params: LinkParams) -> np.ndarray:
    """Nominal secret-key rate (bit/s) per link, μ optimised, in ``g.edges`` order."""
    links = compile_links(g)
    return link_state(links, params, nominal_mu(links, params), links.is_mdi).key_rate_bps


def plot_topology(g: nx.Graph, params: LinkParams, path: str | Path, title: str | None = None) -> None:
    """Draw nodes at their positions, links coloured by log10 key rate (bit/s), lengths labelled."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    rates = link_rates_bps(g, params)
    pos = {n: (d["x_km"], d["y_km"]) for n, d in g.nodes(data=True)}
    logr = np.log10(np.maximum(rates, 1e-3))
    norm = Normalize(vmin=float(logr.min()), vmax=float(max(logr.max(), logr.min() + 1e-9)))
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"]
    for (u, v, d), lr in zip(g.edges(data=True), logr, strict=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.plot([x0, x1], [y0, y1], color=cmap(norm(lr)), lw=2.5, ls="-" if d["protocol"] == "mdi" else "--")
        if g.number_of_edges() <= 60:
            ax.annotate(f"{d['length_km']:g} km", ((x0 + x1) / 2, (y0 + y1) / 2), fontsize=7, color="0.3")
    xs, ys = zip(*pos.values(), strict=True)
    ax.scatter(xs, ys, s=40 if g.number_of_nodes() <= 60 else 8, color="black", zorder=3)
    if g.number_of_nodes() <= 60:
        for n, (x, y) in pos.items():
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    sm = ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="log10 key rate (bit/s)")
    ax.set_xlabel("x (km, schematic)")
    ax.set_ylabel("y (km, schematic)")
    ax.set_title(title or f"{g.graph.get('name', 'network')}: solid = MDI-QKD, dashed = decoy BB84")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
