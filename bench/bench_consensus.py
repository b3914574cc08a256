"""Benchmark: weighted PBFT decided instances per second (wall clock) and latency per scenario.

Prints, for n = 4, 16, 64, 128 replicas (f = (n - 1) // 3, ABFT weights), side by side in one run:
the instances decided per wall-clock second and messages per instance of the fault-free run and of
an adversarial one (f equivocating Byzantine replicas, the view-0 leader among them), each timed on
its own; then, for n = 16, the requests executed by every correct replica, the mean rounds to
decision and the latency relative to the fault-free run for every adversary scenario.

"Decided" counts a request once every correct replica has executed it (the checker's
``executed_by_all``); the rate divides that count by the wall time of the simulation alone.

Targets (issue: weighted PBFT at scale): ≥ 200 instances/s at n = 16 and ≥ 20 at n = 64 on 2 cores.

Run: python bench/bench_consensus.py [--instances 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qverify.consensus.checker import check, history_of
from qverify.consensus.pbft import simulate
from qverify.consensus.scenarios import SCENARIOS, build, run_scenario

ADVERSARIAL = "equivocating_leader"


def _throughput(scenario: str, n: int, instances: int) -> tuple[float, float, int, int]:
    """(decided instances/s, messages/instance, executed by all correct, safety violations)."""
    f = (n - 1) // 3
    schedule, requests, byzantine, net = build(scenario, n, f, seed=0, rounds=instances)
    t0 = time.perf_counter()
    res = simulate(schedule, requests, byzantine, net, seed=0, until=5_000.0)
    dt = time.perf_counter() - t0
    verdict = check(history_of(res.executed, res.byzantine, [v for _t, v in requests]))
    done = verdict.executed_by_all
    bad = verdict.violations
    return done / dt, res.messages / max(done, 1), done, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"Throughput (simulated network, 1 core of Python): fault-free | {ADVERSARIAL}")
    for n in (4, 16, 64, 128):
        instances = args.instances if n < 64 else max(10, args.instances // (5 if n == 64 else 10))
        cells = []
        for sc in ("fault_free", ADVERSARIAL):
            rate, per, done, bad = _throughput(sc, n, instances)
            cells.append(f"{rate:8.1f} inst/s {per:7.0f} msg/inst {done:4d}/{instances} by all, {bad} unsafe")
        print(f"  n={n:3d} f={(n - 1) // 3:2d}: " + " | ".join(cells))
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
