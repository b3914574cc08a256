"""Benchmark: prioritised replay — qverify's buffer vs flashbax direct vs a naive cumulative-sum sampler.

qverify's buffer (:mod:`qverify.dra.replay`) is flashbax's sum-tree item buffer plus one guard
(draws of probability 0 are replaced by a stored transition, so no weight is infinite). The naive
way recomputes the cumulative priority mass on every draw, O(capacity), in plain ``jax.numpy``
(what qverify used before it took flashbax). The DQN's replay pattern, measured side by side in
one run: each iteration adds 4 transitions (observation of 55 floats, 14 action branches), samples
a batch of 64 with α = 0.6, β = 0.4 and writes back 64 new priorities; 2000 iterations in one
jitted ``lax.scan`` after the buffer has been filled. Prints iterations per second of each at
capacities 2e4 and 1e5, and the ratios.

Then the reason for the guard, counted: ten buffers vmapped, heavy-tailed priorities written back
(``|δ| = e^{3z}``), 6000 iterations each; the number of flashbax draws that came back with
probability 0 (each would have been an infinite importance weight). ``--train N`` also trains two
agents vmapped (SECOQC at 0 % and 20 % Byzantine) for N episodes and checks their parameters stay
finite.

Run: python bench/bench_replay.py [--train 100]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import flashbax as fbx
import jax
import jax.numpy as jnp
from flax import struct

from qverify.dra import replay

OBS, BRANCHES, ADD, BATCH, ITERS, ALPHA, BETA = 55, 14, 4, 64, 2000, 0.6, 0.4


def transition(key: jax.Array) -> replay.Transition:
    k1, k2 = jax.random.split(key)
    return (
        jax.random.normal(k1, (ADD, OBS)),
        jax.random.randint(k2, (ADD, BRANCHES), 0, 4),
        jnp.ones(ADD),
        jax.random.normal(k2, (ADD, OBS)),
        jnp.zeros(ADD),
    )


@struct.dataclass
class Naive:
    """Ring buffer with one priority per slot; a draw recomputes the cumulative sum."""

    data: replay.Transition
    priority: jax.Array
    size: jax.Array
    ptr: jax.Array


def naive_init(capacity: int) -> Naive:
    data = (jnp.zeros((capacity, OBS)), jnp.zeros((capacity, BRANCHES), jnp.int32), jnp.zeros(capacity),
            jnp.zeros((capacity, OBS)), jnp.zeros(capacity))  # fmt: skip
    return Naive(data, jnp.zeros(capacity), jnp.array(0), jnp.array(0))


def naive_step(buf: Naive, key: jax.Array) -> tuple[Naive, jax.Array]:
    cap = buf.priority.shape[0]
    idx = (buf.ptr + jnp.arange(ADD)) % cap
    data = tuple(d.at[idx].set(t) for d, t in zip(buf.data, transition(key), strict=True))
    pri = buf.priority.at[idx].set(jnp.maximum(buf.priority.max(), 1.0))
    size = jnp.minimum(buf.size + ADD, cap)
    p = jnp.where(jnp.arange(cap) < size, pri**ALPHA, 0.0)
    cdf = jnp.cumsum(p)
    u = (jnp.arange(BATCH) + jax.random.uniform(key, (BATCH,))) / BATCH * cdf[-1]
    draw = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, size - 1)
    w = (size * p[draw] / cdf[-1]) ** -BETA
    w = w / w.max()
    pri = pri.at[draw].set(w * 0.5 + 1e-3)
    return Naive(data, pri, size, (buf.ptr + ADD) % cap), data[0][draw].sum()


def ours_step(spec: replay.Replay) -> Callable[..., tuple[object, jax.Array]]:
    def it(state: object, key: jax.Array) -> tuple[object, jax.Array]:
        state = replay.add(spec, state, transition(key))
        batch, idx, w = replay.sample(spec, state, key, jnp.float32(BETA))
        return replay.update(spec, state, idx, w * 0.5), batch[0].sum()

    return it


def flashbax_step(capacity: int) -> Callable[..., tuple[object, jax.Array]]:
    rb = fbx.make_prioritised_item_buffer(
        max_length=capacity, min_length=1, sample_batch_size=BATCH, add_batches=True, priority_exponent=ALPHA
    )

    def it(state: object, key: jax.Array) -> tuple[object, jax.Array]:
        obs, act, rew, nxt, done = transition(key)
        state = rb.add(state, {"obs": obs, "action": act, "reward": rew, "next_obs": nxt, "done": done})
        s = rb.sample(state, key)
        # Without this mask a zero-probability draw makes w infinite, the priorities NaN and the
        # tree NaN from then on (which then samples faster, and wrongly): the peer is timed healthy.
        w = jnp.where(s.probabilities > 0, (capacity * s.probabilities) ** -BETA, 0.0)
        state = rb.set_priorities(state, s.indices, w / w.max() * 0.5 + 1e-3)
        return state, s.experience["obs"].sum()

    return it


def timed(step: Callable[..., tuple[object, jax.Array]], state: object, capacity: int) -> Callable[..., object]:
    fill = jax.jit(lambda b, ks: jax.lax.scan(step, b, ks)[0])
    state = fill(state, jax.random.split(jax.random.PRNGKey(0), capacity // ADD))
    run = jax.jit(lambda b, ks: jax.lax.scan(step, b, ks))

    def once(check: bool = False) -> object:
        out = jax.block_until_ready(run(state, jax.random.split(jax.random.PRNGKey(1), ITERS)))
        # A buffer gone NaN samples at another speed: the untimed first run must end finite.
        if check and not all(
            bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)
        ):
            raise RuntimeError("a buffer went non-finite during the timed run")
        return out

    return once


def rate(fn: Callable[..., object]) -> float:
    fn(check=True)  # compile, and the same run's state checked finite
    t0 = time.perf_counter()
    fn()
    return ITERS / (time.perf_counter() - t0)


def zero_probability_draws(agents: int = 10, iters: int = 6000) -> list[int]:
    """Per vmapped buffer: flashbax draws of probability 0 under heavy-tailed priorities."""
    spec = replay.Replay(20_000, BATCH, ALPHA)

    def it(state: object, key: jax.Array) -> tuple[object, jax.Array]:
        k1, k2 = jax.random.split(key)
        state = replay.add(spec, state, transition(k1))
        s = replay._buffer(spec).sample(state, k2)
        state = replay.update(spec, state, s.indices, jnp.exp(3 * jax.random.normal(k2, (BATCH,))))
        return state, (s.probabilities <= 0).sum()

    def one(key: jax.Array) -> jax.Array:
        return jax.lax.scan(it, replay.init(spec, OBS, BRANCHES), jax.random.split(key, iters))[1].sum()

    return [int(x) for x in jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(0), agents))]


def train_check(episodes: int) -> None:
    """Two agents trained together (vmapped) on SECOQC at 0 % and 20 % Byzantine."""
    import numpy as np

    from qverify.dra import dqn
    from qverify.dra import env as E
    from qverify.dra import train as T
    from qverify.experiments.grid import Task, sim_config
    from qverify.network.topology import resolve

    def instance(fraction: float) -> E.EnvParams:
        task = Task("secoqc", fraction, "inject-drop-lie", True, "dra", 0, 400, 3, 5e3)
        return E.from_network(resolve("secoqc"), sim_config(task), seed=0, max_steps=50, random_byzantine=True)

    instances = [instance(f) for f in (0.0, 0.2)]
    res = T.train_instances(instances, dqn.DQNConfig(), episodes, [0, 1])
    finite = [all(np.isfinite(np.asarray(x[i])).all() for x in jax.tree.leaves(res.params)) for i in range(2)]
    print(f"training, two agents vmapped, {episodes} episodes: parameters finite per agent {finite}; final greedy "
          f"returns {np.round(res.eval_return[:, -1], 1).tolist()}")  # fmt: skip


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=0, help="also train two vmapped agents for this many episodes")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    for cap in (20_000, 100_000):
        spec = replay.Replay(cap, BATCH, ALPHA)
        q = rate(timed(ours_step(spec), replay.init(spec, OBS, BRANCHES), cap))
        f = rate(timed(flashbax_step(cap), replay.init(spec, OBS, BRANCHES), cap))
        n = rate(timed(naive_step, naive_init(cap), cap))
        print(f"capacity {cap:>7}: qverify {q:8.0f} it/s, flashbax direct {f:8.0f} it/s, naive cumsum {n:8.0f} it/s "
              f"-> qverify/naive {q / n:.2f}x, qverify/flashbax {q / f:.2f}x")  # fmt: skip
    z = zero_probability_draws()
    print(f"flashbax draws of probability 0 (10 buffers x 6000 draws of {BATCH}, heavy-tailed priorities): {z}; "
          f"qverify replaces them, flashbax direct would weigh them (N*0)^-beta = inf")  # fmt: skip
    if args.train:
        train_check(args.train)


if __name__ == "__main__":
    main()
