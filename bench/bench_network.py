"""Benchmark: the JAX network model against the numpy simulator it replaced, and its scaling.

Prints, all measured in this run on this machine:

Setup (building the parameters from the graph), compilation and the run are timed apart, each on
its own (compilation ahead of time), so no printed figure is a difference of two timings.

1. SECOQC (6 nodes, 20 % Byzantine, fluctuating loss, baseline decision), 256 seeds stacked with
   ``vmap`` in one ``jit(scan(step))``: slot-seeds per second of the compiled program. The numpy
   simulator that this model replaced (a Python loop over slots, one seed at a time) ran
   1.6e3–1.9e3 slot-seeds/s on the same instance on 2 idle cores
   (``git show a7df61e:qverify/network/sim.py``, 2000 and 4000 slots, 2026-12-01); the ratio printed
   is against 1.9e3, the better of the two (target ≥ 100×). The program compiles with the options
   of ``qverify simulate``'s stretch (:mod:`qverify.xla`); the line under it compiles and runs the same
   program at XLA's default options, side by side.
2. 1000 nodes × 1000 slots, one seed: setup + compilation + run (target < 60 s).
3. Per-slot cost at 100 and 1000 nodes (constant density, demands n/10): ratio (target ≤ 12).
4. The verification path: the same 256-seed SECOQC run with and without the per-epoch verification
   (``verify=False``: no link test rounds, no GHZ node checks, no weight rule): ratio (target ≤ 2).
   Every output of the verification path feeds the timed result; before it did, XLA removed the
   unused measurement from the compiled program and this ratio read ≈ 1.0, which measured nothing.
   Most of its cost is the exact binomial counts (48 + 24 per SECOQC seed and epoch); the line
   under it times :func:`qverify.network.binomial.binomial` against ``jax.random.binomial`` on one
   epoch's draw, side by side. With ``jax.random.binomial`` (and sorts in the weight rule) this
   ratio read 3.0–3.2× on this machine (2026-12-01/02).

Run: python bench/bench_network.py [--slots 1000] [--seeds 256]
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.binomial import binomial
from qverify.network.sim import STRETCH_FUSION_EMITTERS, SimConfig, build_params
from qverify.network.topology import load_builtin, random_geometric
from qverify.xla import compiler_options

NUMPY_SLOT_SEEDS_PER_S = 1.9e3  # the replaced simulator, see the module docstring


def baseline_decision(params: M.NetParams) -> M.Decision:
    e, d = params.n_links, params.n_demands
    return M.Decision(jnp.ones(e, bool), params.nominal_mu, params.is_mdi, jnp.zeros(d, jnp.int32))


def timed(params: M.NetParams, slots: int, seeds: int, options: dict[str, Any] | None = None) -> tuple[float, float]:
    """(compilation, one run of the compiled program), seconds, each timed on its own.

    Compilation is ahead of time (``jit(...).lower(...).compile()``), so the run never includes it
    and no figure is obtained by subtracting one timing from another. ``options``: XLA compiler
    options (default: the ones ``qverify simulate``'s stretch compiles with, :mod:`qverify.xla`).
    """
    dec = baseline_decision(params)

    def one(key: jax.Array) -> jax.Array:
        k0, k1 = jax.random.split(key)
        state, out = M.run(k1, M.init(k0, params), dec, params, slots, aligned=True)
        # Everything the verification path produces feeds the result: XLA removes computations whose
        # outputs are unused, and would otherwise drop the measurement path from the timing.
        checks = jnp.where(jnp.isfinite(state.node_claims), state.node_claims, 0.0).sum()
        measured = state.reported.sum() + state.counts.sum() + state.weights.sum() + state.scores.sum() + checks
        return out.delivered.sum() + state.pool.sum() + measured

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.perf_counter()
    opts = compiler_options(STRETCH_FUSION_EMITTERS) if options is None else options
    compiled = jax.jit(jax.vmap(one), compiler_options=opts).lower(keys).compile()
    t1 = time.perf_counter()
    compiled(keys).block_until_ready()
    return t1 - t0, time.perf_counter() - t1


def sampler_ms(seeds: int, blocks: int = 5, calls: int = 40) -> tuple[float, float]:
    """Milliseconds per call of :func:`qverify.network.binomial.binomial` and of
    ``jax.random.binomial`` on one epoch's first draw of the SECOQC run (``seeds`` × 48 counts:
    24 error counts of 3333 rounds at QBER 1–16 %, 24 node-check counts of 750 rounds), vmapped.

    The two are timed in alternating blocks of ``calls`` calls after a warm-up; each figure is the
    median block (the first calls after compilation run slower, by up to 2.5× here).
    """
    rng = np.random.default_rng(0)
    n = jnp.asarray(np.repeat([[3333.0] * 24 + [750.0] * 24], seeds, axis=0), jnp.float32)
    p = jnp.asarray(np.concatenate([rng.uniform(0.01, 0.16, (seeds, 24)), rng.uniform(0.0, 0.06, (seeds, 24))], 1))
    keys = list(jax.random.split(jax.random.PRNGKey(1), calls))
    fns = [
        jax.jit(lambda k, draw=draw: jax.vmap(draw)(jax.random.split(k, seeds), n, p).sum())
        for draw in (binomial, jax.random.binomial)
    ]
    times: list[list[float]] = [[], []]
    for _ in range(blocks + 1):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            for k in keys:
                fn(k).block_until_ready()
            out.append((time.perf_counter() - t0) / calls * 1e3)
    ours, peer = (sorted(t[1:])[blocks // 2] for t in times)  # block 0 is the warm-up
    return ours, peer


def setup(g, config: SimConfig) -> tuple[M.NetParams, float]:
    """Network parameters from a graph (candidate paths, link constants) and the seconds it took."""
    t0 = time.perf_counter()
    params = build_params(g, config, seed=0)
    return params, time.perf_counter() - t0


def rgg(n: int):
    return random_geometric(n, radius_km=15.0, area_km=100.0 * math.sqrt(n / 100), seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=256)
    a = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    secoqc, setup_s = setup(load_builtin("secoqc"), SimConfig(adversary=Adversary(fraction=0.2)))
    compile_s, run_s = timed(secoqc, a.slots, a.seeds)
    rate = a.slots * a.seeds / run_s
    print(f"1. SECOQC, {a.seeds} seeds x {a.slots} slots: {rate:.3e} slot-seeds/s "
          f"(setup {setup_s:.2f} s, compile {compile_s:.1f} s, run {run_s:.2f} s, each timed apart); "
          f"{rate / NUMPY_SLOT_SEEDS_PER_S:.0f}x the numpy simulator's {NUMPY_SLOT_SEEDS_PER_S:.1e} (target >= 100x)")  # fmt: skip
    xla_c, xla_run = timed(secoqc, a.slots, a.seeds, options={})
    print(f"   the same program at XLA's default options (level 3, MLIR fusion emitters): compile {xla_c:.1f} s, "
          f"run {xla_run:.2f} s; qverify's options: compile {xla_c / compile_s:.2f}x and run {xla_run / run_s:.2f}x "
          f"as fast as these")  # fmt: skip
    no_verify = secoqc.replace(verify=False)
    _c, run_nv = timed(no_verify, a.slots, a.seeds)
    print(f"4. verification path: {run_s:.2f} s with, {run_nv:.2f} s without: {run_s / run_nv:.2f}x (target <= 2)")
    ours_ms, jax_ms = sampler_ms(a.seeds)
    print(f"   its binomial counts, {a.seeds} seeds x 48 (one SECOQC epoch): qverify.network.binomial "
          f"{ours_ms:.2f} ms, jax.random.binomial {jax_ms:.2f} ms per epoch ({jax_ms / ours_ms:.1f}x)")  # fmt: skip
    per_slot = {}
    for n in (100, 1000):
        p, setup_n = setup(rgg(n), SimConfig(n_demands=max(1, n // 10), adversary=Adversary(fraction=0.2)))
        compile_n, run_n = timed(p, a.slots, 1)
        per_slot[n] = run_n / a.slots
        print(f"   {n:5d} nodes, {p.n_links:5d} links: setup {setup_n:.2f} s, compile {compile_n:.2f} s, "
              f"{a.slots} slots run in {run_n:.2f} s")  # fmt: skip
        if n == 1000:
            total = setup_n + compile_n + run_n
            print(f"2. 1000 nodes x {a.slots} slots: {total:.1f} s from graph to result "
                  f"(setup + compile + run, target < 60 s)")  # fmt: skip
    print(f"3. per-slot cost growth for 10x nodes: {per_slot[1000] / per_slot[100]:.2f}x (target <= 12x)")


if __name__ == "__main__":
    main()
