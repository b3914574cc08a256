"""DRA environment: jit/vmap, agreement with the network simulator, validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qverify.dra import env as E
from qverify.errors import ParameterError, QverifyError
from qverify.network.adversary import Adversary
from qverify.network.links import compile_links, link_state
from qverify.network.sim import Fluctuation, SimConfig, simulate
from qverify.network.topology import load_builtin
from qverify.physics import LCQ_2012

QUIET = Fluctuation.off()


def test_jit_and_vmap():
    p = E.from_network(load_builtin("secoqc"), SimConfig(adversary=Adversary(fraction=0.2)), seed=1)
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    _obs, st = jax.vmap(E.reset, in_axes=(0, None))(keys, p)
    a = E.static_action(p)
    o2, _st2, r, _d, _info = jax.jit(jax.vmap(E.step, in_axes=(0, 0, None, None)))(keys, st, a, p)
    assert o2.shape == (16, E.obs_size(p)) and r.shape == (16,)
    assert np.all(np.isfinite(np.asarray(o2)))


def test_link_physics_matches_network_links():
    g = load_builtin("tokyo")
    p = E.from_network(g, SimConfig(fluctuation=QUIET), seed=0)
    links = compile_links(g)
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.1, 0.7, links.n_links)
    use = rng.random(links.n_links) < 0.5
    excess = rng.normal(0, 2, links.n_links)
    ref = link_state(links, LCQ_2012, mu, use, excess, 0.9, 1.1, 0.05)
    with jax.enable_x64(True):
        p64 = jax.tree.map(
            lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, p
        )
        rate, qber = E.link_physics(p64, jnp.asarray(mu), jnp.asarray(use), jnp.asarray(excess), 0.9, 1.1, 0.05)
    # EnvParams store scalars in float32 (p_dark, e_mis, ...), hence ~1e-6 relative differences.
    np.testing.assert_allclose(np.asarray(rate), ref.key_rate_bps, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(qber), ref.qber, rtol=1e-5)


@pytest.mark.parametrize(("dead", "convention"), [(0, "discard"), (6, "squash"), (6, "discard"), (12, "squash")])
def test_detector_conventions_reach_the_network(dead, convention):
    # The network's links pay for gain, QBER and yields under the same exact detector models as
    # `qverify link` (qverify.physics.rates.rate_function at the same μ): Bob's two detectors for BB84,
    # Charlie's four for MDI-QKD. Past the relay model's limit (10 slots) a link switched to MDI-QKD
    # delivers nothing.
    from qverify.physics.rates import rate_function
    from qverify.physics.relay import MAX_DEAD_TIME_SLOTS

    g = load_builtin("tokyo")  # BB84 links from 1 km (bright: dead time matters) to 45 km
    lp = LCQ_2012.replace(dead_time_slots=dead, double_click=convention)
    links = compile_links(g)
    mu = np.linspace(0.2, 0.8, links.n_links)
    with jax.enable_x64(True):
        p = E.from_network(g, SimConfig(fluctuation=QUIET, link=lp), seed=0)
        assert (p.dead_time_slots, p.double_click) == (dead, convention)
        p64 = jax.tree.map(
            lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, p
        )
        zeros = jnp.zeros(links.n_links)
        rate, qber = E.link_physics(p64, jnp.asarray(mu), zeros > 1, zeros, 1.0, 1.0, 0.0)
        rate_mdi, qber_mdi = E.link_physics(p64, jnp.asarray(mu), zeros < 1, zeros, 1.0, 1.0, 0.0)
    want_rate, want_gain = rate_function(links.length_km, lp, "bb84")(mu)
    np.testing.assert_allclose(np.asarray(rate), want_rate * lp.source.clock_hz, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(qber), want_gain.error_gain / want_gain.gain, rtol=1e-5)
    plain = link_state(links, LCQ_2012, mu, np.zeros(links.n_links, bool))
    assert np.all(np.abs(np.asarray(rate) / plain.key_rate_bps - 1) > 1e-4)  # every link pays for the convention
    if dead > MAX_DEAD_TIME_SLOTS:
        assert np.all(np.asarray(rate_mdi) == 0)
        return
    assert np.all(np.asarray(rate_mdi) > 0)
    assert np.all(np.array([links.relay_fraction]) == 0.5)  # what rate_function assumes
    want_mdi, gain_mdi = rate_function(links.length_km, lp, "mdi")(mu)
    np.testing.assert_allclose(np.asarray(rate_mdi), want_mdi * lp.source.clock_hz, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(qber_mdi), gain_mdi.error_gain / gain_mdi.gain, rtol=1e-5)


def test_relay_dead_time_past_its_limit_is_refused_on_a_topology_with_mdi_links():
    from qverify.network.topology import grid

    with pytest.raises(ParameterError, match="MDI-QKD links") as info:
        E.from_network(grid(2, 2), SimConfig(link=LCQ_2012.replace(dead_time_slots=11)))
    assert info.value.field == "dead_time_slots"
    E.from_network(grid(2, 2), SimConfig(link=LCQ_2012.replace(dead_time_slots=10)))
    E.from_network(grid(2, 2, protocol="bb84"), SimConfig(link=LCQ_2012.replace(dead_time_slots=11)))


def test_env_and_simulator_agree_step_for_step():
    # Same instance (topology, demands, paths, Byzantine set from the same seed), no fluctuation,
    # same actions (μ 0.5 on every link, MDI-QKD everywhere, shortest path): identical trajectories.
    g = load_builtin("secoqc")
    cfg = SimConfig(
        fluctuation=QUIET, demand_bits=5e4, adversary=Adversary(fraction=0.2, behaviours=("inject", "drop"))
    )
    levels = (0.3, 0.5)
    p = E.from_network(g, cfg, seed=2, mu_levels=levels, max_steps=20)
    e = g.number_of_edges()
    act = E.Action(jnp.ones(e, jnp.int32), jnp.zeros(e, jnp.int32), jnp.zeros(p.path_valid.shape[0], jnp.int32))

    class Fixed:
        name = "fixed"

        def reset(self, ctx):
            self.ctx = ctx

        def decide(self, obs):
            from qverify.network.policy import Decision

            e = self.ctx.links.n_links
            return Decision(
                np.ones(e, bool), np.full(e, 0.5), np.ones(e, bool), np.zeros(len(self.ctx.demands), np.int64)
            )

    sim = simulate(g, cfg, 20, seed=2, policy=Fixed())
    _, st = E.reset(jax.random.PRNGKey(0), p)
    delivered, qbers = [], []
    for t in range(20):
        _, st, _r, _d, info = E.step(jax.random.PRNGKey(t), st, act, p)
        delivered.append(np.asarray(info["delivered_bits"]))
        qbers.append(np.asarray(info["qber"]))
    np.testing.assert_allclose(np.array(qbers), sim.qber_series, rtol=2e-5)
    np.testing.assert_allclose(np.array(delivered), sim.delivered_bits.sum(axis=1), rtol=2e-5)


def test_reward_charges_violations_not_clipped():
    g = load_builtin("secoqc")
    cfg = SimConfig(fluctuation=QUIET, adversary=Adversary(fraction=0.2, behaviours=("inject",), inject_prob=0.6))
    p = E.from_network(g, cfg, seed=2)  # seed 2 puts the Byzantine node on a demand's shortest path
    _, st = E.reset(jax.random.PRNGKey(0), p)
    _, _, r, _, info = E.step(jax.random.PRNGKey(1), st, E.static_action(p), p)
    assert int(info["violations"]) > 0
    assert float(r) < float(info["delivered_bits"]) / (p.demand_bits * p.path_valid.shape[0])


def test_bad_params_and_actions():
    p = E.from_network(load_builtin("cambridge"), SimConfig(n_demands=3), seed=0)  # 3 nodes: 3 distinct pairs
    with pytest.raises(ParameterError, match="loss_db_per_km"):
        E.check_params(p.replace(loss_db_per_km=jnp.float32(-1.0)))
    with pytest.raises(QverifyError, match="empty topology"):
        E.check_params(p.replace(length_km=jnp.zeros(0)))
    bad = E.Action(jnp.array([0, 9, 0]), jnp.zeros(3, jnp.int32), jnp.zeros(p.path_valid.shape[0], jnp.int32))
    with pytest.raises(ParameterError, match="mu_level"):
        E.validate_action(bad, p)
