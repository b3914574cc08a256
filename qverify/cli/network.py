"""`qverify network` and `qverify simulate`: topologies and the network model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    DeadTimeOption,
    DoubleClick,
    DoubleClickOption,
    KeyRelay,
    PolicyName,
    Preset,
    _emit_json,
    _jax_cache,
    _progress,
    app,
    finite_float,
    network_link,
    out,
)
from qverify.errors import ChoiceError, ParameterError, QverifyError

if TYPE_CHECKING:
    from qverify.network.sim import SimResult

network_app = typer.Typer(help="Built-in QKD network topologies.", no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("list")
def network_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the built-in topologies with their sources."""
    from qverify.network.topology import BUILTIN, describe, load_builtin

    rows = [describe(load_builtin(name)) for name in sorted(BUILTIN)]
    if as_json:
        _emit_json({"topologies": rows, "qverify_version": __version__})
        return
    table = Table(title="Built-in topologies")
    for col in ("name", "nodes", "links", "fibre (km)", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["nodes"]), str(r["links"]), f"{r['fibre_km']:g}", r["source"])
    out.print(table)


@network_app.command("show")
def network_show(
    topology: Annotated[str, typer.Argument(help="Built-in name or a .graphml / .json file.")],
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the graph with link rates.")] = None,
    preset: Annotated[Preset, typer.Option(help="Link physics preset.")] = Preset.LCQ2012,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a topology's links with their fibre lengths and nominal key rates."""
    from qverify.network.plot import link_rates_bps, plot_topology
    from qverify.network.topology import describe, resolve
    from qverify.physics import PRESETS

    if preset not in PRESETS:
        raise ChoiceError("preset", preset, sorted(PRESETS))
    if plot is not None and not plot.parent.exists():
        raise QverifyError(f"plot folder {str(plot.parent)!r} does not exist")
    g = resolve(topology)
    params = PRESETS[preset]
    rates = link_rates_bps(g, params)
    rows = [
        {"a": str(u), "b": str(v), "length_km": d["length_km"], "protocol": d["protocol"], "key_rate_bps": float(r)}
        for (u, v, d), r in zip(g.edges(data=True), rates, strict=True)
    ]
    if plot is not None:
        plot_topology(g, params, plot)
    if as_json:
        _emit_json({**describe(g), "links_detail": rows, "params": params.to_dict(), "qverify_version": __version__})
        return
    info = describe(g)
    table = Table(title=f"{info['name']} — {info['source']}")
    for col in ("link", "length (km)", "protocol", "key rate (bit/s)"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['a']}–{r['b']}", f"{r['length_km']:g}", r["protocol"], f"{r['key_rate_bps']:.3e}")
    out.print(table)
    if plot is not None:
        out.print(f"plot written to {plot}")


@app.command()
def simulate(
    topology: Annotated[str, typer.Option(help="Built-in name or a .graphml / .json file.")] = "secoqc",
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    behaviours: Annotated[str, typer.Option(help="Comma list: inject,drop,corrupt,lie,slander.")] = "inject,drop,lie",
    slots: Annotated[int, typer.Option(help="Number of time slots.")] = 1000,
    slot_s: Annotated[float, typer.Option(parser=finite_float, help="Slot length in seconds.")] = 1.0,
    demands: Annotated[int, typer.Option(help="Number of node pairs requesting key.")] = 4,
    demand_bits: Annotated[
        float, typer.Option(parser=finite_float, help="Key bits requested per demand per slot.")
    ] = 2000.0,
    relay: Annotated[KeyRelay, typer.Option(help="Key relay over trusted nodes.")] = KeyRelay.SINGLE,
    policy: Annotated[
        PolicyName, typer.Option(help="baseline (trust all reports), pbft_equal, or abft (fidelity-weighted PBFT).")
    ] = PolicyName.BASELINE,
    fluctuation: Annotated[bool, typer.Option(help="Fluctuating loss and drifts on/off.")] = True,
    epoch_slots: Annotated[int, typer.Option(help="Slots per control-plane epoch (reports, weights, decisions).")] = 10,
    verify_rounds: Annotated[
        int, typer.Option(help="BSM test rounds per link and epoch, sampled from the protocol circuits (>= 3).")
    ] = 10_000,
    node_rounds: Annotated[
        int,
        typer.Option(
            help="GHZ node-check rounds per node and epoch, split over the node's check partners (>= 0; 0: no checks)."
        ),
    ] = 3_000,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    seeds: Annotated[
        int,
        typer.Option(
            help="Run this many seeds (seed, seed + 1, …) in one vmapped program, each with its own control "
            "plane, and report the mean over seeds with its 95 % BCa interval (≥ 1)."
        ),
    ] = 1,
    block_size: Annotated[
        float | None,
        typer.Option(
            parser=finite_float,
            help="Finite keys: pulses (MDI: pulse pairs) per block, ≥ 1; a link's key reaches its pool only when "
            "its block closes, at the block's finite-key cost. Default: asymptotic keys.",
        ),
    ] = None,
    epsilon: Annotated[float, typer.Option(parser=finite_float, help="Finite keys: ε_sec = ε_cor, in (0, 1).")] = 1e-10,
    double_click: DoubleClickOption = DoubleClick.SQUASH,
    dead_time_slots: DeadTimeOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Simulate the network slot by slot (one jit-compiled JAX model; the control plane runs between
    epochs): availability, delivered key, true and measured QBER, exposed key bits."""
    _jax_cache()
    from qverify.network.adversary import Adversary
    from qverify.network.sim import Fluctuation, SimConfig
    from qverify.network.sim import simulate_seeds as run_seeds
    from qverify.network.topology import resolve

    g = resolve(topology)
    adv = Adversary(fraction=byzantine, behaviours=tuple(b for b in behaviours.split(",") if b))
    config = SimConfig(
        slot_s=slot_s, n_demands=demands, demand_bits=demand_bits, relay=relay, adversary=adv,
        fluctuation=Fluctuation() if fluctuation else Fluctuation.off(), epoch_slots=epoch_slots,
        verify_rounds=verify_rounds, node_rounds=node_rounds,
        block_pulses=() if block_size is None else (block_size,), key_epsilon=epsilon,
        link=network_link(double_click, dead_time_slots),
    )  # fmt: skip
    from qverify.consensus.control import make_policy

    if slots < 1:
        raise ParameterError("slots", slots, "[1, inf)")
    if seeds < 1:
        raise ParameterError("seeds", seeds, "[1, inf)")
    seed_list = list(range(seed, seed + seeds))
    with _progress("slots") as bar:
        task = bar.add_task("simulating" if seeds == 1 else f"simulating {seeds} seeds", total=slots)
        results = run_seeds(g, config, slots, seed_list, [make_policy(policy) for _ in seed_list],
                            lambda k: bar.update(task, completed=k))  # fmt: skip
    if seeds > 1:
        _print_seeds(results, seed_list, f"{topology}: {slots} slots, {byzantine:.0%} Byzantine, policy {policy}",
                     as_json)  # fmt: skip
        return
    res = results[0]
    summary = res.summary()
    if as_json:
        _emit_json({"params": res.params, "summary": summary, "links": res.link_table(),
                    "qverify_version": __version__})  # fmt: skip
        return
    table = Table(title=f"{topology}: {slots} slots, {byzantine:.0%} Byzantine, policy {policy}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, label, fmt in RUN_FIGURES:
        table.add_row(label, _show(summary[key], fmt))
    table.add_row("worst link QBER (true, mean over slots)", _show(summary["max_link_qber"], "%"))
    table.add_row("unservable demands", str(summary["unservable_demands"]))
    table.add_row("Byzantine nodes", ", ".join(summary["byzantine_nodes"]) or "none")
    out.print(table)


RUN_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("availability", "availability", "%"),
    ("delivered_bits_per_slot", "delivered key (bit/slot)", "g"),
    ("exposed_fraction", "exposed key fraction", "%"),
    ("mean_link_qber", "mean link QBER (true, simulator only)", "%"),
    ("measured_mean_link_qber", "mean link QBER (measured by the verification rounds)", "%"),
    ("measured_mean_node_check_qber", "mean node-check QBER-equivalent (measured by the GHZ checks)", "%"),
    ("false_abort_rate", "false abort rate (link-slots, simulator only)", "%"),
    ("missed_abort_rate", "missed abort rate (link-slots, simulator only)", "%"),
    ("interval_coverage", "95 % interval coverage of the true QBER (simulator only)", "%"),
)
"""Run-level figures of ``qverify simulate`` (per run, and over seeds with ``--seeds``): key, label, format."""


def _show(x: float, fmt: str) -> str:
    """A figure as a percentage (``fmt`` "%") or with four significant digits; "—" when not finite."""
    import math

    return "—" if not math.isfinite(x) else (f"{x:.4%}" if fmt == "%" else f"{x:.4g}")


def _print_seeds(results: list[SimResult], seeds: list[int], title: str, as_json: bool) -> None:
    """Mean over seeds with a 95 % BCa interval (none with fewer than three seeds) for each figure."""
    import math

    from qverify.experiments.stats import over_seeds

    summaries = [r.summary() for r in results]
    rows = {key: over_seeds([s[key] for s in summaries]) for key, _label, _fmt in RUN_FIGURES}
    if as_json:
        _emit_json({"params": {**results[0].params, "seed": None}, "seeds": seeds, "over_seeds": rows,
                    "per_seed": summaries, "qverify_version": __version__})  # fmt: skip
        return
    table = Table(title=f"{title}, seeds {seeds[0]}–{seeds[-1]}")
    for col in ("quantity", "mean over seeds", "95 % interval (BCa)", "lowest – highest seed"):
        table.add_column(col, justify="left" if col == "quantity" else "right")

    for key, label, fmt in RUN_FIGURES:
        r = rows[key]
        finite = [v for v in r["per_seed"] if math.isfinite(v)]
        interval = "< 3 seeds" if not math.isfinite(r["low"]) else f"[{_show(r['low'], fmt)}, {_show(r['high'], fmt)}]"
        spread = f"{_show(min(finite), fmt)} – {_show(max(finite), fmt)}" if finite else "—"
        table.add_row(label, _show(r["mean"], fmt), interval, spread)
    out.print(table)
