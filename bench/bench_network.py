"""Benchmark: the JAX network model against the numpy simulator it replaced, and its scaling.

Prints, all measured in this run on this machine:

1. SECOQC (5 nodes, 20 % Byzantine, fluctuating loss, baseline decision), 256 seeds stacked with
   ``vmap`` in one ``jit(scan(step))``: slot-seeds per second, compile time shown apart. The numpy
   simulator that this model replaced (a Python loop over slots, one seed at a time) ran
   1.6e3–1.9e3 slot-seeds/s on the same instance on 2 idle cores
   (``git show a7df61e:qverify/network/sim.py``, 2000 and 4000 slots, 2026-12-01); the ratio printed
   is against 1.9e3, the better of the two (target ≥ 100×).
2. 1000 nodes × 1000 slots, one seed: wall time including compilation (target < 60 s).
3. Per-slot cost at 100 and 1000 nodes (constant density, demands n/10): ratio (target ≤ 12).
4. The verification path: the same 256-seed SECOQC run with and without the per-epoch verification
   rounds (``verify=False``): ratio (target ≤ 2).

Run: python bench/bench_network.py [--slots 1000] [--seeds 256]
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp

from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig, build_params
from qverify.network.topology import load_builtin, random_geometric

NUMPY_SLOT_SEEDS_PER_S = 1.9e3  # the replaced simulator, see the module docstring


def baseline_decision(params: M.NetParams) -> M.Decision:
    e, d = params.n_links, params.n_demands
    return M.Decision(jnp.ones(e, bool), params.nominal_mu, params.is_mdi, jnp.zeros(d, jnp.int32))


def runner(params: M.NetParams, slots: int, seeds: int):
    dec = baseline_decision(params)

    def one(key: jax.Array) -> jax.Array:
        k0, k1 = jax.random.split(key)
        state, out = M.run(k1, M.init(k0, params), dec, params, slots)
        return out.delivered.sum() + state.pool.sum()

    fn = jax.jit(jax.vmap(one))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    return lambda: fn(keys).block_until_ready()


def timed(fn) -> tuple[float, float]:
    """(first call = compile + run, second call = run), seconds."""
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    fn()
    return t1 - t0, time.perf_counter() - t1


def rgg(n: int):
    return random_geometric(n, radius_km=15.0, area_km=100.0 * math.sqrt(n / 100), seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=256)
    a = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    secoqc = build_params(load_builtin("secoqc"), SimConfig(adversary=Adversary(fraction=0.2)), seed=0)
    compile_s, run_s = timed(runner(secoqc, a.slots, a.seeds))
    rate = a.slots * a.seeds / run_s
    print(f"1. SECOQC, {a.seeds} seeds x {a.slots} slots: {rate:.3e} slot-seeds/s (compile {compile_s - run_s:.1f} s); "
          f"{rate / NUMPY_SLOT_SEEDS_PER_S:.0f}x the numpy simulator's {NUMPY_SLOT_SEEDS_PER_S:.1e} (target >= 100x)")  # fmt: skip
    no_verify = secoqc.replace(verify=False)
    _c, run_nv = timed(runner(no_verify, a.slots, a.seeds))
    print(f"4. verification path: {run_s:.2f} s with, {run_nv:.2f} s without: {run_s / run_nv:.2f}x (target <= 2)")
    per_slot = {}
    for n in (100, 1000):
        g = rgg(n)
        p = build_params(g, SimConfig(n_demands=max(1, n // 10), adversary=Adversary(fraction=0.2)), seed=0)
        first, second = timed(runner(p, a.slots, 1))
        per_slot[n] = second / a.slots
        print(f"   {n:5d} nodes, {p.n_links:5d} links: {a.slots} slots in {second:.2f} s "
              f"(first call with compilation {first:.2f} s)")  # fmt: skip
        if n == 1000:
            print(f"2. 1000 nodes x {a.slots} slots, compilation included: {first:.1f} s (target < 60 s)")
    print(f"3. per-slot cost growth for 10x nodes: {per_slot[1000] / per_slot[100]:.2f}x (target <= 12x)")


if __name__ == "__main__":
    main()
