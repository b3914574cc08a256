"""Benchmark: the reproduce grid's seeds one at a time vs vmapped together, side by side in one run.

One task of the default grid (SECOQC, 20 % Byzantine, inject-drop-lie, fluctuation on, 400 slots,
3 demands) for 10 seeds, under the baseline and under ABFT (each seed's control plane on the
host): ``simulate`` per seed vs one ``simulate_seeds`` call (what ``qverify reproduce`` runs per
unit of work, :func:`qverify.experiments.grid.run_seeds`). Both compiled first; two timed rounds.

Run: python bench/bench_seeds.py
"""

from __future__ import annotations

import time

import jax

from qverify.consensus.control import ABFTPolicy
from qverify.experiments.grid import GridConfig, Task, sim_config
from qverify.network.sim import BaselinePolicy, simulate, simulate_seeds
from qverify.network.topology import resolve

SEEDS = list(range(10))


def main() -> None:
    grid = GridConfig()
    g = resolve("secoqc")
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    for policy in ("baseline", "abft"):
        task = Task("secoqc", 0.2, "inject-drop-lie", True, policy, 0, grid.slots, grid.demands, grid.demand_bits)
        cfg = sim_config(task)

        def make(policy: str = policy, alpha: float = task.alpha) -> BaselinePolicy | ABFTPolicy:
            return ABFTPolicy(alpha=alpha) if policy == "abft" else BaselinePolicy()

        simulate(g, cfg, task.slots, 0, make())  # compile both programs
        simulate_seeds(g, cfg, task.slots, SEEDS, [make() for _ in SEEDS])
        for _ in range(2):
            t0 = time.perf_counter()
            for s in SEEDS:
                simulate(g, cfg, task.slots, s, make())
            alone = time.perf_counter() - t0
            t0 = time.perf_counter()
            simulate_seeds(g, cfg, task.slots, SEEDS, [make() for _ in SEEDS])
            together = time.perf_counter() - t0
            print(f"{policy:>8}: {len(SEEDS)} seeds x {task.slots} slots: one at a time {alone:.2f} s, "
                  f"vmapped {together:.2f} s -> {alone / together:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
