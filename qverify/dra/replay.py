"""Proportional prioritised experience replay (Schaul et al., ICLR 2016) in pure JAX.

Priorities ``p_i = (|δ_i| + ε)^α``; a batch is drawn by stratified inverse-CDF sampling (one
uniform draw per stratum of the cumulative priority mass, as a sum-tree does) and weighted by
``w_i = (N P(i))^{−β} / max_j w_j``. The cumulative sum is recomputed per draw: O(capacity)
vectorised work that, at the capacities used here (≤ 1e5), costs less on CPU and GPU than the
O(log N) pointer-chasing of a sum-tree, and keeps the buffer a plain pytree that ``jit`` and
``vmap`` handle.

flashbax's prioritised item buffer samples 7–8× faster in isolation (``bench/bench_replay.py``
prints both), and commit bfaf3ed used it; inside the DQN program vmapped over agents, the agents of
that commit's default ``qverify reproduce`` run ended with NaN parameters (the SECOQC agent at 20 %
Byzantine within 40 episodes), where this buffer trains the same agents to finite, stable policies
(``python bench/bench_replay.py --train 100`` checks it). Correctness over speed.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Buffer:
    obs: jax.Array  # (C, O)
    action: jax.Array  # (C, B) int32
    reward: jax.Array  # (C,)
    next_obs: jax.Array  # (C, O)
    done: jax.Array  # (C,)
    priority: jax.Array  # (C,)  stored as (|δ| + ε)
    size: jax.Array  # ()
    ptr: jax.Array  # ()


def init(capacity: int, obs_size: int, n_branches: int) -> Buffer:
    return Buffer(
        obs=jnp.zeros((capacity, obs_size), jnp.float32),
        action=jnp.zeros((capacity, n_branches), jnp.int32),
        reward=jnp.zeros(capacity, jnp.float32),
        next_obs=jnp.zeros((capacity, obs_size), jnp.float32),
        done=jnp.zeros(capacity, jnp.float32),
        priority=jnp.zeros(capacity, jnp.float32),
        size=jnp.array(0, jnp.int32),
        ptr=jnp.array(0, jnp.int32),
    )


def add_batch(buf: Buffer, obs: jax.Array, action: jax.Array, reward: jax.Array, next_obs: jax.Array,
              done: jax.Array) -> Buffer:  # fmt: skip
    """Insert n transitions (leading axis n) with the current maximum priority (ring buffer)."""
    n = obs.shape[0]
    cap = buf.obs.shape[0]
    idx = (buf.ptr + jnp.arange(n)) % cap
    p_max = jnp.maximum(buf.priority.max(), 1.0)
    return Buffer(
        obs=buf.obs.at[idx].set(obs),
        action=buf.action.at[idx].set(action),
        reward=buf.reward.at[idx].set(reward),
        next_obs=buf.next_obs.at[idx].set(next_obs),
        done=buf.done.at[idx].set(done.astype(jnp.float32)),
        priority=buf.priority.at[idx].set(p_max),
        size=jnp.minimum(buf.size + n, cap),
        ptr=(buf.ptr + n) % cap,
    )


def sample(buf: Buffer, key: jax.Array, batch: int, alpha: float, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Indices and importance weights of a prioritised batch (stratified, proportional)."""
    cap = buf.obs.shape[0]
    valid = jnp.arange(cap) < buf.size
    p = jnp.where(valid, buf.priority**alpha, 0.0)
    cdf = jnp.cumsum(p)
    total = cdf[-1]
    u = (jnp.arange(batch) + jax.random.uniform(key, (batch,))) / batch * total
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, jnp.maximum(buf.size - 1, 0))
    prob = p[idx] / total
    w = (buf.size * prob) ** (-beta)
    return idx, w / w.max()


def update_priorities(buf: Buffer, idx: jax.Array, td_error: jax.Array, eps: float = 1e-3) -> Buffer:
    return dataclasses.replace(buf, priority=buf.priority.at[idx].set(jnp.abs(td_error) + eps))
