"""A second training chunk reuses the first one's compiled program: the training state's types
(dtype and weak typing of every leaf) come out of a chunk exactly as they went in."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qverify.dra import dqn, replay
from qverify.dra import train as T


def avals(tree):
    """Shape, dtype and weak typing of every leaf: what a jitted function's cache is keyed on."""
    return jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), jax.eval_shape(lambda t: t, tree))


def test_replay_state_keeps_its_types():
    # flashbax starts max_recorded_priority weakly typed; an update makes it strong. Ours starts strong.
    spec = replay.Replay(64, 8, 0.6)
    buf = replay.init(spec, 5, 2)
    batch = (jnp.zeros((4, 5)), jnp.zeros((4, 2), jnp.int32), jnp.zeros(4), jnp.zeros((4, 5)), jnp.zeros(4))

    def chunk(b):
        b = replay.add(spec, b, batch)
        _, idx, _w = replay.sample(spec, b, jax.random.PRNGKey(0), jnp.float32(0.4))
        return replay.update(spec, b, idx, jnp.ones(spec.batch))

    assert avals(jax.eval_shape(chunk, buf)) == avals(buf)


def test_second_training_chunk_hits_the_cache():
    # eval_shape traces a chunk without compiling it: its output state must have the input's types,
    # or the jitted chunk (keyed on them) would compile again on its second call.
    p = T.small_instance()
    cfg = dqn.DQNConfig(n_envs=2, buffer_size=128, batch_size=8, hidden=8, eval_episodes=1)
    init, run, _evaluate = dqn.make_train(cfg, p)
    state = init(jax.random.PRNGKey(0))
    out, _metrics = jax.eval_shape(lambda s: run(s, 1), state)
    assert avals(out) == avals(state)
