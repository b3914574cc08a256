"""`qverify train` and `qverify evaluate`: the DRA agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    DeadTimeOption,
    DoubleClick,
    DoubleClickOption,
    TestLevelsOption,
    _emit_json,
    _jax_cache,
    _progress,
    app,
    finite_float,
    network_link,
    out,
    parse_test_levels,
)
from qverify.errors import ParameterError, QverifyError


def _dra_env(topology: str, byzantine: float, demands: int, demand_bits: float, steps: int, seed: int,
             double_click: str = "squash", dead_time_slots: int = 0,
             test_levels: tuple[float, ...] | None = None) -> Any:  # fmt: skip
    from qverify.dra import env as E
    from qverify.network.adversary import Adversary
    from qverify.network.sim import Fluctuation, SimConfig
    from qverify.network.topology import resolve

    if steps < 1:
        raise ParameterError("steps", steps, "[1, inf)")
    cfg = SimConfig(n_demands=demands, demand_bits=demand_bits, fluctuation=Fluctuation(fade_rate=0.02),
                    adversary=Adversary(fraction=byzantine), link=network_link(double_click, dead_time_slots),
                    test_levels=test_levels)  # fmt: skip
    return E.from_network(resolve(topology), cfg, seed=seed, max_steps=steps)


@app.command()
def train(
    topology: Annotated[str, typer.Option(help="Built-in name or a .graphml / .json file.")] = "secoqc",
    episodes: Annotated[int, typer.Option(help="Training episodes per seed.")] = 500,
    seeds: Annotated[int, typer.Option(help="Agents trained in parallel (vmap over seeds).")] = 4,
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    demands: Annotated[int, typer.Option(help="Node pairs requesting key.")] = 3,
    demand_bits: Annotated[float, typer.Option(parser=finite_float, help="Key bits per demand per slot.")] = 3e6,
    steps: Annotated[int, typer.Option(help="Slots per episode.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the instance and of training.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for policy and learning curve.")] = Path("policies"),
    double_click: DoubleClickOption = DoubleClick.SQUASH,
    dead_time_slots: DeadTimeOption = 0,
    test_levels: TestLevelsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Train the branching DQN (prioritised replay, Adam 1e-3, γ 0.99): policy file + learning-curve PNG."""
    _jax_cache()
    from qverify.dra import dqn
    from qverify.dra import train as T

    levels = parse_test_levels(test_levels)
    env_params = _dra_env(topology, byzantine, demands, demand_bits, steps, seed, double_click, dead_time_slots,
                          levels)  # fmt: skip
    config = dqn.DQNConfig()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QverifyError(f"output folder {str(out_dir)!r} cannot be created: {exc.strerror}") from None
    with _progress("episodes") as bar:
        task = bar.add_task("training", total=episodes)
        res = T.train(env_params, config, episodes, seeds, seed, progress=lambda k: bar.update(task, completed=k))
    refs = T.reference_returns(env_params, dqn.eval_keys(config))
    best = int(np.argmax(res.eval_return[:, -1]))
    stem = out_dir / f"dqn_{topology.replace('/', '_')}_seed{seed}"
    meta = {"topology": topology, "byzantine": byzantine, "demands": demands, "demand_bits": demand_bits,
            "steps": steps, "seed": seed, "episodes": episodes, "double_click": str(double_click),
            "dead_time_slots": dead_time_slots, "test_levels": None if levels is None else list(levels),
            "qverify_version": __version__}  # fmt: skip
    dqn.save_policy(stem.with_suffix(".msgpack"), T.params_of_seed(res.params, best), env_params, config, meta)
    png = stem.with_suffix(".png")
    from qverify.dra.plots import plot_learning_curves

    plot_learning_curves(res.eval_return, refs, png)
    summary: dict[str, Any] = {
        "final_eval_return_mean": float(res.eval_return[:, -1].mean()),
        "references": refs,
        "seconds": res.seconds,
        "policy": str(stem.with_suffix(".msgpack")),
        "curve_png": str(png),
    }
    if "optimum" in refs:
        summary["episodes_to_95pct_optimum"] = [T.episodes_to_reach(c, 0.95 * refs["optimum"]) for c in res.eval_return]
    if as_json:
        _emit_json({"params": meta, "summary": summary, "eval_return": res.eval_return.tolist()})
        return
    table = Table(title=f"DQN on {topology}: {episodes} episodes x {seeds} seeds ({res.seconds:.0f} s)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("final greedy return (mean over seeds)", f"{summary['final_eval_return_mean']:.2f}")
    for k, v in refs.items():
        table.add_row(f"reference: {k}", f"{v:.2f}" if isinstance(v, float) else str(v))
    if "episodes_to_95pct_optimum" in summary:
        table.add_row("episodes to 95 % of optimum", str(summary["episodes_to_95pct_optimum"]))
    table.add_row("policy", summary["policy"])
    table.add_row("learning curve", summary["curve_png"])
    out.print(table)


@app.command()
def evaluate(
    policy: Annotated[Path, typer.Argument(help="A .msgpack policy written by `qverify train`.")],
    topology: Annotated[str, typer.Option(help="Topology the policy is evaluated on.")] = "secoqc",
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    demands: Annotated[int, typer.Option(help="Node pairs requesting key.")] = 3,
    demand_bits: Annotated[float, typer.Option(parser=finite_float, help="Key bits per demand per slot.")] = 3e6,
    steps: Annotated[int, typer.Option(help="Slots per episode.")] = 50,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the instance and the episodes.")] = 0,
    double_click: DoubleClickOption = DoubleClick.SQUASH,
    dead_time_slots: DeadTimeOption = 0,
    test_levels: TestLevelsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Evaluate a trained policy against static, random and greedy baselines (same episodes)."""
    _jax_cache()
    import jax

    from qverify.dra import baselines as B
    from qverify.dra import dqn
    from qverify.dra import train as T

    if episodes < 1:
        raise ParameterError("episodes", episodes, "[1, inf)")
    levels = parse_test_levels(test_levels)
    env_params = _dra_env(topology, byzantine, demands, demand_bits, steps, seed, double_click, dead_time_slots,
                          levels)  # fmt: skip
    params, config, _meta = dqn.load_policy(policy, env_params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1000), episodes)
    rows: dict[str, dict[str, float]] = {}
    policies = {
        "dqn": T.dqn_policy(params, env_params, config.hidden),
        "static": B.static_policy(env_params),
        "random": B.random_policy(env_params),
        "greedy": B.greedy_policy(env_params),
    }
    # One compiled program for the four policies (the environment's step compiled once, not four
    # times), each on exactly the episodes it would see alone.
    for name, ev in B.evaluate_many(policies, env_params, keys).items():
        rows[name] = {
            "return": float(ev["returns"].mean()),
            "return_std": float(ev["returns"].std(ddof=1)) if episodes > 1 else 0.0,
            "delivered_bits": float(ev["delivered_bits"].mean()),
            "served": float(ev["served"].mean()),
            "qber_var": float(np.nanmean(ev["qber_var"])),
            "violations": float(ev["violations"].mean()),
        }
    if as_json:
        _emit_json({"params": {"topology": topology, "byzantine": byzantine, "episodes": episodes, "seed": seed,
                               "double_click": str(double_click), "dead_time_slots": dead_time_slots,
                               "test_levels": None if levels is None else list(levels)},
                    "results": rows, "qverify_version": __version__})  # fmt: skip
        return
    table = Table(title=f"Policy evaluation on {topology}, {episodes} episodes")
    for col in ("policy", "return", "delivered (bit/episode)", "served", "QBER variance", "violations"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, f"{r['return']:.2f} ± {r['return_std']:.2f}", f"{r['delivered_bits']:.3e}",
                      f"{r['served']:.3f}", f"{r['qber_var']:.3e}", f"{r['violations']:.2f}")  # fmt: skip
    out.print(table)
