"""Benchmark: Twins-style adversary search on weighted PBFT, thousands of cases in one run.

For each size it runs the cases with f twinned identities (the fault model: every case must be safe,
and live once the network heals) and with f + 1 (beyond it: the search must find forks), side by
side, and prints cases per second, unsafe cases and cases where some request did not reach every
correct replica.

Run: python bench/bench_twins.py [--sample 2000]
"""

from __future__ import annotations

import argparse
import time

from qverify.consensus.twins import search


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=2000, help="cases sampled per row (n = 4 rows are exhaustive)")
    args = ap.parse_args()
    rows = [
        ("n=4 f=1, 2 phases, all cases", 4, 1, None, 2, None),
        ("n=4 f=1, 3 phases", 4, 1, None, 3, args.sample),
        ("n=4 f=1, checkpoint every seq", 4, 1, None, 2, None),
        ("n=5 f=1, 2 phases", 5, 1, None, 2, args.sample),
        ("n=5 f=1 weights 2,2,1,1,1", 5, 1, (2, 2, 1, 1, 1), 2, args.sample),
        ("n=7 f=2, 2 phases", 7, 2, None, 2, args.sample // 2),
    ]
    print(f"{'case set':32s} {'twins':>5s} {'cases':>6s} {'cases/s':>8s} {'unsafe':>7s} {'not live':>9s}")
    for label, n, f, weights, phases, limit in rows:
        ci = 1 if "checkpoint every" in label else 10
        for twins in (f, f + 1):
            t0 = time.perf_counter()
            seed = None if limit is None else 0
            r = search(n, f, twins, phases, weights, limit=limit, sample_seed=seed, checkpoint_interval=ci)
            dt = time.perf_counter() - t0
            print(f"{label:32s} {twins:5d} {r.cases:6d} {r.cases / dt:8.0f} {r.unsafe:7d} {r.not_live:9d}")


if __name__ == "__main__":
    main()
