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


def per_slot_seconds(n: int, slots: int) -> tuple[float, int]:
    g = random_geometric(n, radius_km=15.0, area_km=100.0 * math.sqrt(n / 100), seed=1)
    config = SimConfig(n_demands=max(1, n // 10), adversary=Adversary(fraction=0.2))
    simulate(g, config, 5, seed=0)  # warm-up (imports, circuit calibration, path search)
    t0 = time.perf_counter()
    simulate(g, config, slots, seed=0)
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    simulate(g, config, 1, seed=0)
    setup = time.perf_counter() - t1  # path search and μ optimisation, paid once per run
    return max(total - setup, 1e-9) / (slots - 1), g.number_of_edges()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=300)
    args = parser.parse_args()
    results = {}
    for n in (100, 1000):
        sec, links = per_slot_seconds(n, args.slots)
        results[n] = sec
        print(f"  {n:5d} nodes, {links:5d} links: {1 / sec:9.1f} slots/s ({sec * 1e3:.2f} ms per slot)")
    ratio = results[1000] / results[100]
    print(f"  cost growth for 10x nodes: {ratio:.2f}x (target <= 12x)")


if __name__ == "__main__":
    main()
