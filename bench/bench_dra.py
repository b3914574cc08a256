"""Benchmark: DRA environment steps/s (256 vmapped envs) and DQN training speed on CPU.

Prints env steps per second on the default network (SECOQC, 20 % Byzantine), training steps per
second, and the wall-clock time of 500 training episodes (one seed, 50 slots each, 4 parallel envs)
compilation included. Target: 500 episodes <= 120 s on 2 cores. The rollout's result depends on
every observation (as an agent's actions do), so XLA cannot compile any of the measurement path
away; with the rewards alone the same code read 3.6e5 env steps/s instead of 3.3e5 (2026-12-02). The environment used to reach
2.5e6 steps/s before it ran the network model with verification rounds; exact binomial sampling of
each epoch's test rounds (a rejection sampler, once per epoch) now dominates its cost.

Run: python bench/bench_dra.py [--episodes 500]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from qverify.dra import dqn
from qverify.dra import env as E
from qverify.dra import train as T
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig
from qverify.network.topology import load_builtin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=500)
    args = parser.parse_args()
    print(f"JAX {jax.__version__}, devices {jax.devices()}")
    p = E.from_network(load_builtin("secoqc"), SimConfig(adversary=Adversary(fraction=0.2)), seed=1, max_steps=50)
    n, steps = 256, 1000
    _, st = jax.vmap(E.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), p)
    act = E.static_action(p)

    def body(s, xs):
        k, i = xs
        # The scan index tells the epoch phase without the batch: verification sampled at epoch ends only.
        now = M.epoch_end(i, p)
        o, s, r, _d, _i = jax.vmap(E.step, in_axes=(0, 0, None, None, None))(jax.random.split(k, n), s, act, p, now)
        # The observation (reports, their counts, weights) feeds the result, as it feeds an agent:
        # otherwise XLA removes the measurement path from the compiled rollout.
        return s, r.mean() + o.mean()

    roll = jax.jit(lambda s, k: jax.lax.scan(body, s, (jax.random.split(k, steps), jnp.arange(steps))))
    jax.block_until_ready(roll(st, jax.random.PRNGKey(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(roll(st, jax.random.PRNGKey(2)))
    dt = time.perf_counter() - t0
    print(f"  environment: {n * steps / dt:12.3e} env steps/s ({n} vmapped envs)")

    cfg = dqn.DQNConfig()
    res = T.train(p, cfg, args.episodes, seeds=1)
    transitions = args.episodes * p.max_steps * cfg.n_envs
    print(
        f"  training: {args.episodes} episodes x {p.max_steps} slots x {cfg.n_envs} envs in {res.seconds:.1f} s "
        f"(compilation included; target <= 120 s); {transitions / res.seconds:.3e} transitions/s, "
        f"{transitions / cfg.n_envs / res.seconds:.3e} gradient updates/s"
    )


if __name__ == "__main__":
    main()
