"""Benchmark: prioritised replay, qverify's (flashbax sum tree) vs the naive cumulative-sum sampler.

The naive sampler (defined below; what qverify used before) recomputes the cumulative priority
mass on every draw, O(capacity). The DQN's replay pattern, measured side by side in one run: each iteration adds 4 transitions
(observation of 55 floats, 14 action branches) and samples a batch of 64 with priorities
α = 0.6, then writes back 64 new priorities; 2000 iterations in one jitted ``lax.scan``, after
the buffer has been filled. Prints iterations per second for each at capacities 2e4 and 1e5 and the
ratio (target: use flashbax unless a hand-written buffer is faster).

Run: python bench/bench_replay.py
"""

from __future__ import annotations

import time

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


def naive_init(capacity: int) -> dict[str, jax.Array]:
    return {"obs": jnp.zeros((capacity, OBS)), "priority": jnp.zeros(capacity), "size": jnp.int32(0),
            "ptr": jnp.int32(0)}  # fmt: skip


def naive_add(buf: dict[str, jax.Array], obs: jax.Array) -> dict[str, jax.Array]:
    cap = buf["obs"].shape[0]
    idx = (buf["ptr"] + jnp.arange(ADD)) % cap
    p_max = jnp.maximum(buf["priority"].max(), 1.0)
    return {"obs": buf["obs"].at[idx].set(obs), "priority": buf["priority"].at[idx].set(p_max),
            "size": jnp.minimum(buf["size"] + ADD, cap), "ptr": (buf["ptr"] + ADD) % cap}  # fmt: skip


def naive_sample(buf: dict[str, jax.Array], key: jax.Array) -> tuple[jax.Array, jax.Array]:
    cap = buf["obs"].shape[0]
    p = jnp.where(jnp.arange(cap) < buf["size"], buf["priority"] ** 0.6, 0.0)
    cdf = jnp.cumsum(p)
    u = (jnp.arange(BATCH) + jax.random.uniform(key, (BATCH,))) / BATCH * cdf[-1]
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, buf["size"] - 1)
    w = (buf["size"] * p[idx] / cdf[-1]) ** -0.4
    return idx, w / w.max()


def naive(capacity: int):
    def it(buf, key):
        buf = naive_add(buf, transition(key)["obs"])
        idx, w = naive_sample(buf, key)
        buf = {**buf, "priority": buf["priority"].at[idx].set(w * 0.5)}
        return buf, buf["obs"][idx].sum()

    fill = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks)[0])
    buf = fill(naive_init(capacity), jax.random.split(jax.random.PRNGKey(0), capacity // ADD))
    run = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks))
    return lambda: jax.block_until_ready(run(buf, jax.random.split(jax.random.PRNGKey(1), ITERS)))


def ours(capacity: int):
    rb = replay.Replay(capacity, BATCH, 0.6)

    def it(state, key):
        t = transition(key)
        state = rb.add(state, t["obs"], t["action"], t["reward"], t["next_obs"], t["done"])
        exp, idx, w = rb.sample(state, key, jnp.int32(capacity), jnp.float32(0.4))
        state = rb.update(state, idx, w * 0.5)
        return state, exp["obs"].sum()

    fill = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks)[0])
    state = fill(rb.init(OBS, BRANCHES), jax.random.split(jax.random.PRNGKey(0), capacity // ADD))
    run = jax.jit(lambda b, ks: jax.lax.scan(it, b, ks))
    return lambda: jax.block_until_ready(run(state, jax.random.split(jax.random.PRNGKey(1), ITERS)))


def rate(fn) -> float:
    fn()  # compile
    t0 = time.perf_counter()
    fn()
    return ITERS / (time.perf_counter() - t0)


def main() -> None:
    print(f"jax {jax.__version__} on {jax.default_backend()}")
    for cap in (20_000, 100_000):
        a, b = rate(naive(cap)), rate(ours(cap))
        print(f"capacity {cap:>7}: naive cumsum {a:9.0f} it/s, qverify (flashbax) {b:9.0f} it/s -> {b / a:.2f}x")


if __name__ == "__main__":
    main()
