"""Proportional prioritised experience replay (Schaul et al., ICLR 2016) on flashbax's sum tree.

Priorities ``p_i = (|δ_i| + ε)^α`` (flashbax applies α); new transitions enter with the largest
priority seen so far; a batch is drawn by stratified sampling of the priority mass and weighted by
``w_i = (N P(i))^{−β} / max_j w_j`` with ``N`` the transitions stored. The buffer state is a
flashbax ``PrioritisedTrajectoryBufferState``: a pytree that ``jit`` and ``vmap`` handle.
``bench/bench_replay.py`` prints this buffer's speed next to a cumulative-sum sampler written
out in plain ``jax.numpy`` (the naive way: O(capacity) per draw) and checks that agents trained
together under ``vmap`` stay finite.

Zero-probability draws. A float32 sum tree walked from the root can end on a leaf of priority 0:
the query of the last stratum lies within rounding of the total, and the partial sums that the
descent subtracts are not exact, so near the write head or past the filled part of the buffer
the walk can step into an empty or invalidated slot. flashbax then reports probability 0, the
importance weight ``(N·0)^{−β}`` is infinite and one update turns every parameter into NaN.
:func:`sample` replaces each such draw by the batch's first draw of positive probability (its
transition, index and probability), so every sampled transition is one that was stored and
every weight is finite; the tests force this case.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flashbax as fbx
import jax
import jax.numpy as jnp

Transition = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]
"""``(obs, action, reward, next_obs, done)``, each with a leading batch axis."""


class Replay(NamedTuple):
    """A prioritised buffer's static description (hashable, so it may be closed over in ``jit``).

    Attributes:
        capacity: transitions kept, oldest overwritten first.
        batch: transitions per draw.
        alpha: priority exponent α (0: uniform, 1: fully proportional).
    """

    capacity: int
    batch: int
    alpha: float


def _buffer(spec: Replay) -> Any:
    return fbx.make_prioritised_item_buffer(
        max_length=spec.capacity, min_length=1, sample_batch_size=spec.batch, add_batches=True,
        priority_exponent=spec.alpha,
    )  # fmt: skip


def init(spec: Replay, obs_size: int, n_branches: int) -> Any:
    """An empty buffer for observations of ``obs_size`` floats and actions of ``n_branches`` ints."""
    example = {
        "obs": jnp.zeros(obs_size, jnp.float32),
        "action": jnp.zeros(n_branches, jnp.int32),
        "reward": jnp.zeros((), jnp.float32),
        "next_obs": jnp.zeros(obs_size, jnp.float32),
        "done": jnp.zeros((), jnp.float32),
    }
    return strongly_typed(_buffer(spec).init(example))


def strongly_typed(tree: Any) -> Any:
    """``tree`` with every weakly typed array leaf made strongly typed (same dtype and value).

    flashbax starts its sum tree's ``max_recorded_priority`` as a weakly typed ``jnp.array(1.0)``;
    the first update turns it strongly typed, so a jitted training chunk would see a new input
    type on its second call and compile again (``tests/dra/test_agent.py`` checks the cache hit).
    """

    def fix(x: Any) -> Any:
        if isinstance(x, jax.Array) and x.weak_type:
            return jax.lax.convert_element_type(x, x.dtype)
        return x

    return jax.tree.map(fix, tree)


def size(state: Any, spec: Replay) -> jax.Array:
    """Transitions stored (int32 scalar, at most ``spec.capacity``)."""
    return jnp.minimum(state.running_index, spec.capacity).astype(jnp.int32)


def add(spec: Replay, state: Any, transitions: Transition) -> Any:
    """Insert ``n`` transitions (leading axis ``n``) at the current maximum priority."""
    obs, action, reward, next_obs, done = transitions
    batch = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
             "done": done.astype(jnp.float32)}  # fmt: skip
    return _buffer(spec).add(state, batch)


def sample(spec: Replay, state: Any, key: jax.Array, beta: jax.Array) -> tuple[Transition, jax.Array, jax.Array]:
    """``(batch, indices, importance weights)`` of one prioritised draw of ``spec.batch``.

    Draws of probability 0 (see the module docstring) are replaced by the first draw of positive
    probability; with an empty buffer every weight is 0.
    """
    s = _buffer(spec).sample(state, key)
    ok = s.probabilities > 0
    first = jnp.argmax(ok)

    def fixed(x: jax.Array) -> jax.Array:
        # Rows drawn with positive probability stay as drawn; the others take the first such row.
        return jnp.where(ok.reshape(ok.shape + (1,) * (x.ndim - 1)), x, x[first])

    exp = jax.tree.map(fixed, s.experience)
    prob = fixed(s.probabilities)
    w = jnp.where(prob > 0, (jnp.maximum(size(state, spec), 1) * prob) ** (-beta), 0.0)
    w = w / jnp.maximum(w.max(), jnp.finfo(w.dtype).tiny)
    batch = (exp["obs"], exp["action"], exp["reward"], exp["next_obs"], exp["done"])
    return batch, fixed(s.indices), w


def update(spec: Replay, state: Any, indices: jax.Array, td_error: jax.Array, eps: float = 1e-3) -> Any:
    """New priorities ``|δ| + ε`` (before the exponent α) for the sampled transitions."""
    return _buffer(spec).set_priorities(state, indices, jnp.abs(td_error) + eps)
