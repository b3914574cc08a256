"""Bad input found trying the network layer as a new user would: one-line errors that name the field,
the value and the allowed range (exit 2 on the CLI), and the documented rule for out-of-range actions."""

from __future__ import annotations

import math
import subprocess
import sys

import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from qverify.dra import env as E
from qverify.errors import ParameterError
from qverify.network.adversary import Adversary
from qverify.network.sim import Fluctuation, SimConfig, build_params
from qverify.network.topology import grid

NAN = math.nan


def _graph(n_nodes: int, edges: list[tuple[int, int, dict]]) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from(edges)
    return g


@pytest.mark.parametrize(
    ("g", "field"),
    [
        (_graph(3, []), "edges"),
        (_graph(1, []), "nodes"),
        (_graph(2, [(0, 1, {})]), "length_km of link 0–1"),
        (_graph(2, [(0, 1, {"length_km": "ten"})]), "length_km of link 0–1"),
        (_graph(2, [(0, 1, {"length_km": NAN})]), "length_km of link 0–1"),
    ],
)
def test_bad_topology_names_the_field(g, field):
    cfg = SimConfig(n_demands=1, adversary=Adversary(fraction=0.0))
    with pytest.raises(ParameterError, match=field):
        E.from_network(g, cfg)


def test_more_demands_than_node_pairs():
    g = _graph(2, [(0, 1, {"length_km": 10.0})])
    with pytest.raises(ParameterError, match=r"n_demands = 4 .*\[1, 1\]"):
        build_params(g, SimConfig(n_demands=4, adversary=Adversary(fraction=0.0)))


@pytest.mark.parametrize("field", ["demand_bits", "slot_s", "pool_cap_bits"])
def test_nan_config_is_refused(field):
    with pytest.raises(ParameterError, match=field):
        SimConfig(**{field: NAN})


def test_nan_fluctuation_and_mu_levels_are_refused():
    with pytest.raises(ParameterError, match="fade_db"):
        Fluctuation(fade_db=NAN)
    p = build_params(grid(1, 3), SimConfig(n_demands=1, adversary=Adversary(fraction=0.0)))
    with pytest.raises(ParameterError, match="mu_levels"):
        E.check_params(p.replace(mu_levels=jnp.asarray([0.1, NAN], jnp.float32)))


def _just_outside(lo: float, hi: float, lo_open: bool, hi_open: bool) -> list[float]:
    """Values the range refuses: NaN, and the nearest ones past each finite end."""
    out = [NAN]
    out.append(lo if lo_open else lo - 1e-3 * max(1.0, abs(lo)))
    if math.isfinite(hi):
        out.append(hi if hi_open else hi + 1e-3 * max(1.0, abs(hi)))
    return out


_OUTSIDE = [(f, v) for f, *r in E.PARAM_RANGES for v in _just_outside(*r)]


@pytest.mark.parametrize(("field", "value"), _OUTSIDE, ids=[f"{f}={v:g}" for f, v in _OUTSIDE])
def test_params_edited_after_construction_are_refused(field, value):
    # The constructors' ranges hold for params edited afterwards (params.replace), field named.
    p = build_params(grid(1, 3), SimConfig(n_demands=1, adversary=Adversary(fraction=0.0)))
    E.check_params(p)
    with pytest.raises(ParameterError, match=rf"^{field} = "):
        E.check_params(p.replace(**{field: value}))


def test_gymnax_env_refuses_bad_params_at_step_time():
    import jax

    from qverify.dra.gymnax_env import QKDNetworkEnv

    p = build_params(grid(1, 3), SimConfig(n_demands=1, adversary=Adversary(fraction=0.0)))
    env = QKDNetworkEnv(p)
    key = jax.random.PRNGKey(0)
    _obs, state = env.reset(key)
    a = env.action_space().sample(key)
    for bad, field in (
        (p.replace(verify_rounds=-5), "verify_rounds = -5 "),
        (p.replace(demand_bits=NAN), "demand_bits = nan"),
        (p.replace(slot_s=NAN), "slot_s = nan"),
        (p.replace(length_km=jnp.zeros(3)), "length_km shape"),
    ):
        with pytest.raises(ParameterError, match=field):
            env.step(key, state, a, bad)
        with pytest.raises(ParameterError, match=field):
            env.reset(key, bad)
    # Valid params passed explicitly run; the template (the default) needs no check.
    env.step(key, state, a, p.replace(demand_bits=1000.0))


def test_out_of_range_actions_follow_the_stated_rule():
    # The rule (env.decision_of): μ level, route and block indices are clipped to the nearest valid
    # one; a protocol other than 0 means BB84. validate_action refuses the same actions outside jit.
    p = build_params(grid(1, 3), SimConfig(n_demands=1, adversary=Adversary(fraction=0.0)))
    k = p.mu_levels.shape[0]
    a = E.Action(jnp.array([-3, k + 5]), jnp.array([0, 7]), jnp.array([9]))
    d = E.decision_of(a, p)
    np.testing.assert_allclose(np.asarray(d.mu), np.asarray(p.mu_levels)[[0, k - 1]])
    assert np.asarray(d.use_mdi).tolist() == [True, False]
    with pytest.raises(ParameterError, match=r"action.mu_level = -3"):
        E.validate_action(a, p)


def test_cli_refuses_a_graph_without_edges(tmp_path):
    path = tmp_path / "lonely.graphml"
    g = nx.Graph()
    g.add_nodes_from((i, {"x_km": float(i), "y_km": 0.0}) for i in range(3))
    nx.write_graphml(g, path)
    r = subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", "simulate", "--topology", str(path), "--slots", "2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "edges" in lines[0] and "Traceback" not in r.stderr
