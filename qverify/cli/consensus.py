"""`qverify consensus`: weighted-PBFT scenarios."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    Scenario,
    Signatures,
    Weighting,
    _emit_json,
    _progress,
    app,
    out,
)
from qverify.errors import ChoiceError, ParameterError


@app.command()
def consensus(
    nodes: Annotated[int, typer.Option(help="Number of replicas n (≥ 3f + 1).")] = 10,
    faulty: Annotated[int, typer.Option(help="Byzantine replicas f tolerated (and injected).")] = 3,
    scenario: Annotated[Scenario, typer.Option(help="Adversary scenario.")] = Scenario.SLEEPER,
    rounds: Annotated[int, typer.Option(help="Consensus instances (client requests) per run.")] = 200,
    seeds: Annotated[int, typer.Option(help="Independent runs (seeds 0..K-1).")] = 1,
    weighting: Annotated[
        Weighting, typer.Option(help="abft (fidelity-weighted) or equal (plain PBFT).")
    ] = Weighting.ABFT,
    signatures: Annotated[
        Signatures,
        typer.Option(
            help="How protocol messages are signed: ed25519, or ideal (a keyed hash only the simulator "
            "checks; as unforgeable for the replicas, ~100x cheaper)."
        ),
    ] = Signatures.ED25519,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run weighted PBFT under an adversary: agreement violations, decisions, latency vs fault-free.

    Scenarios: fault_free, equivocating_leader, silent_heavy, liars, slanderers, sleeper, vote_delay,
    amnesia, weight_race, duplicate_votes, partition, drops, f_plus_one (f + 1 faults: the checker
    must report the fork).
    """
    from qverify.consensus.scenarios import SCENARIOS, WEIGHTINGS, run_scenario

    if scenario not in SCENARIOS:
        raise ChoiceError("scenario", scenario, SCENARIOS)
    if weighting not in WEIGHTINGS:
        raise ChoiceError("weighting", weighting, WEIGHTINGS)
    if nodes < 1:
        raise ParameterError("nodes", nodes, "[1, inf)")
    if faulty < 0 or nodes < 3 * faulty + 1:
        raise ParameterError("faulty", faulty, f"[0, {(nodes - 1) // 3}] for {nodes} nodes (n ≥ 3f + 1)")
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    if seeds < 1:
        raise ParameterError("seeds", seeds, "[1, inf)")
    results = []
    with _progress("seeds") as bar:
        task = bar.add_task(f"{scenario} n={nodes} f={faulty}", total=seeds)
        for seed in range(seeds):
            results.append(run_scenario(scenario, nodes, faulty, seed, rounds, weighting, signatures=signatures))
            bar.update(task, advance=1)
    summary = {
        "violations": sum(r.violations for r in results),
        "decided": sum(r.decided for r in results),
        "requests": sum(r.requests for r in results),
        "rounds_to_decision": float(np.mean([r.rounds_to_decision for r in results])),
        "latency_ratio": float(np.mean([r.latency_ratio for r in results])),
    }
    params = {"nodes": nodes, "faulty": faulty, "scenario": scenario, "rounds": rounds, "seeds": seeds,
              "weighting": weighting, "signatures": signatures}  # fmt: skip
    if as_json:
        _emit_json({"params": params, "qverify_version": __version__, "summary": summary,
                    "runs": [r.to_dict() for r in results]})  # fmt: skip
        return
    table = Table(title=f"Weighted PBFT, scenario {scenario}, n={nodes}, f={faulty}, {seeds} seed(s)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("agreement violations", str(summary["violations"]))
    table.add_row("decided / requests", f"{summary['decided']} / {summary['requests']}")
    table.add_row("rounds to decision (mean)", f"{summary['rounds_to_decision']:.2f}")
    table.add_row("latency relative to fault-free", f"{summary['latency_ratio']:.2f}x")
    table.add_row("final weights (seed 0)", " ".join(map(str, results[0].weights[-1])))
    out.print(table)
