"""The compiler options of qverify's top-level programs (qverify.xla): each left to the user when
``XLA_FLAGS`` sets it, and without effect on results beyond float32 rounding."""

from __future__ import annotations

import jax
import numpy as np

from qverify import xla
from qverify.dra import baselines as B
from qverify.dra import train as T


def test_user_flag_wins(monkeypatch):
    ours = {"xla_backend_optimization_level": xla.OPT_LEVEL, "xla_cpu_use_fusion_emitters": xla.FUSION_EMITTERS}
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_min_max=true")
    assert xla.compiler_options() == ours
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    assert xla.compiler_options() == {"xla_cpu_use_fusion_emitters": xla.FUSION_EMITTERS}
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=true")
    assert xla.compiler_options() == {}


def test_options_change_no_result_beyond_rounding():
    # The greedy policy's rollouts on the small instance (network model, measured aborts, node checks,
    # the weight rule, routing) compiled with qverify's options and with XLA's defaults (level 3, the
    # MLIR fusion emitters): neither turns on fast-math, so they agree to float32 rounding (a
    # reduction may be vectorised in another order).
    params = T.small_instance()
    policy = B.greedy_policy(params)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)

    def rollouts(options: dict) -> dict:
        fn = jax.jit(jax.vmap(lambda k: B.rollout(policy, params, k)), compiler_options=options)
        return jax.tree.map(np.asarray, fn(keys))

    ours = rollouts(xla.compiler_options())
    default = rollouts({"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True})
    assert ours.keys() == default.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], default[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.asarray(default["reward"]).std() > 0  # the rollouts did something to compare


def test_training_keeps_the_fusion_emitters(monkeypatch):
    # Training amplifies the last-bit differences between XLA's two CPU emitters into other agents
    # (qverify.xla), so its program keeps XLA's default emitters; the evaluation compiles without them
    # (the simulator's stretch keeps them too: qverify.network.sim.STRETCH_FUSION_EMITTERS).
    built = []

    class Built(Exception):
        pass

    def fake_jit(fun, **kwargs):
        built.append(kwargs)

        def refuse(*_a, **_k):
            raise Built

        return refuse

    monkeypatch.setattr(T, "jit", fake_jit)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    from qverify.dra import dqn

    try:
        T.train(T.small_instance(), dqn.DQNConfig(), episodes=1, seeds=1)
    except Built:
        pass
    assert built[0].get("fusion_emitters") is True  # the training program
    assert all("fusion_emitters" not in k for k in built[1:])  # the evaluation: the project's default
    assert xla.compiler_options(True)["xla_cpu_use_fusion_emitters"] is True
    assert xla.compiler_options()["xla_cpu_use_fusion_emitters"] is xla.FUSION_EMITTERS is False
