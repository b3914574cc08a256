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


def _filled(capacity, n, batch=8, alpha=1.0):
    spec = replay.Replay(capacity, batch, alpha)
    obs = jnp.arange(n, dtype=jnp.float32)[:, None]
    tr = (obs, jnp.zeros((n, 1), jnp.int32), obs[:, 0] * 10, obs + 100, jnp.zeros(n))
    return spec, replay.add(spec, replay.init(spec, 1, 1), tr)


def test_prioritised_sampling_is_proportional():
    spec, buf = _filled(8, 8)
    buf = replay.update(spec, buf, jnp.arange(8), jnp.array([1.0, 0, 0, 0, 0, 0, 0, 3.0]), eps=0.0)
    draws = [replay.sample(spec, buf, k, 1.0) for k in jax.random.split(jax.random.PRNGKey(0), 50)]
    idx = jnp.concatenate([d[1] for d in draws])
    counts = np.bincount(np.asarray(idx), minlength=8) / idx.size
    assert counts[0] == pytest.approx(0.25, abs=0.03) and counts[7] == pytest.approx(0.75, abs=0.03)
    assert counts[1:7].sum() == 0
    batch, idx, w = draws[0]
    # Each row of the batch is the transition stored at its index.
    np.testing.assert_array_equal(np.asarray(batch[0][:, 0]), np.asarray(idx, np.float32))
    np.testing.assert_array_equal(np.asarray(batch[2]), np.asarray(idx, np.float32) * 10)
    # w ∝ (N P)^−β with β = 1: P = 1/4 and 3/4, so the rare transition weighs 1, the common one 1/3.
    w_of = {int(i): float(x) for i, x in zip(np.asarray(idx), np.asarray(w), strict=True)}
    assert w_of[0] == pytest.approx(1.0) and w_of[7] == pytest.approx(1 / 3, rel=1e-5)
    assert replay.size(buf, spec) == 8


def test_a_draw_of_probability_zero_is_replaced_by_a_stored_transition():
    """The float32 sum tree can walk into an empty leaf (probability 0, infinite weight, NaN agent).
    Inflating the root, as rounding drift does, sends about half the strata past the stored mass."""
    spec, buf = _filled(64, 8, batch=64)
    tree = buf.sum_tree_state
    drifted = buf.replace(sum_tree_state=tree.replace(nodes=tree.nodes.at[0].multiply(2.0)))
    raw = replay._buffer(spec).sample(drifted, jax.random.PRNGKey(0))
    assert int((raw.probabilities == 0).sum()) > 10  # the attack bites
    batch, idx, w = replay.sample(spec, drifted, jax.random.PRNGKey(0), 0.4)
    assert np.all(np.asarray(idx) < 8)
    assert np.all(np.isfinite(np.asarray(w))) and np.all(np.asarray(w) > 0)
    np.testing.assert_array_equal(np.asarray(batch[0][:, 0]), np.asarray(idx, np.float32))


def test_an_empty_buffer_gives_zero_weights_not_nan():
    spec = replay.Replay(16, 4, 0.6)
    _batch, _idx, w = replay.sample(spec, replay.init(spec, 2, 1), jax.random.PRNGKey(0), 0.4)
    np.testing.assert_array_equal(np.asarray(w), 0.0)


def test_dqn_learns_small_instance_and_beats_static():
    # Notebook 05's run (two seeds, 40 episodes, the default agent), so its programs are shared.
    p = T.small_instance()
    cfg = dqn.DQNConfig()
    res = T.train(p, cfg, episodes=40, seeds=2)
    refs = T.reference_returns(p, dqn.eval_keys(cfg))
    assert refs["optimum"] >= refs["greedy"] - 1e-6 >= refs["static"]
    last = res.eval_return[:, -5:].mean(axis=1)
    assert (last > 0.8 * refs["optimum"]).all(), (last, refs)
    assert (last > 3 * refs["static"]).all(), (last, refs)


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


def test_evaluation_is_the_greedy_rollout_of_each_due_episode():
    # The greedy evaluation runs as its own program on the episodes' parameter snapshots. Oracle: the
    # baselines' rollout (qverify.dra.baselines.evaluate, the same key use) of the trained network on
    # the same evaluation episodes. With eval_every = 3, episodes 1, 4, 7 are evaluated and the
    # others repeat the last value; the chunk boundaries (3 chunks of 3, 3, 1) do not line up with it.
    # (That the split left the curves bit for bit as they were was checked once against the program
    # that evaluated inside the training scan, 7 episodes × 2 seeds, eval_every 1 and 3.)
    p = T.small_instance()
    cfg = dqn.DQNConfig(n_envs=2, buffer_size=256, batch_size=16, warmup=32, hidden=16, eval_every=3, eval_episodes=2)
    res = T.train(p, cfg, episodes=7, seeds=2, chunks=3)
    curve = res.eval_return
    assert np.isfinite(curve).all()
    np.testing.assert_array_equal(curve[:, 1:3], curve[:, [0, 0]])
    np.testing.assert_array_equal(curve[:, 4:6], curve[:, [3, 3]])
    for s in range(2):
        policy = T.dqn_policy(T.params_of_seed(res.params, s), p, cfg.hidden)
        rollout = B.evaluate(policy, p, dqn.eval_keys(cfg))["returns"].mean()
        assert curve[s, 6] == pytest.approx(float(rollout), rel=1e-5, abs=1e-5)
    # Chunking is bookkeeping: chunks of one episode (every boundary moved) give the same curves.
    # Their programs (1-episode chunk, one due slot) are the last chunk's above: no new compile.
    single = T.train(p, cfg, episodes=7, seeds=2, chunks=7)
    np.testing.assert_array_equal(single.eval_return, curve)
