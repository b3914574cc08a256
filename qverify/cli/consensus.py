"""`qverify consensus`: weighted-PBFT scenarios."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    AttackMethod,
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
    must report the fork), and the performance attacks slow_leader (a leader pacing just under the
    timeout), null_churn (a leader proposing no-ops), censor (a leader skipping one request) and flood
    (junk messages).
    """
    from qverify.consensus.committee import tolerated
    from qverify.consensus.scenarios import SCENARIOS, WEIGHTINGS, run_scenario

    if scenario not in SCENARIOS:
        raise ChoiceError("scenario", scenario, SCENARIOS)
    if weighting not in WEIGHTINGS:
        raise ChoiceError("weighting", weighting, WEIGHTINGS)
    if nodes < 1:
        raise ParameterError("nodes", nodes, "[1, inf)")
    if faulty < 0 or nodes < 3 * faulty + 1:
        raise ParameterError("faulty", faulty, f"[0, {tolerated(nodes)}] for {nodes} nodes (n ≥ 3f + 1)")
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


@app.command()
def attack(
    method: Annotated[
        AttackMethod, typer.Option(help="fuzz (randomised attacks) or twins (Twins-style search).")
    ] = AttackMethod.FUZZ,
    nodes: Annotated[
        int, typer.Option(help="Replicas n (fuzz: 4–64; twins: 4–7, its cases are enumerated before sampling).")
    ] = 4,
    attackers: Annotated[
        int | None,
        typer.Option(help="Byzantine replicas (fuzz) or twinned identities (twins); default f = (n − 1) // 3."),
    ] = None,
    cases: Annotated[int, typer.Option(help="Fuzz seeds, or Twins cases sampled (≥ 1).")] = 100,
    seed: Annotated[int, typer.Option(help="First fuzz seed / Twins sampling seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Search for attacks on weighted PBFT and judge every run with the independent checker.

    fuzz: Byzantine replicas replay, doctor and relabel messages, forge certificates into
    ViewChanges, build doctored NewViews, send random checkpoints and state transfers (colliding
    logs included), under 5 % loss, then the network heals; between attacks they equivocate, pace
    proposals under the timeout, churn no-ops, censor a request or flood junk (drawn per seed);
    clients send arbitrary payloads. Latency and throughput are reported relative to the same seed
    without attackers. twins: Byzantine identities run as two honest copies on opposite
    sides of partitions. With at most f attackers no run may be unsafe or leave a request short of a
    correct replica; with f + 1 forks are expected (the harness's self-test).
    """
    from qverify.consensus.committee import tolerated
    from qverify.consensus.fuzz import FuzzCase, fuzz
    from qverify.consensus.twins import search

    f = tolerated(nodes)
    k = f if attackers is None else attackers
    if not 4 <= nodes <= (64 if method == AttackMethod.FUZZ else 7):
        raise ParameterError("nodes", nodes, f"[4, {64 if method == AttackMethod.FUZZ else 7}] for {method}")
    if not 0 <= k < nodes:
        raise ParameterError("attackers", k, f"[0, {nodes - 1}]")
    if cases < 1:
        raise ParameterError("cases", cases, "[1, inf)")
    if method == AttackMethod.FUZZ:
        unsafe = short = 0
        first: int | None = None
        lat_ratio: list[float] = []
        thr_ratio: list[float] = []
        styles: dict[str, int] = {}
        with _progress("cases") as bar:
            task = bar.add_task(f"fuzz n={nodes} attackers={k}", total=cases)
            for s in range(seed, seed + cases):
                r = fuzz(FuzzCase(n=nodes, f=k, seed=s))
                # The same seed without attackers: the degradation the attack caused.
                base = fuzz(FuzzCase(n=nodes, f=0, seed=s))
                if not r.verdict.safe:
                    unsafe += 1
                    first = s if first is None else first
                short += r.verdict.executed_by_all < FuzzCase.requests
                styles[r.style] = styles.get(r.style, 0) + 1
                lat_ratio.append(r.latency / base.latency)
                thr_ratio.append(r.throughput / base.throughput if base.throughput else float("nan"))
                bar.update(task, advance=1)
        summary: dict[str, object] = {
            "cases": cases,
            "unsafe": unsafe,
            "not_live": short,
            "first_unsafe_seed": first,
            "latency_x_fault_free_mean": round(float(np.mean(lat_ratio)), 3),
            "latency_x_fault_free_worst": round(float(np.max(lat_ratio)), 3),
            "throughput_x_fault_free_mean": round(float(np.nanmean(thr_ratio)), 3),
            "throughput_x_fault_free_worst": round(float(np.nanmin(thr_ratio)), 3),
            "attacker_styles": ", ".join(f"{k_}={v}" for k_, v in sorted(styles.items())),
        }
    else:
        found = search(nodes, f, k, limit=cases, sample_seed=seed)
        summary = {"cases": found.cases, "unsafe": found.unsafe, "not_live": found.not_live,
                   "first_unsafe": None if found.first_unsafe is None else repr(found.first_unsafe)}  # fmt: skip
    params = {"method": method, "nodes": nodes, "f": f, "attackers": k, "cases": cases, "seed": seed}
    if as_json:
        _emit_json({"params": params, "qverify_version": __version__, "summary": summary})
        return
    table = Table(title=f"{method} on weighted PBFT, n={nodes}, f={f}, {k} attacker(s)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
