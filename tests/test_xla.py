"""The optimisation level of qverify's top-level programs (qverify.xla): left to the user when
``XLA_FLAGS`` sets it, and without effect on results beyond float32 rounding."""

from __future__ import annotations

import jax
import numpy as np

from qverify import xla
from qverify.dra import baselines as B
from qverify.dra import train as T


def test_user_flag_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_min_max=true")
    assert xla.compiler_options() == {"xla_backend_optimization_level": xla.OPT_LEVEL}
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    assert xla.compiler_options() == {}


def test_level_changes_no_result_beyond_rounding():
    # The greedy policy's rollouts on the small instance (network model, measured aborts, node checks,
    # the weight rule, routing) compiled at qverify's level and at XLA's default 3: no level turns on
    # fast-math, so they agree to float32 rounding (a reduction may be vectorised in another order).
    params = T.small_instance()
    policy = B.greedy_policy(params)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)

    def rollouts(level: int) -> dict:
        fn = jax.jit(jax.vmap(lambda k: B.rollout(policy, params, k)),
                     compiler_options={"xla_backend_optimization_level": level})  # fmt: skip
        return jax.tree.map(np.asarray, fn(keys))

    ours, default = rollouts(xla.OPT_LEVEL), rollouts(3)
    assert ours.keys() == default.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], default[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.asarray(default["reward"]).std() > 0  # the rollouts did something to compare
