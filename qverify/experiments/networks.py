"""Across networks: ABFT against the baseline on three networks, and where the paper's claims would hold.

The paper's experiment runs on one small network. Two questions need more:

1. **Does the effect depend on the network?** :func:`study_tasks` runs the baseline and ABFT on a
   faithful historical topology (SECOQC as deployed), a large real backbone (Beijing–Shanghai, a
   chain of trusted relays) and a meshed network (a 4 × 4 grid: 16 = 3·5 + 1 nodes, so f + 1 faulty
   replicas can break the control plane's agreement there), with Byzantine *counts* chosen per network so that
   every cell is a distinct experiment: 0, 1, ⌊n/5⌉, the ``f`` the control plane's weights are
   built for, and ``f + 1``. Both policies run on the same seeds (same Byzantine placement, same
   demands, same fluctuations), so their difference is paired.
2. **Where would each claim hold?** :func:`map_tasks` sweeps Byzantine count × path diversity ×
   misalignment on small generated networks (a chain, a ladder and a grid) and evaluates three
   claims per cell (key rate kept, QBER below 1 %, availability 99.99 %).

Demands are drawn per seed among the honest nodes (a demand whose endpoint is Byzantine says
nothing about the network). Path diversity is measured, not assumed: the mean number of
node-disjoint paths between each demand's endpoints (Menger; adjacent endpoints count their
direct link as one path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.consensus.committee import tolerated
from qverify.errors import ParameterError
from qverify.experiments.grid import Task
from qverify.experiments.stats import Difference, one_sample, paired_difference, side

STUDY_POLICIES: tuple[str, ...] = ("baseline", "abft")
"""The network study compares the control plane against no control plane (no DQN: agents are per network)."""


@dataclass(frozen=True)
class NetworkStudyConfig:
    """The across-networks comparison of ``qverify reproduce``.

    Attributes:
        networks: topologies (built-in names, generated specs or files); at least one.
        behaviours: behaviour sets (:data:`~qverify.experiments.grid.BEHAVIOUR_SETS`); the default
            pairs one that withholds keys with one that forwards them and listens (the only way a
            relay can expose key).
        seeds: seeds per cell (≥ 3, so that every paired interval can be formed).
        slots: slots per run.
        demands: demands per run (drawn per seed among honest nodes).
        demand_bits: request per demand per slot (bit).
    """

    networks: tuple[str, ...] = ("secoqc", "beijing_shanghai", "grid:4x4")
    behaviours: tuple[str, ...] = ("inject-drop-lie", "listen-lie")
    seeds: int = 10
    slots: int = 200
    demands: int = 3
    demand_bits: float = 5e3

    def __post_init__(self) -> None:
        from qverify.errors import ChoiceError
        from qverify.experiments.grid import BEHAVIOUR_SETS

        if not self.networks:
            raise ParameterError("networks", self.networks, "at least one topology")
        for b in self.behaviours:
            if b not in BEHAVIOUR_SETS:
                raise ChoiceError("behaviours", b, sorted(BEHAVIOUR_SETS))
        if self.seeds < 3:
            raise ParameterError("study seeds", self.seeds, "[3, inf) (a paired interval needs 3 seeds)")
        for name in ("slots", "demands"):
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "[1, inf)")

    @classmethod
    def quick(cls) -> NetworkStudyConfig:
        """CI size: three seeds, short runs, one behaviour set; SECOQC and the mesh (Beijing–Shanghai's
        36 nodes are left to the default run)."""
        return cls(networks=("secoqc", "grid:4x4"), behaviours=("inject-drop-lie",), seeds=3, slots=60)


@dataclass(frozen=True)
class MapConfig:
    """Where the claims hold: Byzantine count × path diversity × misalignment.

    Attributes:
        topologies: generated networks of rising path diversity (chain, ladder, grid).
        counts: Byzantine node counts.
        e_mis: misalignment error probabilities (the QBER claim needs e_mis < 1 %).
        seeds, slots, demands, demand_bits: as in :class:`NetworkStudyConfig`.
    """

    topologies: tuple[str, ...] = ("grid:1x8", "grid:2x5", "grid:4x4")
    counts: tuple[int, ...] = (0, 1, 2)
    e_mis: tuple[float, ...] = (0.005, 0.015)
    behaviours: str = "inject-drop-lie"
    seeds: int = 10
    slots: int = 200
    demands: int = 3
    demand_bits: float = 5e3

    def __post_init__(self) -> None:
        if self.seeds < 3:
            raise ParameterError("map seeds", self.seeds, "[3, inf) (a paired interval needs 3 seeds)")
        for e in self.e_mis:
            if not 0 <= e < 0.5:
                raise ParameterError("e_mis", e, "[0, 0.5)")
        if 0 not in self.counts:
            raise ParameterError("counts", self.counts, "a tuple containing 0 (the fault-free reference)")

    @classmethod
    def quick(cls) -> MapConfig:
        """CI size: two topologies, counts 0 and 1, three seeds."""
        return cls(topologies=("grid:1x6", "grid:3x3"), counts=(0, 1), seeds=3, slots=60)


def byzantine_counts(n_nodes: int) -> tuple[int, ...]:
    """Distinct Byzantine counts for a network of ``n_nodes``: 0, 1, ⌊n/5⌉, f and f + 1 (≤ n − 2).

    ``f = ⌊(n − 1)/3⌋`` (:func:`~qverify.consensus.committee.tolerated`) is what the control plane's
    weights are built for; ``f + 1`` is one more.

    >>> byzantine_counts(6)
    (0, 1, 2)
    >>> byzantine_counts(36)
    (0, 1, 7, 11, 12)
    """
    f = tolerated(n_nodes)
    wanted = {0, 1, int(np.floor(0.2 * n_nodes + 0.5)), f, f + 1}
    return tuple(sorted(k for k in wanted if 0 <= k <= max(n_nodes - 2, 0)))


def path_diversity(g: Any, demands: Sequence[tuple[str, str]]) -> float:
    """Mean number of node-disjoint paths between the endpoints of each demand (Menger).

    >>> from qverify.network.topology import grid
    >>> path_diversity(grid(1, 4), [("n0_0", "n0_3")]), path_diversity(grid(2, 3), [("n0_0", "n1_2")])
    (1.0, 2.0)
    """
    import networkx as nx
    from networkx.algorithms.connectivity import local_node_connectivity

    values = []
    for a, b in demands:
        if g.has_edge(a, b):
            h = nx.Graph(g)
            h.remove_edge(a, b)
            values.append(1 + (local_node_connectivity(h, a, b) if nx.has_path(h, a, b) else 0))
        else:
            values.append(local_node_connectivity(g, a, b) if nx.has_path(g, a, b) else 0)
    return float(np.mean(values)) if values else float("nan")


def _task(topology: str, n: int, count: int, behaviours: str, policy: str, seed: int, slots: int, demands: int,
          demand_bits: float, signatures: str, e_mis: float | None = None) -> Task:  # fmt: skip
    return Task(topology, count / n, behaviours, True, policy, seed, slots, demands, demand_bits,
                demand_seed=None, e_mis=e_mis, signatures=signatures)  # fmt: skip


def study_tasks(config: NetworkStudyConfig, signatures: str = "ideal") -> list[Task]:
    """Every run of the network study (paired: both policies on each seed); ``signatures``: the
    control plane's signature scheme (:class:`~qverify.experiments.grid.GridConfig`)."""
    from qverify.network.topology import resolve

    tasks = []
    for topo in config.networks:
        n = resolve(topo).number_of_nodes()
        for count in byzantine_counts(n):
            for beh in config.behaviours:
                for policy in STUDY_POLICIES:
                    for seed in range(config.seeds):
                        tasks.append(_task(topo, n, count, beh, policy, seed, config.slots, config.demands,
                                           config.demand_bits, signatures))  # fmt: skip
    return tasks


def map_tasks(config: MapConfig, signatures: str = "ideal") -> list[Task]:
    """Every run of the claims map; ``signatures`` as in :func:`study_tasks`."""
    from qverify.network.topology import resolve

    tasks = []
    for topo in config.topologies:
        n = resolve(topo).number_of_nodes()
        for count in config.counts:
            if count > n - 2:
                raise ParameterError("counts", count, f"[0, {n - 2}] for {topo} ({n} nodes)")
            for e in config.e_mis:
                for policy in STUDY_POLICIES:
                    for seed in range(config.seeds):
                        tasks.append(_task(topo, n, count, config.behaviours, policy, seed, config.slots,
                                           config.demands, config.demand_bits, signatures, e_mis=e))  # fmt: skip
    return tasks


# ---- aggregation ---------------------------------------------------------------------------------
METRICS = ("availability", "key_bits_per_slot", "exposed_fraction", "measured_qber_in_use", "control_violations")


def _values(rows: list[dict[str, Any]], metric: str) -> np.ndarray:
    return np.array([r[metric] for r in sorted(rows, key=lambda r: r["task"]["seed"])], dtype=float)


def _mean_ci(v: np.ndarray) -> dict[str, Any]:
    return _diff(one_sample(v))


def _diff(d: Difference) -> dict[str, Any]:
    return {"mean": d.mean, "low": d.low, "high": d.high, "n": d.n, "method": d.method}


def _cell(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r["task"].get(k) == v for k, v in match.items())]


def summarise_study(config: NetworkStudyConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per network: size, f, counts, measured path diversity; per (network, behaviours, count):
    each policy's mean with a BCa interval and the paired ABFT − baseline differences."""
    from qverify.network.topology import resolve

    out: dict[str, Any] = {"networks": {}, "cells": []}
    for topo in config.networks:
        g = resolve(topo)
        n = g.number_of_nodes()
        counts = byzantine_counts(n)
        div = []
        for r in _cell(rows, topology=topo, policy="baseline"):
            div.append(path_diversity(g, [tuple(d) for d in r.get("demand_nodes", [])]))
        out["networks"][topo] = {
            "nodes": n, "links": g.number_of_edges(), "f": tolerated(n), "counts": list(counts),
            "path_diversity": float(np.nanmean(div)) if div else None,
            "source": g.graph.get("source", ""),
        }  # fmt: skip
        for beh in config.behaviours:
            for count in counts:
                cell: dict[str, Any] = {"network": topo, "behaviours": beh, "count": count, "nodes": n}
                sel = {
                    p: _cell(rows, topology=topo, behaviours=beh, fraction=count / n, policy=p) for p in STUDY_POLICIES
                }
                if not all(sel.values()):
                    continue
                for p, rs in sel.items():
                    cell[p] = {m: _mean_ci(_values(rs, m)) for m in METRICS}
                    cell[p]["control_faulty"] = max(int(r.get("control_faulty", 0)) for r in rs)
                a, b = sel["abft"], sel["baseline"]
                if [r["task"]["seed"] for r in sorted(a, key=lambda r: r["task"]["seed"])] == [
                    r["task"]["seed"] for r in sorted(b, key=lambda r: r["task"]["seed"])
                ]:
                    cell["abft_minus_baseline"] = {
                        m: _diff(paired_difference(_values(a, m), _values(b, m)))
                        for m in ("availability", "key_bits_per_slot", "exposed_fraction")
                    }
                out["cells"].append(cell)
    return out


def summarise_map(config: MapConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (topology, count, e_mis): the three claims' verdicts for ABFT with the values behind them.

    * key rate: ABFT's mean delivered key ≥ 95 % of the same topology and e_mis without Byzantine
      nodes (ratio of means, bootstrap interval);
    * QBER: measured QBER of the links in use < 1 %;
    * availability: ABFT ≥ 99.99 %.
    """
    from qverify.experiments.stats import ratio_ci
    from qverify.network.topology import resolve

    cells = []
    for topo in config.topologies:
        g = resolve(topo)
        n = g.number_of_nodes()
        for e in config.e_mis:
            ref = _cell(rows, topology=topo, fraction=0.0, e_mis=e, policy="abft")
            for count in config.counts:
                sel = _cell(rows, topology=topo, fraction=count / n, e_mis=e, policy="abft")
                base = _cell(rows, topology=topo, fraction=count / n, e_mis=e, policy="baseline")
                if not sel or not ref:
                    continue
                div = [path_diversity(g, [tuple(d) for d in r.get("demand_nodes", [])]) for r in sel]
                kept = ratio_ci(_values(sel, "key_bits_per_slot"), _values(ref, "key_bits_per_slot"))
                q = _mean_ci(_values(sel, "measured_qber_in_use"))
                av = _mean_ci(_values(sel, "availability"))
                gap = paired_difference(_values(sel, "availability"), _values(base, "availability"))
                cells.append({
                    "topology": topo, "nodes": n, "count": count, "e_mis": e,
                    "path_diversity": float(np.nanmean(div)),
                    "key_kept": list(kept), "qber_in_use": q, "availability": av,
                    "availability_gain": _diff(gap),
                    "verdicts": {
                        "key rate kept ≥ 95 %": side(kept[1], kept[2], 0.95, True),
                        "QBER < 1 %": side(q["low"], q["high"], 0.01, False),
                        "availability ≥ 99.99 %": side(av["low"], av["high"], 0.9999, True),
                    },
                })  # fmt: skip
    return {"cells": cells}


# ---- presentation --------------------------------------------------------------------------------
def _ci(x: dict[str, Any], fmt: str) -> str:
    if x["method"] == "degenerate":
        return f"{x['mean']:{fmt}} (all {x['n']} seeds equal)"
    if x["method"] == "too few seeds":
        return f"{x['mean']:{fmt}}"
    return f"{x['mean']:{fmt}} [{x['low']:{fmt}}, {x['high']:{fmt}}]"


def study_markdown(config: NetworkStudyConfig, summary: dict[str, Any], figure: str | None) -> str:
    """The network study as a Markdown section."""
    from qverify.experiments.grid import BEHAVIOUR_SETS

    lines = [
        "## Across networks: ABFT vs baseline\n",
        f"{config.seeds} seeds × {config.slots} slots per cell, {config.demands} demands of "
        f"{config.demand_bits:g} bit/slot drawn per seed among honest nodes, fluctuation on. Both policies run on the "
        "same seeds (same Byzantine nodes, demands and fluctuations): the difference is paired (BCa 95 %). "
        "Byzantine counts per network: 0, 1, ⌊n/5⌉, the f the weights are built for, and f + 1. Behaviour sets: "
        + "; ".join(f"`{b}` = {', '.join(BEHAVIOUR_SETS[b]) or 'none'}" for b in config.behaviours)
        + ".\n",
        "| network | nodes | links | f | path diversity (mean node-disjoint paths per demand) | source |",
        "|---|---|---|---|---|---|",
    ]
    for topo, info in summary["networks"].items():
        pdv = info["path_diversity"]
        lines.append(f"| {topo} | {info['nodes']} | {info['links']} | {info['f']} | "
                     f"{'—' if pdv is None else f'{pdv:.2f}'} | {info['source']} |")  # fmt: skip
    lines += [
        "",
        "| network | behaviours | Byzantine | availability, baseline | availability, ABFT | ABFT − baseline "
        "(paired) | exposed key, baseline | exposed key, ABFT | control violations (faulty replicas) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["cells"]:
        gap = c.get("abft_minus_baseline", {}).get("availability")
        f = summary["networks"][c["network"]]["f"]
        lines.append(
            f"| {c['network']} | {c['behaviours']} | {c['count']}{' (f + 1)' if c['count'] == f + 1 else ''} | "
            f"{_ci(c['baseline']['availability'], '.1%')} | {_ci(c['abft']['availability'], '.1%')} | "
            f"{'—' if gap is None else _ci(gap, '+.1%')} | {_ci(c['baseline']['exposed_fraction'], '.1%')} | "
            f"{_ci(c['abft']['exposed_fraction'], '.1%')} | "
            f"{c['abft']['control_violations']['mean'] * c['abft']['control_violations']['n']:.0f} "
            f"({c['abft']['control_faulty']}) |"
        )
    lines.append(
        "\nAvailability: fraction of (demand, slot) pairs whose request was met in full. Exposed key: share of "
        "delivered key the Byzantine nodes can reconstruct (a relay that forwards a key learns it). Control "
        "violations: agreement violations summed over the seeds' control-plane instances (every Byzantine node is "
        "a faulty replica that equivocates and forgets its log, also above f); the number in brackets is how many "
        "faulty replicas there were. Two quorums of weight W − T_f overlap in weight W − 2·T_f ≥ T_f + 1, so up to f "
        "faulty replicas (weight ≤ T_f) never break agreement; f + 1 can once their weight reaches W − 2·T_f: with "
        "equal weights only where n = 3f + 1, with fidelity weights wherever the faulty replicas are heavy (a liar "
        "that reports perfect links keeps a high score).\n"
    )
    if figure:
        lines.append(f"![availability across networks]({figure})\n")
    return "\n".join(lines) + "\n"


def map_markdown(config: MapConfig, summary: dict[str, Any], figure: str | None) -> str:
    """The claims map as a Markdown section."""
    lines = [
        "## Where the claims would hold\n",
        f"ABFT on small generated networks of rising path diversity × Byzantine count × misalignment; {config.seeds} "
        f"seeds × {config.slots} slots per cell, behaviour set `{config.behaviours}`, fluctuation on. A verdict is "
        "*yes* when the 95 % interval lies on the claim's side, *no* when it lies on the other side.\n",
        "| topology | path diversity | Byzantine | e_mis | key kept (vs 0 Byzantine) | measured QBER in use | "
        "availability | ABFT − baseline availability | key ≥ 95 % | QBER < 1 % | availability ≥ 99.99 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["cells"]:
        k = c["key_kept"]
        v = c["verdicts"]
        lines.append(
            f"| {c['topology']} | {c['path_diversity']:.2f} | {c['count']} | {c['e_mis']:.1%} | "
            f"{k[0]:.1%} [{k[1]:.1%}, {k[2]:.1%}] | {_ci(c['qber_in_use'], '.2%')} | {_ci(c['availability'], '.2%')} | "
            f"{_ci(c['availability_gain'], '+.1%')} | {v['key rate kept ≥ 95 %']} | {v['QBER < 1 %']} | "
            f"{v['availability ≥ 99.99 %']} |"
        )
    lines.append(
        "\nThe QBER claim can hold only where e_mis < 1 % (an MDI or BB84 link's QBER is at least its misalignment); "
        "the key-rate and availability claims need at least k + 1 node-disjoint paths around k Byzantine nodes.\n"
    )
    if figure:
        lines.append(f"![where the claims hold]({figure})\n")
    return "\n".join(lines) + "\n"


def plot_study(summary: dict[str, Any], path: Any) -> None:
    """Availability against Byzantine count, per network and policy, with BCa intervals."""
    from matplotlib.figure import Figure

    nets = list(summary["networks"])
    behs = sorted({c["behaviours"] for c in summary["cells"]})
    fig = Figure(figsize=(4.2 * len(nets), 3.4 * len(behs)))
    axes = fig.subplots(len(behs), len(nets), squeeze=False)
    for i, beh in enumerate(behs):
        for j, net in enumerate(nets):
            ax = axes[i][j]
            cells = [c for c in summary["cells"] if c["network"] == net and c["behaviours"] == beh]
            x = np.array([c["count"] for c in cells])
            for p, style in (("baseline", "s--"), ("abft", "o-")):
                m = np.array([c[p]["availability"]["mean"] for c in cells])
                lo = np.array([c[p]["availability"]["low"] for c in cells])
                hi = np.array([c[p]["availability"]["high"] for c in cells])
                ax.plot(x, m, style, label=p)
                ax.fill_between(x, np.where(np.isfinite(lo), lo, m), np.where(np.isfinite(hi), hi, m), alpha=0.2)
            f = summary["networks"][net]["f"]
            ax.axvline(f, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{net} ({summary['networks'][net]['nodes']} nodes), {beh}", fontsize=9)
            ax.set_xlabel("Byzantine nodes (dotted: f)")
            ax.set_ylabel("availability")
            ax.set_ylim(-0.02, 1.02)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_map(summary: dict[str, Any], path: Any) -> None:
    """One panel per claim: verdict per (topology by path diversity, Byzantine count) cell, per e_mis."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    cells = summary["cells"]
    claims = list(cells[0]["verdicts"]) if cells else []
    emis = sorted({c["e_mis"] for c in cells})
    topos = sorted(
        {c["topology"] for c in cells}, key=lambda t: min(c["path_diversity"] for c in cells if c["topology"] == t)
    )
    counts = sorted({c["count"] for c in cells})
    code = {"no": 0, "inconclusive": 1, "yes": 2}
    cmap = ListedColormap(["#d9534f", "#cccccc", "#5cb85c"])
    fig = Figure(figsize=(3.6 * len(claims), 2.6 * len(emis) + 0.6))
    axes = fig.subplots(len(emis), len(claims), squeeze=False)
    for i, e in enumerate(emis):
        for j, claim in enumerate(claims):
            ax = axes[i][j]
            grid = np.full((len(topos), len(counts)), np.nan)
            for c in cells:
                if c["e_mis"] == e:
                    grid[topos.index(c["topology"]), counts.index(c["count"])] = code[c["verdicts"][claim]]
            ax.imshow(grid, cmap=cmap, vmin=0, vmax=2, aspect="auto")
            ax.set_xticks(range(len(counts)), [str(k) for k in counts])
            labels = []
            for t in topos:
                pdv = np.mean([c["path_diversity"] for c in cells if c["topology"] == t])
                labels.append(f"{t}\n({pdv:.1f} paths)")
            ax.set_yticks(range(len(topos)), labels, fontsize=7)
            ax.set_xlabel("Byzantine nodes")
            ax.set_title(f"{claim}, e_mis {e:.1%}", fontsize=9)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=cmap(k), label=v) for v, k in code.items()], loc="lower center", ncol=3,
               fontsize=8)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)


def readme_lines(study: dict[str, Any] | None, claims_map: dict[str, Any] | None) -> list[str]:
    """Short Markdown for the README: per network ABFT vs baseline at ``f`` and the control plane at
    ``f + 1``, then how many map cells each claim holds in."""
    lines: list[str] = []
    if study:
        lines += [
            "",
            "Across networks (first behaviour set; availability at f Byzantine nodes, paired over the same seeds; "
            "control-plane agreement violations at f and f + 1 faulty replicas):",
            "",
            "| network | nodes (f) | path diversity | baseline | ABFT | ABFT − baseline | violations at f | at f + 1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        first = study["cells"][0]["behaviours"] if study["cells"] else None
        for topo, info in study["networks"].items():
            f = info["f"]
            at = {c["count"]: c for c in study["cells"] if c["network"] == topo and c["behaviours"] == first}
            if f not in at:
                continue
            c = at[f]
            gap = c.get("abft_minus_baseline", {}).get("availability")

            def viol(k: int, at: dict[int, Any] = at) -> str:
                if k not in at:
                    return "—"
                v = at[k]["abft"]["control_violations"]
                return f"{v['mean'] * v['n']:.0f}"

            pdv = info["path_diversity"]
            lines.append(
                f"| {topo} | {info['nodes']} ({f}) | {'—' if pdv is None else f'{pdv:.2f}'} | "
                f"{_ci(c['baseline']['availability'], '.1%')} | {_ci(c['abft']['availability'], '.1%')} | "
                f"{'—' if gap is None else _ci(gap, '+.1%')} | {viol(f)} | {viol(f + 1)} |"
            )
    if claims_map and claims_map["cells"]:
        cells = [c for c in claims_map["cells"] if c["count"] > 0]  # without attack every claim is trivial
        names = list(claims_map["cells"][0]["verdicts"])
        parts = []
        for name in names:
            yes = [c for c in cells if c["verdicts"][name] == "yes"]
            where = sorted({f"{c['topology']} with {c['count']} Byzantine at e_mis {c['e_mis']:.1%}" for c in yes})
            parts.append(f"*{name}* holds in {len(yes)} of {len(cells)} cells" + (f" ({'; '.join(where[:4])}"
                         + ("; …" if len(where) > 4 else "") + ")" if yes else ""))  # fmt: skip
        lines += ["", "Where the claims would hold under attack (ABFT, ≥ 1 Byzantine node; map of path diversity × "
                  "Byzantine count × misalignment): "
                  + "; ".join(parts) + "."]  # fmt: skip
    return lines
