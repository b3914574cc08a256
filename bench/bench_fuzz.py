"""Benchmark: randomised attacks on weighted PBFT (qverify.consensus.fuzz), f vs f + 1 attackers.

For each size, runs ``--seeds`` fuzzing cases (30 random attacks each: replays, doctored and
relabelled messages, forged certificates in ViewChanges, NewViews from doctored ViewChange sets,
random checkpoints, doctored state transfers, stray pre-prepares; 5 % loss until the network heals)
with f attackers and with f + 1, side by side, and prints the runs the independent checker finds
unsafe, the runs where a request missed a correct replica, and cases per second.

Run: python bench/bench_fuzz.py [--seeds 1000]
"""

from __future__ import annotations

import argparse
import time

from qverify.consensus.fuzz import FuzzCase, fuzz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1000, help="cases at n = 4 (n = 7: a third, n = 16: a thirtieth)")
    args = ap.parse_args()
    print(f"{'n':>3} {'attackers':>10} {'cases':>6} {'unsafe':>7} {'not live':>9} {'cases/s':>8}")
    for n, share in ((4, 1), (7, 3), (16, 30)):
        f = (n - 1) // 3
        for attackers in (f, f + 1):
            seeds = max(1, args.seeds // share)
            t0 = time.perf_counter()
            unsafe = short = 0
            for seed in range(seeds):
                r = fuzz(FuzzCase(n=n, f=attackers, seed=seed, attacks=30))
                unsafe += not r.verdict.safe
                short += r.verdict.executed_by_all < 12
            rate = seeds / (time.perf_counter() - t0)
            label = f"{attackers} (f{'+1' if attackers > f else ''})"
            print(f"{n:>3} {label:>10} {seeds:>6} {unsafe:>7} {short:>9} {rate:>8.1f}")


if __name__ == "__main__":
    main()
