"""The DRA environment as a gymnax ``Environment``, so gymnax wrappers and PureJaxRL-style loops plug in.

:class:`QKDNetworkEnv` wraps the pure functions of :mod:`qverify.dra.env` (one copy of the
dynamics): ``default_params``, ``action_space`` / ``observation_space``, and the base class's
auto-reset (an episode ends by time limit, ``truncated``; the state and observation returned at that
step are those of a fresh episode, the last one's observation is in ``info["final_observation"]``).

Actions are integer arrays, one entry per decision branch (μ level and protocol per link, route per
demand, then block size and test level per link when the params carry them:
:func:`qverify.dra.env.branch_sizes`), in the space :class:`MultiDiscrete`. gymnax ≥ 1.0 (the Gymnasium-style step signature
``(obs, state, reward, terminated, truncated, info)``).

>>> import jax
>>> from qverify.dra.train import small_instance
>>> env = QKDNetworkEnv(small_instance())
>>> obs, state = env.reset(jax.random.PRNGKey(0))
>>> a = env.action_space().sample(jax.random.PRNGKey(1))
>>> obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(2), state, a)
>>> obs.shape == env.observation_space().shape, bool(truncated)
(True, False)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from qverify.dra import env as E
from qverify.errors import ParameterError


class MultiDiscrete(spaces.Space):
    """Integer vectors whose entry ``b`` lies in ``[0, sizes[b])`` (one entry per action branch)."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.shape = (len(self.sizes),)
        self.dtype = jnp.int32

    def __repr__(self) -> str:
        return f"MultiDiscrete({list(self.sizes)})"

    def sample(self, key: jax.Array) -> jax.Array:
        """Each branch uniformly among its choices."""
        return jax.random.randint(key, self.shape, 0, jnp.asarray(self.sizes)).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(jnp.all(x >= 0), jnp.all(x < jnp.asarray(self.sizes)))


class QKDNetworkEnv(environment.Environment[E.EnvState, E.EnvParams]):
    """The QKD network of one instance (``template``) as a gymnax environment.

    Args:
        template: an :class:`qverify.dra.env.EnvParams`, e.g. from
            :func:`qverify.dra.env.from_network`; it is the environment's ``default_params``, and
            any params passed to ``reset``/``step`` must share its shapes.
    """

    def __init__(self, template: E.EnvParams) -> None:
        super().__init__()
        E.check_params(template)
        self.template = template
        self._checked: E.EnvParams = template

    @property
    def default_params(self) -> E.EnvParams:
        return self.template

    def check(self, params: E.EnvParams | None) -> None:
        """Refuse params passed at ``reset``/``step`` time that the constructor would refuse
        (:func:`qverify.dra.env.check_params`: field, value, allowed range) or whose shapes differ
        from the template's.

        Checked when the values are concrete, once per params object (the last one checked is
        remembered, so an eager loop pays for it once). Under a caller's ``jit`` the values are
        tracers and cannot be read: call :func:`qverify.dra.env.check_params` on them before.
        """
        if params is None or params is self._checked:
            return
        leaves = jax.tree.leaves(params)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return
        want = jax.tree.leaves_with_path(self.template)
        got = jax.tree.leaves_with_path(params)
        if len(want) != len(got):
            raise ParameterError("params", f"{len(got)} array fields", f"the template's {len(want)}")
        for (path, a), (_, b) in zip(want, got, strict=True):
            if np.shape(a) != np.shape(b):
                name = jax.tree_util.keystr(path).lstrip(".")
                raise ParameterError(f"params.{name} shape", np.shape(b), f"the template's {np.shape(a)}")
        E.check_params(params)
        self._checked = params

    def step(
        self, key: jax.Array, state: E.EnvState, action: Any, params: E.EnvParams | None = None
    ) -> tuple[jax.Array, E.EnvState, jax.Array, jax.Array, jax.Array, dict[Any, Any]]:
        """gymnax's step (auto-reset), after :meth:`check` on ``params``."""
        self.check(params)
        return super().step(key, state, action, params)

    def reset(self, key: jax.Array, params: E.EnvParams | None = None) -> tuple[jax.Array, E.EnvState]:
        """gymnax's reset, after :meth:`check` on ``params``."""
        self.check(params)
        return super().reset(key, params)

    def step_env(
        self, key: jax.Array, state: E.EnvState, action: Any, params: E.EnvParams
    ) -> tuple[jax.Array, E.EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        obs, state, reward, _done, info = E.step(
            key, state, E.action_from_branches(jnp.asarray(action), params), params
        )
        # The network never reaches a terminal state: episodes end by their time limit (truncation).
        return obs, state, reward, jnp.array(False), info

    def reset_env(self, key: jax.Array, params: E.EnvParams) -> tuple[jax.Array, E.EnvState]:
        return E.reset(key, params)

    def get_obs(self, state: E.EnvState, params: E.EnvParams | None = None, key: Any = None) -> jax.Array:
        return E.observe(state, self.template if params is None else params)

    def is_terminal(self, state: E.EnvState, params: E.EnvParams) -> jax.Array:
        return self.is_truncated(state, params)

    def is_terminated(self, state: E.EnvState, params: E.EnvParams) -> jax.Array:
        return jnp.array(False)

    def is_truncated(self, state: E.EnvState, params: E.EnvParams) -> jax.Array:
        return state.t >= params.max_steps

    @property
    def name(self) -> str:
        return "QKDNetwork-v0"

    @property
    def num_actions(self) -> int:
        """Number of decision branches (each a :class:`MultiDiscrete` entry)."""
        return len(E.branch_sizes(self.template))

    def action_space(self, params: E.EnvParams | None = None) -> MultiDiscrete:
        return MultiDiscrete(E.branch_sizes(self.template if params is None else params))

    def observation_space(self, params: E.EnvParams | None = None) -> spaces.Box:
        size = E.obs_size(self.template if params is None else params)
        return spaces.Box(-np.inf, np.inf, (size,), jnp.float32)

    def state_space(self, params: E.EnvParams | None = None) -> spaces.Dict:
        p = self.template if params is None else params
        e, d = p.length_km.shape[0], p.path_valid.shape[0]
        return spaces.Dict(
            {
                "pool": spaces.Box(0.0, np.inf, (e,), jnp.float32),
                "backlog": spaces.Box(0.0, np.inf, (d,), jnp.float32),
                "t": spaces.Discrete(int(p.max_steps) + 1),
            }
        )
