"""Benchmark: weighted PBFT under message loss, counted where users care (every correct replica).

For n = 4 (f = 1) and n = 7 (f = 2) and loss 5 %, 10 %, 20 %, runs ``--seeds`` random seeds of 120
client requests (one every 0.2 delays) to the end of the simulated time and prints the runs in which
some request did not reach every correct replica, and the unsafe runs (the independent checker).

Run: python bench/bench_pbft_loss.py [--seeds 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qverify.consensus.checker import History, check
from qverify.consensus.pbft import NetConfig, Schedule, Simulation
from qverify.consensus.weights import WeightVector

REQUESTS = 120


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    args = ap.parse_args()
    print(f"{'n':>3} {'loss':>5} {'runs':>5} {'not every request at every correct replica':>44} {'unsafe':>7} {'s':>6}")
    for n, f in ((4, 1), (7, 2)):
        schedule = Schedule((WeightVector(0, (1,) * n, f=f),))
        for loss in (0.05, 0.10, 0.20):
            t0 = time.perf_counter()
            short = unsafe = 0
            for seed in range(args.seeds):
                sim = Simulation(schedule, {}, NetConfig(0.5, 1.5, drop_prob=loss), np.random.default_rng(seed))
                for i in range(REQUESTS):
                    sim.request(f"r{i}", 0.2 * i)
                sim.run(until=50_000.0)
                v = check(
                    History({r.idx: dict(r.executed) for r in sim.replicas}, frozenset(), frozenset(sim.requests))
                )
                short += v.executed_by_all < REQUESTS
                unsafe += not v.safe
            dt = time.perf_counter() - t0
            print(f"{n:>3} {loss:>5.0%} {args.seeds:>5} {short:>44} {unsafe:>7} {dt:>6.1f}")


if __name__ == "__main__":
    main()
