"""Several seeds in one vmapped program give, seed for seed, what each seed gives alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qverify.consensus.control import ABFTPolicy
from qverify.errors import ParameterError
from qverify.network.adversary import Adversary
from qverify.network.policy import BaselinePolicy
from qverify.network.sim import SimConfig, SimResult, prepare, simulate, simulate_seeds
from qverify.network.topology import grid, load_builtin

# Key pools are float32 sums of many slot increments; XLA may fuse the key-rate arithmetic (a
# multiply-add kept as an FMA or not) differently at another batch width, which moves a pool by one
# float32 ulp (2e-8 relative was the largest seen). Everything else must match bit for bit.
_ULP_FIELDS = {"pool_mean_bits", "mean_pool_bits"}


def assert_same(a: SimResult, b: SimResult) -> None:
    for name, value in vars(a).items():
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert value.shape == other.shape, name
            if name in _ULP_FIELDS:
                np.testing.assert_allclose(value, other, rtol=2.4e-7, atol=0, err_msg=name)  # 2 float32 ulps
            else:
                assert np.array_equal(value, other, equal_nan=True), name
    assert a.summary() == b.summary() or _same_with_nan(a.summary(), b.summary())


def _same_with_nan(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(
        (isinstance(v, float) and np.isnan(v) and np.isnan(y[k]))
        or v == y[k]
        or (k in _ULP_FIELDS and bool(np.isclose(v, y[k], rtol=2.4e-7, atol=0)))
        for k, v in x.items()
    )


@pytest.mark.parametrize("policy", ["baseline", "abft"])
def test_each_seed_as_if_alone(policy: str) -> None:
    g = load_builtin("secoqc")
    # demand_seed None: each seed draws its own demands, so the seeds' candidate paths differ in
    # shape and the stacked parameters are padded.
    cfg = SimConfig(adversary=Adversary(fraction=0.2, behaviours=("inject", "lie", "slander")))
    seeds = [0, 3, 7]

    def make() -> BaselinePolicy | ABFTPolicy:
        return BaselinePolicy() if policy == "baseline" else ABFTPolicy()

    together = simulate_seeds(g, cfg, 45, seeds, [make() for _ in seeds])
    for seed, res in zip(seeds, together, strict=True):
        assert res.params["seed"] == seed
        assert_same(res, simulate(g, cfg, 45, seed, make()))
    # The seeds are not copies of each other.
    assert not np.array_equal(together[0].measured_qber, together[1].measured_qber)


def test_path_shapes_differ_and_are_padded() -> None:
    # A 2 × 12 grid: one demand per seed; seed 6's demand needs paths longer than 8 links, so its
    # path arrays are wider than seed 5's (widths are bucketed: 8, 16, …).
    g = grid(2, 12)
    cfg = SimConfig(n_demands=1)
    seeds = [5, 6]
    shapes = {prepare(g, cfg, s)[2].links.shape for s in seeds}
    assert len(shapes) > 1, "the test needs seeds whose candidate paths differ in shape"
    for seed, res in zip(seeds, simulate_seeds(g, cfg, 30, seeds), strict=True):
        assert_same(res, simulate(g, cfg, 30, seed))


def test_bad_input() -> None:
    g = load_builtin("secoqc")
    with pytest.raises(ParameterError, match="seeds"):
        simulate_seeds(g, SimConfig(), 10, [])
    with pytest.raises(ParameterError, match="policies"):
        simulate_seeds(g, SimConfig(), 10, [0, 1], [BaselinePolicy()])
    with pytest.raises(ParameterError, match="slots"):
        simulate_seeds(g, SimConfig(), 0, [0])


def test_an_agent_runs_only_on_the_observation_it_was_trained_on() -> None:
    from qverify.dra import env as E
    from qverify.dra.policy import DRAPolicy

    g = load_builtin("secoqc")
    cfg = SimConfig(adversary=Adversary(fraction=0.2), demand_seed=0)
    env_params = E.from_network(g, cfg, seed=0, max_steps=50, random_byzantine=True)
    agent = DRAPolicy({}, env_params, 32)  # refused before its weights are read
    with pytest.raises(ParameterError, match=r"observation = 'oracle' .* 'measured', the observation the agent"):
        simulate_seeds(g, replace(cfg, observation="oracle"), 10, [0], [agent])


@pytest.mark.parametrize("with_abft", [False, True])
def test_agent_policies_each_seed_as_if_alone(with_abft: bool) -> None:
    """A DQN agent (untrained weights: the decisions only need to be some function of the
    observation) deployed on every seed; with ABFT each seed's control plane suspects its own
    Byzantine node, so the agents' route constraints differ per seed and go in per seed."""
    import jax
    import jax.numpy as jnp

    from qverify.dra import env as E
    from qverify.dra.dqn import BranchingQ
    from qverify.dra.policy import DRAPolicy

    g = load_builtin("secoqc")
    cfg = SimConfig(adversary=Adversary(fraction=0.2), demand_seed=0)
    env_params = E.from_network(g, cfg, seed=0, max_steps=50, random_byzantine=True)
    q = BranchingQ(E.branch_sizes(env_params), 32).init(jax.random.PRNGKey(1), jnp.zeros((E.obs_size(env_params),)))

    def make() -> DRAPolicy:
        return DRAPolicy(q, env_params, 32, ABFTPolicy() if with_abft else None)

    seeds = [0, 2, 5]
    together = simulate_seeds(g, cfg, 40, seeds, [make() for _ in seeds])
    for seed, res in zip(seeds, together, strict=True):
        assert_same(res, simulate(g, cfg, 40, seed, make()))


def test_a_short_last_epoch_reuses_the_epochs_program() -> None:
    # A run whose slots are not a multiple of the epoch ends on a shorter stretch; it runs in the
    # full epochs' compiled program (the slots past the count are skipped), not in one compiled for
    # its length, and every slot is the one a longer run gives (a slot's randomness does not depend
    # on how long its stretch was compiled). A 2 × 2 grid with 7-slot epochs: shapes no other test builds.
    from qverify.network import sim

    g = grid(2, 2)
    cfg = SimConfig(n_demands=1, epoch_slots=7)
    before = sim._stretch._cache_size()
    short = simulate(g, cfg, 10, seed=1)  # 7 + 3 slots
    assert sim._stretch._cache_size() - before == 1
    full = simulate(g, cfg, 14, seed=1)  # 7 + 7
    assert sim._stretch._cache_size() - before == 1
    for name in (
        "availability",
        "delivered_bits",
        "exposed_bits",
        "qber_series",
        "in_use",
        "pool_mean_bits",
        "aborted",
    ):
        np.testing.assert_array_equal(getattr(short, name), getattr(full, name)[:10], err_msg=name)
    np.testing.assert_array_equal(short.measured_qber, full.measured_qber[:1])  # the one complete epoch
    assert short.delivered_bits.shape[0] == 10 and full.delivered_bits.shape[0] == 14
