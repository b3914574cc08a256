"""Benchmark: weighted PBFT decided instances per second (wall clock) and latency per scenario.

Prints, for n = 4, 16, 64, 128 replicas (f = (n - 1) // 3, ABFT weights), side by side in one run:
the instances decided per wall-clock second and messages per instance of the fault-free run and of
an adversarial one (f equivocating Byzantine replicas, the view-0 leader among them), each timed on
its own, with Ed25519 signatures on every message and with ideal signatures (a keyed hash only the
simulator checks); then both Ed25519 rates on 2 cores (two independent runs of half the instances
each, in two processes, wall clock of both); then, for n = 16, the requests executed by
every correct replica, the mean rounds to decision and the latency relative to the fault-free run
for every adversary scenario.

"Decided" counts a request once every correct replica has executed it (the checker's
``executed_by_all``); the rate divides that count by the wall time of the simulation alone.

Targets (issue: weighted PBFT at scale): ≥ 200 instances/s at n = 16 and ≥ 20 at n = 64 on 2 cores.

Run: python bench/bench_consensus.py [--instances 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from qverify.consensus.checker import check, history_of
from qverify.consensus.pbft import simulate
from qverify.consensus.scenarios import SCENARIOS, build, run_scenario

ADVERSARIAL = "equivocating_leader"


def _run(scenario: str, n: int, instances: int, signatures: str, seed: int = 0) -> tuple[float, int, int, int]:
    """(wall seconds, messages, executed by all correct, safety violations) of one run."""
    f = (n - 1) // 3
    schedule, requests, byzantine, net = build(scenario, n, f, seed=seed, rounds=instances)
    t0 = time.perf_counter()
    res = simulate(schedule, requests, byzantine, net, seed=seed, until=5_000.0, signatures=signatures)
    dt = time.perf_counter() - t0
    verdict = check(history_of(res.executed, res.byzantine, [v for _t, v in requests]))
    return dt, res.messages, verdict.executed_by_all, verdict.violations


def _throughput(scenario: str, n: int, instances: int, signatures: str) -> tuple[float, float, int, int]:
    """(decided instances/s, messages/instance, executed by all correct, safety violations)."""
    dt, messages, done, bad = _run(scenario, n, instances, signatures)
    return done / dt, messages / max(done, 1), done, bad


def _two_cores(scenario: str, n: int, instances: int) -> float:
    """Ed25519 instances/s over two processes, each running half the instances (seeds 0 and 1)."""
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_run, ["fault_free"] * 2, [4] * 2, [4] * 2, ["ed25519"] * 2))  # start the workers
        t0 = time.perf_counter()
        runs = list(pool.map(_run, [scenario] * 2, [n] * 2, [instances // 2] * 2, ["ed25519"] * 2, [0, 1]))
        dt = time.perf_counter() - t0
    return sum(r[2] for r in runs) / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    sizes = [
        (n, args.instances if n < 64 else max(10, args.instances // (5 if n == 64 else 10))) for n in (4, 16, 64, 128)
    ]
    for signatures in ("ed25519", "ideal"):
        print(f"Throughput, {signatures} signatures (simulated network, 1 core): fault-free | {ADVERSARIAL}")
        for n, instances in sizes:
            cells = []
            for sc in ("fault_free", ADVERSARIAL):
                rate, per, done, bad = _throughput(sc, n, instances, signatures)
                cells.append(f"{rate:8.1f} inst/s {per:7.0f} msg/inst {done:4d}/{instances} by all, {bad} unsafe")
            print(f"  n={n:3d} f={(n - 1) // 3:2d}: " + " | ".join(cells))
    print(
        f"Throughput, ed25519 signatures, 2 cores (two independent runs in two processes): fault-free | {ADVERSARIAL}"
    )
    for n, instances in sizes:
        rates = [_two_cores(sc, n, instances) for sc in ("fault_free", ADVERSARIAL)]
        print(f"  n={n:3d}: {rates[0]:8.1f} inst/s | {rates[1]:8.1f} inst/s")
    n, f = 16, 5
    print(f"Latency relative to fault-free, n={n}, f={f}, {args.seeds} seeds x {args.instances // 2} instances")
    for sc in SCENARIOS:
        rs = [run_scenario(sc, n, f, seed=s, rounds=args.instances // 2) for s in range(args.seeds)]
        print(
            f"  {sc:20s} violations {sum(r.violations for r in rs):4d}  "
            f"executed by all correct {sum(r.executed_by_all for r in rs):4d}/{sum(r.requests for r in rs):4d}  "
            f"rounds {np.mean([r.rounds_to_decision for r in rs]):7.2f}  "
            f"latency x{np.mean([r.latency_ratio for r in rs]):6.2f}"
        )


if __name__ == "__main__":
    main()
