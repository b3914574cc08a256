"""Benchmark: weighted PBFT decided instances per second (wall clock) and latency per scenario.

Prints, for n = 4, 16, 64 replicas (f = (n - 1) // 3, fault-free, ABFT weights), the instances
decided per wall-clock second of simulation and messages per instance; then, for n = 16, the
requests executed by every correct replica, the mean rounds to decision and the latency relative to
the fault-free run for every adversary scenario.

Run: python bench/bench_consensus.py [--instances 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qverify.consensus.scenarios import SCENARIOS, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("Throughput (fault-free, simulated network, 1 core of Python)")
    for n in (4, 16, 64):
        f = (n - 1) // 3
        instances = args.instances if n < 64 else max(20, args.instances // 5)
        t0 = time.perf_counter()
        r = run_scenario("fault_free", n, f, seed=0, rounds=instances)
        dt = time.perf_counter() - t0
        # run_scenario simulates the scenario and its fault-free baseline: two runs.
        print(
            f"  n={n:3d} f={f:2d}: {2 * r.decided / dt:10.1f} decided instances/s, "
            f"{r.messages / r.decided:8.0f} messages/instance, violations {r.violations}"
        )
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
