"""The report of ``qverify reproduce``: figures, Markdown sections and their HTML rendering."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qverify.experiments.claims import ClaimRow, metric_values, select_rows, summary_sentence
from qverify.experiments.grid import GridConfig

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


def plot_grid(config: GridConfig, rows: list[dict[str, Any]], agg: dict[str, Any], conv: dict[str, Any],
           agents: dict[str, Any], run_dir: Path) -> list[str]:  # fmt: skip
    from matplotlib.figure import Figure

    figs = []
    b0 = config.behaviours[0]
    fl = True if True in config.fluctuation else config.fluctuation[0]
    for metric, ylabel, name in (
        ("key_bits_per_slot", "delivered key (bit/slot)", "key_rate_vs_byzantine.png"),
        ("availability", "availability", "availability_vs_byzantine.png"),
    ):
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for p in config.policies:
            xs, ms, lo, hi = [], [], [], []
            for f in config.fractions:
                c = agg.get(f"{f:.2f}|{b0}|{int(fl)}|{p}")
                if c:
                    xs.append(f * 100)
                    ms.append(c[metric]["mean"])
                    lo.append(c[metric]["mean"] - c[metric]["low"])
                    hi.append(c[metric]["high"] - c[metric]["mean"])
            ax.errorbar(xs, ms, yerr=[lo, hi], marker="o", capsize=3, label=p)
        ax.set_xlabel("Byzantine nodes (%)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{config.topology}, {b0}, fluctuation {'on' if fl else 'off'} (95 % CI)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(run_dir / name, dpi=110)
        figs.append(name)
    f20 = config.claim_fraction()
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for p in config.policies:
        q = [x for r in select_rows(rows, fraction=f20, behaviours=b0, fluctuation=fl, policy=p, alpha=0.5, threshold=0.11)
             for x in r["qber_sample"]]  # fmt: skip
        if q:
            ax.hist(np.clip(q, 0, 0.5), bins=40, histtype="step", label=p, density=True)
    ax.axvline(0.01, color="k", ls=":", label="paper's 1 % threshold")
    ax.axvline(0.11, color="r", ls="--", label="abort 11 %")
    ax.set_xlabel("link QBER (true, simulator only; every link, sampled slots)")
    ax.set_ylabel("density")
    ax.set_title(f"True link QBER, {config.label(f20)} Byzantine")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run_dir / "qber_distribution.png", dpi=110)
    figs.append("qber_distribution.png")
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for c in conv["curves"]:
        axes[0].plot(np.arange(1, len(c) + 1), c, lw=1)
    refs = conv["references"]
    axes[0].axhline(
        refs["optimum"], color="k", ls="--", label=f"optimum ≥ (best of {refs.get('lower_bound_from', 'references')})"
    )
    axes[0].axhline(0.95 * refs["optimum"], color="k", ls=":", label="95 % of lower bound")
    if refs.get("upper_bound") is not None:
        axes[0].axhline(refs["upper_bound"], color="b", ls="--", label="optimum ≤ (LP bound)")
        axes[0].axhline(0.95 * refs["upper_bound"], color="b", ls=":", label="95 % of upper bound")
    axes[0].axhline(conv["references"]["static"], color="gray", ls="--", label="static")
    axes[0].set_title("DQN, small instance")
    axes[0].set_xlabel("episode")
    axes[0].set_ylabel("greedy return")
    axes[0].legend(fontsize=7)
    for key, c in agents.get("curves", {}).items():
        axes[1].plot(np.arange(1, len(c) + 1), c, lw=1, label=key)
    axes[1].set_title(f"DQN agents on {config.topology}")
    axes[1].set_xlabel("episode")
    axes[1].legend(fontsize=5)
    fig.tight_layout()
    fig.savefig(run_dir / "learning_curves.png", dpi=110)
    figs.append("learning_curves.png")
    wrows = [r for r in select_rows(rows, fraction=f20, behaviours=b0, fluctuation=fl, policy="abft", alpha=0.5, threshold=0.11)
             if r.get("weights_history")]  # fmt: skip
    if wrows:
        w = np.array(sorted(wrows, key=lambda r: r["task"]["seed"])[0]["weights_history"], dtype=float)
        byz = sorted(wrows, key=lambda r: r["task"]["seed"])[0]["byzantine_nodes"]
        from qverify.network.topology import resolve

        names = [str(n) for n in resolve(config.topology).nodes]
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for i in range(w.shape[1]):
            ax.step(np.arange(len(w)), w[:, i], where="post", ls="--" if names[i] in byz else "-",
                    label=names[i] + (" (Byzantine)" if names[i] in byz else ""))  # fmt: skip
        ax.set_xlabel("control-plane epoch")
        ax.set_ylabel("voting weight")
        ax.set_title("ABFT voting weights over time")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run_dir / "voting_weights.png", dpi=110)
        figs.append("voting_weights.png")
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for thr in config.thresholds:
        av, kr = [], []
        for a in config.alphas:
            sel = select_rows(
                rows,
                fraction=config.claim_fraction(),
                behaviours=b0,
                fluctuation=True,
                policy="abft",
                alpha=a,
                threshold=thr,
            )
            av.append(np.mean(metric_values(sel, "availability")) if sel else np.nan)
            kr.append(np.mean(metric_values(sel, "key_bits_per_slot")) if sel else np.nan)
        axes[0].plot(config.alphas, av, marker="o", label=f"threshold {thr:.0%}")
        axes[1].plot(config.alphas, kr, marker="o", label=f"threshold {thr:.0%}")
    axes[0].set_xlabel("ABFT learning rate α")
    axes[0].set_ylabel("availability")
    axes[1].set_xlabel("ABFT learning rate α")
    axes[1].set_ylabel("key (bit/slot)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"ABFT sensitivity, {config.label(config.claim_fraction())} Byzantine, fluctuation on")
    fig.tight_layout()
    fig.savefig(run_dir / "sensitivity.png", dpi=110)
    figs.append("sensitivity.png")
    return figs


def _signatures(scheme: str) -> str:
    """The report's words for a control-plane signature scheme (qverify.consensus.signing.SCHEMES)."""
    if scheme == "ed25519":
        return "Ed25519 (RFC 8032)"
    return (
        "*ideal* signatures (a keyed hash only the simulator can make and check): as unforgeable for the "
        "replicas as Ed25519, with the same outcomes (no decision reads signature bytes), and a quarter less "
        "processor time; `qverify reproduce --signatures ed25519` runs real Ed25519"
    )


def network_markdown(config: GridConfig, agg: dict[str, Any], claim_rows: list[ClaimRow], conv: dict[str, Any],
                     figs: list[str], n_tasks: int, command: str,
                     pairs: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The network-level section of report.md; ``pairs`` from :func:`qverify.experiments.claims.paired_comparisons`."""
    from qverify.network.topology import describe, resolve

    info = describe(resolve(config.topology))
    counts = dict(zip(config.fractions, config.counts(), strict=True))
    lines = [
        "## Network level: the paper's experiment",
        "",
        f"Command: `{command}`. Topology **{info['name']}** ({info['nodes']} nodes, {info['links']} links, "
        f"{info['fibre_km']} km of fibre; {info['source']}; every link modelled as "
        f"{', '.join(sorted({d['protocol'] for *_e, d in resolve(config.topology).edges(data=True)}))}). "
        "Byzantine nodes per fraction: "
        + ", ".join(f"{f:.0%} → {c}" for f, c in counts.items())
        + f". {config.seeds} seeds × {config.slots} slots per cell; {config.demands} fixed demands of "
        f"{config.demand_bits:g} bit/slot; {n_tasks} tasks; DRA policies run with fluctuation on. "
        "Intervals: BCa bootstrap 95 % over seeds (none below 3 seeds; a point where every seed gave the same value).",
        "",
        "### Claims",
        "",
        summary_sentence(claim_rows),
        "",
        "| paper's claim | measured (95 % interval) | holds? | why |",
        "|---|---|---|---|",
    ]
    for c in claim_rows:
        lines.append(f"| {c['claim']} | {c['measured']} | {c['holds']} | {c['why']} |")
    lines += ["", "### Per policy (first behaviour set, fluctuation on)", "",
              "| Byzantine | policy | key (bit/slot) | availability | link QBER, true (all links) | "
              "link QBER, measured (links in use) | exposed key | control violations |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    b0 = config.behaviours[0]
    fl = int(True in config.fluctuation)

    def fmt(x: dict[str, float], pct: bool = False) -> str:
        f = ".2%" if pct else ".3g"
        if not (np.isfinite(x["low"]) and np.isfinite(x["high"])):
            return f"{x['mean']:{f}} (no interval below 3 seeds)"
        if x["low"] == x["high"]:
            return f"{x['mean']:{f}} (all seeds equal)"
        return f"{x['mean']:{f}} [{x['low']:{f}}, {x['high']:{f}}]"

    for f in config.fractions:
        for p in config.policies:
            cell = agg.get(f"{f:.2f}|{b0}|{fl}|{p}")
            if not cell:
                continue
            lines.append(f"| {counts[f]} ({f:.0%}) | {p} | {fmt(cell['key_bits_per_slot'])} | {fmt(cell['availability'], True)} | "
                         f"{fmt(cell['mean_link_qber'], True)} | "
                         f"{fmt(cell['measured_qber_in_use'], True) if 'measured_qber_in_use' in cell else 'n/a'} | "
                         f"{fmt(cell['exposed_fraction'], True)} | "
                         f"{cell['control_violations']['mean']:.0f} |")  # fmt: skip
    lines += [
        "",
        "Key, availability and exposed key are what the simulated network delivered (true values, counted "
        "by the simulator); *measured* QBER is what the verification rounds showed, the only QBER the "
        "control plane and the agent ever see; *true* QBER is the simulator's.",
    ]
    if pairs:
        lines += ["", "### Paired comparisons (same seeds, fluctuation on)", "",
                  "| Byzantine | policy − reference | seeds | availability difference | key difference (bit/slot) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for pc in pairs:
            lines.append(f"| {counts[pc['fraction']]} ({pc['fraction']:.0%}) | {pc['policy']} − {pc['reference']} | "
                         f"{pc['seeds']} | {pc['availability'].text('+.2%')} | {pc['key_bits_per_slot'].text('+.3g')} |")  # fmt: skip
        lines += ["", "Each seed runs every policy on the same Byzantine nodes, demands and fluctuations; the "
                  "interval is a BCa bootstrap of the per-seed differences."]  # fmt: skip
    lines += ["", "### Figures", ""] + [f"![{f}]({f})" for f in figs]
    lines += [
        "",
        "### What was measured, and what the paper leaves vague",
        "",
        "- The paper's voting rule `w_i ← w_i(1 − α|err|)` is kept as a score; voting weights are integer WHEAT "
        "weights that satisfy W ≥ 3·T_f + 1, so the control plane stays safe whatever the scores, up to f faulty "
        "replicas. Every Byzantine node is a faulty control-plane replica (equivocating, forgetting its log), also "
        "above f; the study across networks runs f + 1.",
        f"- Control-plane messages are signed with {_signatures(config.signatures)}.",
        "- DQN: the paper trains for 1 million episodes; here agents train for "
        f"{config.dra_episodes} episodes per grid cell, with Byzantine placement redrawn every episode. Convergence "
        f"is measured on an instance small enough to enumerate ({conv['instance']}).",
        "- The simulator is qverify's own slot-level model (no NS-3); link physics from the Ma–Razavi and GLLP "
        "closed forms; injected-state attacks calibrated on the Aer relay circuit.",
        "",
    ]
    return "\n".join(lines)


def environment_markdown(
    env: dict[str, Any], run_seconds: float, stage_seconds: dict[str, float], workers: int, executor: str
) -> str:
    """Run time and the versions that produced the numbers (a resumed run counts only its own part)."""
    import os

    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    return "\n".join(
        [
            "## Run",
            "",
            f"- Run time: **{run_seconds:.0f} s** wall for this invocation ({executor} executor, {workers} worker(s), "
            f"{os.cpu_count()} CPU(s) visible); a resumed run counts only the part it ran. Stages: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in stage_seconds.items())
            + ".",
            f"- qverify {env['qverify_version']} (commit {env['git_commit'] or 'unknown'}), Python {env['python']}, "
            f"{env['platform']}.",
            f"- Packages: {pkgs}.",
            "",
        ]
    )


def render_html(markdown: str) -> str:
    """The report's Markdown (CommonMark + tables, rendered by markdown-it-py) as a standalone HTML page."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}img{max-width:100%}")  # fmt: skip
    return f"<!doctype html>\n<meta charset='utf-8'>\n<title>qverify report</title>\n<style>{style}</style>\n{body}"
