"""Benchmark: prioritised replay, qverify's cumulative-sum sampler vs flashbax's sum-tree item buffer.

qverify recomputes the cumulative priority mass on every draw, O(capacity); flashbax keeps a sum
tree. The DQN's replay pattern, measured side by side in one run: each iteration adds 4 transitions
(observation of 55 floats, 14 action branches) and samples a batch of 64 with priorities
α = 0.6, then writes back 64 new priorities; 2000 iterations in one jitted ``lax.scan``, after
the buffer has been filled. Prints iterations per second for each at capacities 2e4 and 1e5 and the
ratio. flashbax is faster here; qverify keeps its own buffer because flashbax's, inside the DQN
program vmapped over agents, drove an agent's parameters to NaN (see :mod:`qverify.dra.replay`).

Run: python bench/bench_replay.py
"""

from __future__ import annotations

import time

import flashbax as fbx
import jax
import jax.numpy as jnp

from qverify.dra import replay

OBS, BRANCHES, ADD, BATCH, ITERS = 55, 14, 4, 64, 2000


def transition(key: jax.Array) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(key)
    return {
        "obs": jax.random.normal(k1, (ADD, OBS)),
        "action": jax.random.randint(k2, (ADD, BRANCHES), 0, 4),
        "reward": jnp.ones(ADD),
        "next_obs": jax.random.normal(k2, (ADD, OBS)),
        "done": jnp.zeros(ADD),
    }


def ours(capacity: int):
    def it(buf, key):
        t = transition(key)
        buf = replay.add_batch(buf, t["obs"], t["action"], t["reward"], t["next_obs"], t["done"])
        idx, w = replay.sample(buf, key, BATCH, 0.6, jnp.float32(0.4))
        buf = replay.update_priorities(buf, idx, w * 0.5)
        return buf, buf.obs[idx].sum()

    fill = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks)[0])
    buf = fill(replay.init(capacity, OBS, BRANCHES), jax.random.split(jax.random.PRNGKey(0), capacity // ADD))
    run = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks))
    return lambda: jax.block_until_ready(run(buf, jax.random.split(jax.random.PRNGKey(1), ITERS)))


def flashbax(capacity: int):
    rb = fbx.make_prioritised_item_buffer(
        max_length=capacity, min_length=1, sample_batch_size=BATCH, add_batches=True, priority_exponent=0.6
    )

    def it(state, key):
        state = rb.add(state, transition(key))
        s = rb.sample(state, key)
        w = (capacity * s.probabilities) ** -0.4
        state = rb.set_priorities(state, s.indices, w / w.max() * 0.5)
        return state, s.experience["obs"].sum()

    state = rb.init(jax.tree.map(lambda x: x[0], transition(jax.random.PRNGKey(0))))
    fill = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks)[0])
    state = fill(state, jax.random.split(jax.random.PRNGKey(0), capacity // ADD))
    run = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks))
    return lambda: jax.block_until_ready(run(state, jax.random.split(jax.random.PRNGKey(1), ITERS)))


def train_check(episodes: int) -> None:
    """Two agents trained together (vmapped) on SECOQC at 0 % and 20 % Byzantine, with each buffer."""
    import numpy as np

    from qverify.dra import dqn
    from qverify.dra import env as E
    from qverify.dra import train as T
    from qverify.experiments.grid import Task, sim_config
    from qverify.network.topology import resolve

    instances = [
        E.from_network(
            resolve("secoqc"),
            sim_config(Task("secoqc", f, "inject-drop-lie", True, "dra", 0, 400, 3, 5e3)),
            seed=0,
            max_steps=50,
            random_byzantine=True,
        )
        for f in (0.0, 0.2)
    ]
    res = T.train_instances(instances, dqn.DQNConfig(), episodes, [0, 1])
    finite = [all(np.isfinite(np.asarray(x[i])).all() for x in jax.tree.leaves(res.params)) for i in range(2)]
    print(f"training, qverify buffer: parameters finite per agent {finite}; final greedy returns "
          f"{np.round(res.eval_return[:, -1], 1).tolist()}")  # fmt: skip


def rate(fn) -> float:
    fn()  # compile
    t0 = time.perf_counter()
    fn()
    return ITERS / (time.perf_counter() - t0)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=0, help="also train two vmapped agents for this many episodes")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    for cap in (20_000, 100_000):
        a, b = rate(ours(cap)), rate(flashbax(cap))
        print(f"capacity {cap:>7}: qverify {a:9.0f} it/s, flashbax {b:9.0f} it/s -> flashbax/qverify {b / a:.2f}x")
    if args.train:
        train_check(args.train)


if __name__ == "__main__":
    main()
