"""The LP upper bound on an episode's return (qverify.dra.bound)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.dra import baselines as B
from qverify.dra import bound
from qverify.dra import train as T
from qverify.errors import ParameterError
from qverify.network.adversary import Adversary


def _series_params(cap: float):
    """One demand over one path of two links (nodes 0-1-2, relay 1), requests of 1 bit per slot."""
    p = T.small_instance()
    return p.replace(
        path_links=jnp.array([[[0, 1]]]),
        path_inner=jnp.array([[[1]]]),
        path_valid=jnp.array([[True]]),
        demand_bits=1.0,
        pool_cap_bits=cap,
        drop_keys=True,
    )


def _greedy_series(bits: np.ndarray, cap: float) -> float:
    """Slot by slot: fill each pool to the cap with the best option, deliver as much as both pools allow.

    With one demand on one path this is optimal (delivering earlier never leaves less key later), so
    it is an independent oracle of the LP's optimum.
    """
    pool = np.zeros(bits.shape[2])
    total = 0.0
    for t in range(bits.shape[0]):
        pool = np.minimum(pool + bits[t].max(axis=0), cap)
        z = min(1.0, pool.min())
        pool -= z
        total += z
    return total


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(st.floats(0.0, 2.0), min_size=8 * 3 * 2, max_size=8 * 3 * 2),
    cap=st.sampled_from([0.5, 1.5, 1e9]),
)
def test_series_path_bound_equals_greedy_oracle(data, cap):
    params = _series_params(cap)
    on_path = np.asarray(data).reshape(8, 3, 2)  # 8 slots, 3 options, 2 links on the path
    bits = np.concatenate([on_path, np.full((8, 3, params.n_links - 2), 5.0)], axis=2)  # off-path links
    active = np.zeros((8, params.n_nodes), dtype=bool)
    assert bound.episode_bound(params, bits, active) == pytest.approx(_greedy_series(on_path, cap), abs=1e-6)


def test_active_byzantine_relay_blocks_its_path():
    params = _series_params(1e9)
    bits = np.ones((4, 3, params.n_links))
    active = np.zeros((4, params.n_nodes), dtype=bool)
    active[1:3, 1] = True  # the relay drops keys in slots 1 and 2
    # Slots 0 and 3 deliver one request each (the pools keep what slots 1 and 2 generated).
    assert bound.episode_bound(params, bits, active) == pytest.approx(2.0, abs=1e-9)


def test_bound_is_above_every_policy_on_every_episode():
    params = T.small_instance(adversary=Adversary(fraction=0.34)).replace(max_steps=12)
    assert bool(np.asarray(params.byzantine).any())
    keys = jax.random.split(jax.random.PRNGKey(7), 6)
    ub = np.asarray(bound.upper_bound(params, keys)["upper_bound_episodes"])
    for pol in (B.static_policy(params), B.random_policy(params), B.greedy_policy(params),
                B.greedy_oracle_policy(params), None):  # fmt: skip
        ret = B.evaluate(pol, params, keys, oracle=pol is None)["returns"]
        assert np.all(ret <= ub + 1e-4), (ret, ub)
    # Not vacuous: the bound is below serving every request in every slot.
    assert ub.mean() < params.max_steps


def test_other_relay_modes_are_refused():
    params = T.small_instance().replace(relay="xor")
    with pytest.raises(ParameterError, match="relay"):
        bound.upper_bound(params, jax.random.split(jax.random.PRNGKey(0), 2))


def test_evaluate_many_equals_one_policy_at_a_time():
    # The instance and episode count of test_bound_is_above_every_policy_on_every_episode: the
    # one-policy programs are then the same programs, compiled once in a session.
    params = T.small_instance(adversary=Adversary(fraction=0.34)).replace(max_steps=12)
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    policies = {"static": B.static_policy(params), "random": B.random_policy(params),
                "greedy": B.greedy_policy(params)}  # fmt: skip
    many = B.evaluate_many(policies, params, keys)
    for name, pol in policies.items():
        one = B.evaluate(pol, params, keys)
        for k in ("returns", "delivered_bits", "served", "violations"):
            np.testing.assert_allclose(many[name][k], one[k], rtol=1e-5, atol=1e-6, err_msg=f"{name}.{k}")
