"""Replay, DQN training, baselines, save/load."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qverify.dra import baselines as B
from qverify.dra import dqn, replay
from qverify.dra import train as T
from qverify.errors import QverifyError
from qverify.network.sim import SimConfig
from qverify.network.topology import load_builtin


def test_prioritised_sampling_is_proportional():
    buf = replay.init(8, 1, 1)
    buf = replay.add_batch(
        buf, jnp.zeros((8, 1)), jnp.zeros((8, 1), jnp.int32), jnp.zeros(8), jnp.zeros((8, 1)), jnp.zeros(8)
    )
    buf = replay.update_priorities(buf, jnp.arange(8), jnp.array([1.0, 0, 0, 0, 0, 0, 0, 3.0]), eps=0.0)
    idx = jnp.concatenate([replay.sample(buf, k, 64, 1.0, 1.0)[0] for k in jax.random.split(jax.random.PRNGKey(0), 50)])
    counts = np.bincount(np.asarray(idx), minlength=8) / idx.size
    assert counts[0] == pytest.approx(0.25, abs=0.03) and counts[7] == pytest.approx(0.75, abs=0.03)
    assert counts[1:7].sum() == 0
    _, w = replay.sample(buf, jax.random.PRNGKey(1), 64, 1.0, 1.0)
    assert float(w.max()) == 1.0


def test_dqn_learns_small_instance_and_beats_static():
    p = T.small_instance()
    cfg = dqn.DQNConfig()
    res = T.train(p, cfg, episodes=40, seeds=1)
    refs = T.reference_returns(p, dqn.eval_keys(cfg))
    assert refs["optimum"] >= refs["greedy"] - 1e-6 >= refs["static"]
    assert res.eval_return[0, -5:].mean() > 0.8 * refs["optimum"]
    assert res.eval_return[0, -5:].mean() > 3 * refs["static"]


def test_oracle_at_least_every_fixed_action_per_step():
    p = T.small_instance()
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    oracle = B.evaluate(None, p, keys, oracle=True)["returns"].mean()
    static = B.evaluate(B.static_policy(p), p, keys)["returns"].mean()
    assert oracle >= static


def test_too_many_joint_actions_refused():
    from qverify.dra import env as E

    p = E.from_network(load_builtin("beijing_shanghai"), SimConfig(), seed=0)
    with pytest.raises(QverifyError, match="joint actions"):
        B.joint_actions(p)


def test_save_load_and_topology_mismatch(tmp_path):
    from qverify.dra import env as E

    p = T.small_instance()
    cfg = dqn.DQNConfig(hidden=16)
    net = dqn.BranchingQ(E.branch_sizes(p), cfg.hidden)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(E.obs_size(p)))
    path = tmp_path / "pol.msgpack"
    dqn.save_policy(path, params, p, cfg, {"topology": "cambridge"})
    loaded, cfg2, meta = dqn.load_policy(path, p)
    assert cfg2 == cfg and meta["topology"] == "cambridge"
    x = jnp.ones(E.obs_size(p))
    np.testing.assert_allclose(net.apply(loaded, x), net.apply(params, x))
    other = E.from_network(load_builtin("secoqc"), SimConfig(), seed=0)
    with pytest.raises(QverifyError, match=r"another observation/action layout \(branch_sizes: policy"):
        dqn.load_policy(path, other)
    (tmp_path / "pol.msgpack.json").write_text("{")
    with pytest.raises(QverifyError, match="truncated or corrupt"):
        dqn.load_policy(path, p)


def test_instances_trained_together_equal_agents_trained_alone():
    # One vmapped program over instances with different Byzantine counts (a traced count) must give,
    # bit for bit, the agents that separate runs give: batching is a speed-up, not a new algorithm.
    from qverify.dra import env as E

    g = load_builtin("cambridge")
    base = T.small_instance(g)
    one_byz = base.replace(random_byzantine=1)
    config = dqn.DQNConfig()
    together = T.train_instances([base, one_byz], config, 2, seeds=[3, 4], chunks=1)
    alone = T.train(one_byz, config, 2, seeds=1, seed=4, chunks=1)
    np.testing.assert_array_equal(alone.eval_return[0], together.eval_return[1])
    assert E.EnvParams is type(base)
    with pytest.raises(QverifyError, match="one per seed"):
        T.train_instances([base], config, 2, seeds=[0, 1])
