"""Proportional prioritised experience replay (Schaul et al., ICLR 2016) on flashbax's sum-tree buffer.

Priorities ``p_i = (|δ_i| + ε)^α`` (flashbax applies α); new transitions enter with the largest
priority seen so far; a batch is drawn in proportion to ``p_i`` and weighted by
``w_i = (N P(i))^{−β} / max_j w_j``. The buffer is a flashbax ``PrioritisedTrajectoryBufferState``,
a pytree that ``jit`` and ``vmap`` handle. ``bench/bench_replay.py`` measures it against the
cumulative-sum sampler this module used before (10× faster at 2e4 and at 1e5 transitions, 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flashbax as fbx
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Replay:
    """A prioritised buffer of transitions ``(obs, action, reward, next_obs, done)``.

    Attributes:
        capacity: transitions kept (oldest overwritten first).
        batch: transitions per sample.
        alpha: priority exponent α.
    """

    capacity: int
    batch: int
    alpha: float

    def _buffer(self) -> Any:
        return fbx.make_prioritised_item_buffer(
            max_length=self.capacity, min_length=1, sample_batch_size=self.batch, add_batches=True,
            priority_exponent=self.alpha,
        )  # fmt: skip

    def init(self, obs_size: int, n_branches: int) -> Any:
        """An empty buffer for observations of ``obs_size`` floats and ``n_branches`` action entries."""
        example = {
            "obs": jnp.zeros(obs_size, jnp.float32),
            "action": jnp.zeros(n_branches, jnp.int32),
            "reward": jnp.zeros((), jnp.float32),
            "next_obs": jnp.zeros(obs_size, jnp.float32),
            "done": jnp.zeros((), jnp.float32),
        }
        return self._buffer().init(example)

    def add(self, state: Any, obs: jax.Array, action: jax.Array, reward: jax.Array, next_obs: jax.Array,
            done: jax.Array) -> Any:  # fmt: skip
        """Insert n transitions (leading axis n) with the current maximum priority."""
        batch = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                 "done": done.astype(jnp.float32)}  # fmt: skip
        return self._buffer().add(state, batch)

    def sample(
        self, state: Any, key: jax.Array, size: jax.Array, beta: jax.Array
    ) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
        """``(batch, indices, importance weights)``; ``size`` = transitions stored so far."""
        s = self._buffer().sample(state, key)
        w = (jnp.maximum(size, 1) * s.probabilities) ** (-beta)
        return s.experience, s.indices, w / w.max()

    def update(self, state: Any, indices: jax.Array, td_error: jax.Array, eps: float = 1e-3) -> Any:
        """New priorities ``|δ| + ε`` for the sampled transitions."""
        return self._buffer().set_priorities(state, indices, jnp.abs(td_error) + eps)
