"""The gymnax Environment: spaces, auto-reset, and gymnax's own wrappers in a PureJaxRL-style loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.wrappers.purerl import LogWrapper

from qverify.dra import env as E
from qverify.dra.gymnax_env import MultiDiscrete, QKDNetworkEnv
from qverify.dra.train import small_instance


def test_steps_equal_the_pure_functions_and_actions_stay_in_space():
    p = small_instance()
    env = QKDNetworkEnv(p)
    space = env.action_space()
    assert isinstance(space, MultiDiscrete) and space.sizes == E.branch_sizes(p)
    obs, state = env.reset(jax.random.PRNGKey(0))
    obs_ref, state_ref = E.reset(jax.random.PRNGKey(0), p)
    np.testing.assert_allclose(obs, obs_ref, rtol=1e-6, atol=1e-7)  # jitted vs eager float32
    a = space.sample(jax.random.PRNGKey(1))
    assert bool(space.contains(a)) and not bool(space.contains(a + jnp.asarray(space.sizes)))
    key = jax.random.PRNGKey(2)
    o1, _s1, r1, term, trunc, _ = env.step(key, state, a)
    # gymnax splits the key into (step, reset) halves; the step half drives the dynamics.
    o2, _s2, r2, _d, _i = E.step(jax.random.split(key)[0], state_ref, E.action_from_branches(a, p), p)
    np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
    assert abs(float(r1) - float(r2)) < 1e-5 and not bool(term) and not bool(trunc)


def test_purejaxrl_style_loop_with_log_wrapper_auto_resets():
    # The shape of PureJaxRL's rollout: vmapped envs inside a jitted lax.scan, random actions.
    p = small_instance()
    env = LogWrapper(QKDNetworkEnv(p))
    n_envs, steps = 4, 3 * p.max_steps + 5

    def rollout(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs), p)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            act = jax.vmap(env.action_space(p).sample)(jax.random.split(k_act, n_envs))
            obs, state, _reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, n_envs), state, act, p
            )
            return (obs, state), (obs[:, -1], term | trunc, info["returned_episode_lengths"])

        _, out = jax.lax.scan(body, (obs, state), jax.random.split(k_run, steps))
        return out

    time_feature, done, lengths = jax.jit(rollout)(jax.random.PRNGKey(0))
    assert float(time_feature.max()) <= 1.0  # the time feature never runs past the episode end
    assert int(done.sum()) == 3 * n_envs  # exactly three episode ends per environment
    assert set(np.unique(np.asarray(lengths)[done])) == {p.max_steps}
