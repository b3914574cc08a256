"""The agent's ``tests`` branch: test rounds per link and epoch as a choice (``test_levels``).

Test rounds cost key; with levels the agent picks, per link, a multiple of ``verify_rounds``. Without
levels nothing changes (no branch, every link runs ``verify_rounds``).
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.dra import baselines as B
from qverify.dra import dqn
from qverify.dra import env as E
from qverify.dra import train as T
from qverify.errors import ParameterError, QverifyError
from qverify.network import model as M
from qverify.network.sim import SimConfig

LEVELS = (0.5, 1.0, 2.0)


@cache
def plain() -> E.EnvParams:
    return T.small_instance()


@cache
def levelled() -> E.EnvParams:
    return T.small_instance(test_levels=LEVELS)


def test_the_branch_exists_with_levels_only():
    p, q = plain(), levelled()
    e, d = p.n_links, p.n_demands
    k, n_paths = int(p.mu_levels.shape[0]), int(p.path_valid.shape[1])
    # Without levels the layout is the one without the option: μ, protocol, route, nothing else.
    assert p.test_levels is None and E.n_test_levels(p) == 0
    assert E.branch_sizes(p) == (k,) * e + (2,) * e + (n_paths,) * d
    static = E.static_action(p)
    assert static.tests is None and E.decision_of(static, p).test_scale is None
    assert E.branches_from_action(static).shape == (len(E.branch_sizes(p)),)
    # With levels: one more branch per link, last; the observation keeps its size.
    assert E.n_test_levels(q) == len(LEVELS)
    assert E.branch_sizes(q) == E.branch_sizes(p) + (len(LEVELS),) * e
    assert E.obs_size(q) == E.obs_size(p)
    static = E.static_action(q)
    np.testing.assert_array_equal(static.tests, np.full(e, LEVELS.index(1.0)))  # 1×: verify_rounds
    back = E.action_from_branches(E.branches_from_action(static), q)
    for name in ("mu_level", "protocol", "route", "tests"):
        np.testing.assert_array_equal(getattr(back, name), getattr(static, name))
    assert back.block is None
    np.testing.assert_array_equal(E.decision_of(static, q).test_scale, np.ones(e, np.float32))


def test_blocks_come_before_test_levels():
    q = levelled()
    e, d = q.n_links, q.n_demands
    both = q.replace(block_pulses=jnp.array([1e9, 1e10], jnp.float32), block_keep=jnp.ones((e, 2, 2), jnp.float32))
    assert E.branch_sizes(both) == E.branch_sizes(plain()) + (2,) * e + (len(LEVELS),) * e
    flat = jnp.arange(len(E.branch_sizes(both)), dtype=jnp.int32)
    a = E.action_from_branches(flat, both)
    np.testing.assert_array_equal(a.block, np.arange(2 * e + d, 3 * e + d))
    np.testing.assert_array_equal(a.tests, np.arange(3 * e + d, 4 * e + d))
    np.testing.assert_array_equal(E.branches_from_action(a), flat)


def test_static_level_is_the_one_nearest_to_one():
    q = levelled().replace(test_levels=jnp.array([0.25, 0.8, 3.0], jnp.float32))
    np.testing.assert_array_equal(E.static_action(q).tests, np.full(q.n_links, 1))
    q = levelled().replace(test_levels=jnp.array([2.0, 4.0], jnp.float32))
    np.testing.assert_array_equal(E.static_action(q).tests, np.zeros(q.n_links))


def _one_epoch(p: E.EnvParams, action: E.Action) -> tuple[M.NetState, list[M.SlotOut]]:
    """One epoch from a fresh state under one action, with fixed keys."""
    state = M.init(jax.random.PRNGKey(0), p)
    decision = E.decision_of(action, p)
    outs = []
    for i in range(p.epoch_slots):
        state, out = M.step(jax.random.PRNGKey(100 + i), state, decision, p)
        outs.append(out)
    return state, outs


def test_a_higher_level_costs_key_and_runs_more_rounds():
    q = levelled()
    static = E.static_action(q)
    runs = {}
    for name, level in (("low", 0), ("high", 2)):  # 0.5× and 2× verify_rounds on link 0, 1× elsewhere
        state, outs = _one_epoch(q, static.replace(tests=static.tests.at[0].set(level)))
        assert bool(outs[-1].measured)
        runs[name] = {
            "generated": sum(np.asarray(o.generated) for o in outs),
            "test_bits": sum(np.asarray(o.test_bits) for o in outs),
            "zx_heralds": np.asarray(state.counts)[:, :2, 1].sum(axis=1),
            "obs_tests": float(M.observe(state, q)[M.obs_fields(q).index("link0.tests")]),
        }
    low, high = runs["low"], runs["high"]
    assert low["generated"][0] > 0
    assert high["test_bits"][0] > low["test_bits"][0] and high["generated"][0] < low["generated"][0]
    # What the tests take is what the link does not distil: the link's key is conserved.
    np.testing.assert_allclose(high["generated"][0] + high["test_bits"][0], low["generated"][0] + low["test_bits"][0],
                               rtol=1e-5)  # fmt: skip
    # The other links run 1× either way and pay the same.
    np.testing.assert_allclose(high["test_bits"][1:], low["test_bits"][1:], rtol=1e-6)
    # Four times the rounds (20 000 against 5 000), about four times the heralded Z/X rounds ...
    assert high["zx_heralds"][0] > 3 * low["zx_heralds"][0] > 0
    # ... and the agent sees it: log10(1 + heralded Z/X rounds) / 5.
    assert high["obs_tests"] == pytest.approx(np.log10(1 + high["zx_heralds"][0]) / 5, rel=1e-5)
    assert high["obs_tests"] > low["obs_tests"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-20, 20), min_size=3, max_size=3))
def test_an_out_of_range_level_is_clipped_to_the_nearest(indices):
    q = levelled()
    action = E.static_action(q).replace(tests=jnp.asarray(indices, jnp.int32))
    want = np.asarray(LEVELS, np.float32)[np.clip(indices, 0, len(LEVELS) - 1)]
    np.testing.assert_array_equal(E.decision_of(action, q).test_scale, want)


def test_validate_action_refuses_a_bad_tests_choice_naming_it():
    q = levelled()
    static = E.static_action(q)
    E.validate_action(static, q)
    with pytest.raises(ParameterError, match=r"action\.tests = 3 is outside the allowed range \[0, 2\]"):
        E.validate_action(static.replace(tests=jnp.array([0, 3, 1], jnp.int32)), q)
    with pytest.raises(ParameterError, match=r"action\.tests = -1"):
        E.validate_action(static.replace(tests=jnp.array([0, -1, 1], jnp.int32)), q)
    with pytest.raises(ParameterError, match=r"action\.tests shape"):
        E.validate_action(static.replace(tests=jnp.zeros(2, jnp.int32)), q)
    with pytest.raises(ParameterError, match=r"action\.tests = None"):
        E.validate_action(static.replace(tests=None), q)
    # Without levels a tests choice is not part of the action and is ignored.
    E.validate_action(E.static_action(plain()).replace(tests=jnp.zeros(3, jnp.int32)), plain())
    assert E.decision_of(E.static_action(plain()).replace(tests=jnp.zeros(3, jnp.int32)), plain()).test_scale is None


@pytest.mark.parametrize(
    ("levels", "verify_rounds", "allowed"),
    [
        ((float("nan"),), 10_000, "(0, inf), finite"),
        ((1.0, float("inf")), 10_000, "(0, inf), finite"),
        ((0.0,), 10_000, "(0, inf), finite"),
        ((1.0, -0.5), 10_000, "(0, inf), finite"),
        ((1e-4,), 10_000, "[0.0003, inf)"),  # one test round an epoch: no share per basis
        ((0.2,), 12, "[0.25, inf)"),  # 2.4 rounds
        ((), 10_000, "at least one level"),
    ],
)
def test_bad_levels_are_refused_naming_the_field(levels, verify_rounds, allowed):
    with pytest.raises(ParameterError) as exc:
        SimConfig(test_levels=levels, verify_rounds=verify_rounds)
    assert exc.value.field == "test_levels" and allowed in exc.value.allowed
    if levels:  # the same rule on the environment's params
        q = levelled().replace(test_levels=jnp.asarray(levels, jnp.float32), verify_rounds=jnp.int32(verify_rounds))
        with pytest.raises(ParameterError) as exc:
            E.check_params(q)
        assert exc.value.field == "test_levels" and allowed in exc.value.allowed


def test_good_levels_are_kept_as_floats():
    assert SimConfig(test_levels=(0.25,), verify_rounds=12).test_levels == (0.25,)  # exactly 3 rounds
    cfg = SimConfig(test_levels=[1, 2])  # a list from a caller is kept as a tuple
    assert cfg.test_levels == (1.0, 2.0) and cfg.to_dict()["test_levels"] == (1.0, 2.0)
    assert SimConfig().test_levels is None
    E.check_params(levelled())
    with pytest.raises(ParameterError, match=r"test_levels shape"):
        E.check_params(levelled().replace(test_levels=jnp.ones((1, 2), jnp.float32)))


def test_baselines_choose_levels_in_range():
    q = levelled()
    key = jax.random.PRNGKey(0)
    obs, state = E.reset(key, q)
    static_level = LEVELS.index(1.0)
    for make in (B.static_policy, B.greedy_policy, B.greedy_oracle_policy):
        action = E.action_from_branches(make(q)(key, obs, state), q)
        E.validate_action(action, q)
        np.testing.assert_array_equal(action.tests, np.full(q.n_links, static_level))  # 1× (module docstring)
    picks = np.stack([np.asarray(B.random_policy(q)(k, obs, state)) for k in jax.random.split(key, 40)])
    tests = picks[:, -q.n_links :]
    assert set(np.unique(tests)) == set(range(len(LEVELS)))  # uniform over the levels


def test_training_runs_with_the_branch_and_its_policy_file_records_the_levels(tmp_path):
    q = levelled()
    config = dqn.DQNConfig(hidden=16, warmup=64, batch_size=16, eval_episodes=1)
    res = T.train(q, config, episodes=2, seeds=1, chunks=1)
    assert res.loss.shape == (1, 2) and np.all(np.isfinite(res.loss))
    assert np.all(np.isfinite(res.eval_return))
    params = T.params_of_seed(res.params, 0)
    obs, state = E.reset(jax.random.PRNGKey(1), q)
    branches = np.asarray(dqn.greedy_policy(params, q, config.hidden)(obs, state))
    assert branches.shape == (len(E.branch_sizes(q)),) and np.all(branches < np.asarray(E.branch_sizes(q)))
    path = tmp_path / "levels.msgpack"
    dqn.save_policy(path, params, q, config, {})
    loaded, _cfg, meta = dqn.load_policy(path, q)
    assert meta["signature"]["test_levels"] == list(LEVELS)
    np.testing.assert_array_equal(dqn.greedy_policy(loaded, q, config.hidden)(obs, state), branches)
    with pytest.raises(QverifyError, match="branch_sizes"):
        dqn.load_policy(path, plain())
    other = q.replace(test_levels=jnp.array([0.25, 1.0, 4.0], jnp.float32))  # same branch, other levels
    with pytest.raises(QverifyError, match=r"test_levels: policy \[0\.5, 1\.0, 2\.0\]"):
        dqn.load_policy(path, other)


def test_gymnax_action_space_has_the_branch():
    from qverify.dra.gymnax_env import QKDNetworkEnv

    q = levelled()
    env = QKDNetworkEnv(q)
    space = env.action_space()
    assert space.sizes == E.branch_sizes(q) and env.num_actions == len(E.branch_sizes(plain())) + q.n_links
    assert space.sizes[-q.n_links :] == (len(LEVELS),) * q.n_links
    a = space.sample(jax.random.PRNGKey(3))
    assert bool(space.contains(a))
    _obs, state = env.reset(jax.random.PRNGKey(0))
    obs, _state, reward, _term, _trunc, _info = env.step(jax.random.PRNGKey(1), state, a)
    assert obs.shape == env.observation_space().shape and np.isfinite(float(reward))


def test_an_agent_runs_in_the_simulator_only_with_its_levels():
    from qverify.dra.policy import DRAPolicy
    from qverify.network.sim import simulate_seeds
    from qverify.network.topology import load_builtin

    g = load_builtin("cambridge")
    agent = DRAPolicy(None, levelled())
    with pytest.raises(ParameterError, match=r"test_levels = None .*\(0\.5, 1\.0, 2\.0\), the test levels"):
        simulate_seeds(g, SimConfig(n_demands=3), 10, [0], [agent])
    with pytest.raises(ParameterError, match=r"test_levels = \(0\.5, 2\.0\)"):
        simulate_seeds(g, SimConfig(n_demands=3, test_levels=(0.5, 2.0)), 10, [0], [agent])
