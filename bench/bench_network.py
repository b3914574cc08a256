"""Benchmark: network simulator slots per second at 100 and 1000 nodes, and the cost growth.

Random geometric networks with constant node density (about 7 links per node), 20 % Byzantine nodes,
fluctuating loss, baseline policy, demands growing with the network (n / 10). Prints slots/s for
each size and the ratio of per-slot cost when nodes grow 10x (target <= 12x, i.e. linear).

Run: python bench/bench_network.py [--slots 300]
"""

from __future__ import annotations

import argparse
import math
import time

from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig, simulate
from qverify.network.topology import random_geometric


def timed(g, config: SimConfig, slots: int) -> float:
    t0 = time.perf_counter()
    simulate(g, config, slots, seed=0)
    return time.perf_counter() - t0


def measure(n: int, slots: int) -> tuple[float, float, float, int]:
    """Setup (a 1-slot run) and two run lengths, each timed on its own; nothing subtracted here."""
    g = random_geometric(n, radius_km=15.0, area_km=100.0 * math.sqrt(n / 100), seed=1)
    config = SimConfig(n_demands=max(1, n // 10), adversary=Adversary(fraction=0.2))
    simulate(g, config, 5, seed=0)  # warm-up (imports, circuit calibration)
    return timed(g, config, 1), timed(g, config, slots), timed(g, config, 2 * slots), g.number_of_edges()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=300)
    args = parser.parse_args()
    slope = {}
    for n in (100, 1000):
        setup, one, two, links = measure(n, args.slots)
        print(f"  {n:5d} nodes, {links:5d} links: 1 slot {setup:.3f} s (setup + 1 step), "
              f"{args.slots} slots {one:.3f} s, {2 * args.slots} slots {two:.3f} s")  # fmt: skip
        # Per-slot cost = slope between the two run lengths (both measured in this run).
        slope[n] = (two - one) / args.slots
        if slope[n] <= 0:
            print(f"  {n:5d} nodes: timing noise exceeds the stepping cost; rerun with more --slots")
        else:
            print(f"  {n:5d} nodes: {1 / slope[n]:9.1f} slots/s ({slope[n] * 1e3:.2f} ms per slot, slope)")
    if min(slope.values()) > 0:
        print(f"  cost growth for 10x nodes: {slope[1000] / slope[100]:.2f}x (target <= 12x)")


if __name__ == "__main__":
    main()
