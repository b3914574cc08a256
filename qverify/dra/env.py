"""The DRA environment: the network model of :mod:`qverify.network.model` seen through actions.

There is one network model; this module only turns branch choices into a
:class:`~qverify.network.model.Decision` and defines the reward. :class:`qverify.dra.gymnax_env.QKDNetworkEnv`
wraps these pure functions as a gymnax ``Environment`` (spaces, auto-reset).

``reset(key, params) -> (obs, state)`` and ``step(key, state, action, params) ->
(obs, state, reward, done, info)`` are pure, ``jit``-able and ``vmap``-able. The observation is
:func:`qverify.network.model.observe` — the same function the simulator feeds a deployed agent:
only what a network could measure (the settings chosen, the epoch's test counts, reports and
aborts, weights, node-check reports, pools, a noisy loss monitor, backlog). The truth (true QBER,
Byzantine set, latent drifts, exact loss, noise-free rate) is in ``info["simulator_only"]``. The weights are the control plane's: in training
the model's :func:`~qverify.network.model.weight_rule` folds every epoch's reports into them exactly
as the control plane's voting does, and when the agent is deployed under ABFT the weights its PBFT
instances adopted replace them (the same vector whenever the instances commit, as they do with at
most f faulty replicas).

Actions are factored (one branch per decision, for action-branching agents):

* ``mu_level`` (E,) — index into ``params.mu_levels`` per link;
* ``protocol`` (E,) — 0 = MDI-QKD, 1 = decoy BB84;
* ``route`` (D,) — candidate path per demand;
* ``block`` (E,) — finite-key block size per link, an index into ``params.block_pulses`` (only
  when the network distils finite keys, :func:`qverify.network.blocks.with_finite_blocks`);
* ``tests`` (E,) — test rounds per link and epoch, an index into ``params.test_levels``, multiples
  of ``params.verify_rounds`` (only when the params carry levels, e.g.
  ``SimConfig(test_levels=(0.5, 1, 2))``; without them every link runs ``verify_rounds``). Test
  rounds cost key (a slot keeps ``1 − (rounds / epoch_slots) / detections`` of its key, see
  :mod:`qverify.network.model`); more rounds tighten the endpoints' Clopper–Pearson bound, so fewer
  honest links are aborted by chance. The agent sees the rounds its links ran: the observation's
  ``tests`` field per link is log10(1 + heralded Z/X test rounds) / 5, with the ``upper`` bound
  they gave.

The branches come in this order, flat: μ levels, protocols, routes, then blocks and test levels
when present (:func:`branch_sizes`).

Reward per step = delivered key / requested key (in [0, 1]) − ``violation_cost`` × (links on the
chosen routes whose true QBER exceeds ``qber_threshold``) / (links on the chosen routes). The reward
is the simulator's training signal and may read the truth; the agent's input may not.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qverify.errors import ParameterError, QverifyError
from qverify.network import model as M
from qverify.physics._validate import check_range

EnvParams = M.NetParams
EnvState = M.NetState
link_physics = M.link_physics
observe = M.observe
obs_size = M.obs_size


@struct.dataclass
class Action:
    mu_level: jax.Array  # (E,) int
    protocol: jax.Array  # (E,) int
    route: jax.Array  # (D,) int
    block: Any = None  # (E,) int, with finite-key blocks only
    tests: Any = None  # (E,) int, index into params.test_levels, with test levels only


def n_blocks(params: EnvParams) -> int:
    """Block sizes the agent chooses from (0: the network distils asymptotic key, no block branch)."""
    return 0 if params.block_pulses is None else int(params.block_pulses.shape[0])


def n_test_levels(params: EnvParams) -> int:
    """Test-round levels the agent chooses from (0: no ``tests`` branch, every link runs ``verify_rounds``)."""
    return 0 if params.test_levels is None else int(params.test_levels.shape[0])


def branch_sizes(params: EnvParams) -> tuple[int, ...]:
    """Options of every action branch: E × K (μ), E × 2 (protocol), D × P (route), then E × B (block)
    and E × T (tests) when the params carry block sizes and test levels."""
    e = params.length_km.shape[0]
    d, p = params.path_valid.shape
    k = params.mu_levels.shape[0]
    b = n_blocks(params)
    t = n_test_levels(params)
    return (k,) * e + (2,) * e + (p,) * d + ((b,) * e if b else ()) + ((t,) * e if t else ())


def action_from_branches(branches: jax.Array, params: EnvParams) -> Action:
    """Split a flat (B,) int vector of branch choices into an :class:`Action`."""
    e = params.length_km.shape[0]
    d = params.path_valid.shape[0]
    at = 2 * e + d
    block = None
    if n_blocks(params):
        block, at = branches[at : at + e], at + e
    tests = branches[at : at + e] if n_test_levels(params) else None
    return Action(branches[:e], branches[e : 2 * e], branches[2 * e : 2 * e + d], block, tests)


def branches_from_action(action: Action) -> jax.Array:
    optional = [a for a in (action.block, action.tests) if a is not None]
    parts = [action.mu_level, action.protocol, action.route, *optional]
    return jnp.concatenate(parts).astype(jnp.int32)


def decision_of(action: Action, params: EnvParams, usable: jax.Array | None = None) -> M.Decision:
    """The network decision an action stands for (every link usable unless ``usable`` says otherwise).

    Out-of-range actions (the rule; :func:`validate_action` refuses them outside ``jit``): a μ level,
    route, block or test-level index is clipped to the nearest valid one, a protocol other than 0
    means BB84. The test level becomes ``Decision.test_scale = test_levels[index]``; without test
    levels in ``params``, or without a ``tests`` choice, every link runs ``verify_rounds`` (scale 1).
    """
    mu = params.mu_levels[jnp.clip(action.mu_level, 0, params.mu_levels.shape[0] - 1)]
    use = jnp.ones(params.length_km.shape[0], dtype=bool) if usable is None else usable
    scale = None
    if n_test_levels(params) and action.tests is not None:
        scale = params.test_levels[jnp.clip(action.tests, 0, n_test_levels(params) - 1)]
    return M.Decision(use, mu, action.protocol == 0, action.route.astype(jnp.int32), action.block, scale)


# Jitted, so that eager calls in a loop compile once per shape (see qverify.network.model.run).
@jax.jit
def reset(key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
    """Initial state (:func:`qverify.network.model.init`): calm channel, empty pools, no report yet.

    With ``params.random_byzantine = k > 0`` the Byzantine set is drawn anew (k nodes, uniformly)
    at every reset, so an agent learns to allocate without knowing where the adversary sits.
    """
    state = M.init(key, params)
    return observe(state, params), state


# Jitted, so that eager calls in a loop compile once per shape (see qverify.network.model.run).
@jax.jit
def step(
    key: jax.Array, state: EnvState, action: Action, params: EnvParams, measure_now: jax.Array | None = None
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """Advance one slot. Returns ``(obs, state, reward, done, info)``; no auto-reset.

    ``measure_now``: see :func:`qverify.network.model.step` (pass
    ``qverify.network.model.epoch_end(i, params)`` from a scan over an episode's slots ``i``).
    """
    new, out = M.step(key, state, decision_of(action, params), params, measure_now)
    d = params.path_valid.shape[0]
    reward = out.delivered.sum() / (params.demand_bits * d) - params.violation_cost * out.violations / jnp.maximum(
        out.in_use.sum(), 1
    )
    done = new.t >= params.max_steps
    info = {
        "delivered_bits": out.delivered.sum(),
        "served": out.served.mean(),
        "violations": out.violations,
        "qber_in_use": jnp.where(out.in_use, out.qber, jnp.nan),
        "qber": out.qber,
        "simulator_only": truth(new, out, params),
    }
    return observe(new, params), new, reward.astype(jnp.float32), done, info


def truth(state: EnvState, out: M.SlotOut, params: EnvParams) -> dict[str, jax.Array]:
    """What the simulator knows and no network could (``info["simulator_only"]``), so anyone can check
    that the observation does not carry it: the true QBER per link, the Byzantine set (active
    ones), the latent drifts and excess loss, the exact total loss, the noise-free key rate, and the
    links whose endpoints' estimation aborted against the truth (false and missed aborts)."""
    bad = out.qber > params.qber_threshold
    return {
        "qber": out.qber,
        "byzantine": state.byzantine,
        "active_byzantine": M.active_byzantine(state, params),
        "log_eta": state.log_eta,
        "log_src": state.log_src,
        "excess_db": state.excess_db,
        "loss_db": state.loss_db,
        "rate_bps": state.rate_bps,
        "false_abort": out.aborted & ~bad,
        "missed_abort": ~out.aborted & bad,
    }


def option_rates(
    params: EnvParams, excess_db: jax.Array, eta_scale: jax.Array, clock_scale: jax.Array, extra_error: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Key rate (bit/s) and signal QBER of every link under every (μ, protocol) option, shape (2K, E).

    Option ``a`` is μ level ``a // 2`` with MDI-QKD when ``a`` is even and decoy BB84 when odd.
    """
    e = params.length_km.shape[0]
    mus = jnp.repeat(params.mu_levels, 2)
    flags = jnp.tile(jnp.array([True, False]), params.mu_levels.shape[0])

    def option(mu: jax.Array, flag: jax.Array) -> tuple[jax.Array, jax.Array]:
        return link_physics(params, jnp.full(e, mu), jnp.full(e, flag), excess_db, eta_scale, clock_scale, extra_error)

    return jax.vmap(option)(mus, flags)


def validate_action(action: Action, params: EnvParams) -> None:
    """Raise ``ParameterError`` for an out-of-range action (non-jitted API only)."""
    branches = [
        ("mu_level", action.mu_level, params.mu_levels.shape[0]),
        ("protocol", action.protocol, 2),
        ("route", action.route, params.path_valid.shape[1]),
    ]
    if n_blocks(params):
        if action.block is None:
            raise ParameterError("action.block", None, f"(E,) indices in [0, {n_blocks(params) - 1}]")
        branches.append(("block", action.block, n_blocks(params)))
    if n_test_levels(params):
        if action.tests is None:
            raise ParameterError("action.tests", None, f"(E,) indices in [0, {n_test_levels(params) - 1}]")
        branches.append(("tests", action.tests, n_test_levels(params)))
    for name, arr, hi in branches:
        a = np.asarray(arr)
        want = np.asarray(getattr(static_action(params), name)).shape
        if a.shape != want:
            raise ParameterError(f"action.{name} shape", a.shape, str(want))
        if a.size and (a.min() < 0 or a.max() >= hi):
            bad = a[(a < 0) | (a >= hi)][0]
            raise ParameterError(f"action.{name}", int(bad), f"[0, {hi - 1}]")


def static_action(params: EnvParams) -> Action:
    """The static default: the middle μ level, the protocol as built, the shortest path, the
    largest block that closes within half an episode at the nominal clock (else the smallest), and
    the test level equal to 1 (``verify_rounds``; else the nearest to it, the first of a tie)."""
    e = params.length_km.shape[0]
    d = params.path_valid.shape[0]
    k = params.mu_levels.shape[0]
    block = None
    if n_blocks(params):
        fits = params.block_pulses / M.pulses_per_slot(params) <= params.max_steps / 2
        block = jnp.full(e, jnp.maximum(fits.sum() - 1, 0), dtype=jnp.int32)
    tests = None
    if n_test_levels(params):
        tests = jnp.full(e, jnp.argmin(jnp.abs(params.test_levels - 1.0)), dtype=jnp.int32)
    return Action(
        jnp.full(e, k // 2, dtype=jnp.int32),
        jnp.where(params.is_mdi, 0, 1).astype(jnp.int32),
        jnp.zeros(d, dtype=jnp.int32),
        block,
        tests,
    )


PARAM_RANGES: tuple[tuple[str, float, float, bool, bool], ...] = (
    # (field, low, high, low open, high open): the ranges the constructors refuse outside
    # (LinkParams, Fluctuation, SimConfig), so params edited after construction meet the same rules.
    ("loss_db_per_km", 0.0, 10.0, False, False),
    ("eta_det", 0.0, 1.0, True, False),
    ("p_dark", 0.0, 1.0, False, True),
    ("e_mis", 0.0, 0.5, False, False),
    ("f_ec", 1.0, 10.0, False, False),
    ("sift_mdi", 0.0, 1.0, True, False),
    ("sift_bb84", 0.0, 1.0, True, False),
    ("clock_hz", 0.0, math.inf, True, True),
    ("inject_prob", 0.0, 1.0, False, False),
    ("inject_error", 0.0, 0.5, False, False),
    ("demand_bits", 0.0, math.inf, True, True),
    ("pool_cap_bits", 0.0, math.inf, True, False),
    ("slot_s", 0.0, math.inf, True, True),
    ("qber_threshold", 0.0, 0.5, True, False),
    ("violation_cost", 0.0, math.inf, False, True),
    ("loss_sigma_db", 0.0, math.inf, False, True),
    ("loss_theta", 0.0, 1.0, True, False),
    ("fade_rate", 0.0, 1.0, False, False),
    ("fade_db", 0.0, math.inf, False, True),
    ("fade_slots", 1.0, math.inf, False, True),
    ("eta_sigma", 0.0, math.inf, False, True),
    ("source_sigma", 0.0, math.inf, False, True),
    ("drift_theta", 0.0, 1.0, True, False),
    ("verify_rounds", 3.0, math.inf, False, True),
    ("pe_confidence", 0.5, 1.0, False, True),
    ("monitor_sigma_db", 0.0, math.inf, False, True),
    ("node_rounds", 0.0, math.inf, False, True),
)


def check_params(params: EnvParams) -> None:
    """Raise a clear error (``ParameterError`` naming field, value and allowed range) for invalid
    parameters; call outside ``jit``.

    The same ranges as the constructors (:class:`qverify.physics.params.LinkParams`,
    :class:`qverify.network.sim.Fluctuation`, :class:`qverify.network.sim.SimConfig`), so params
    edited after construction (``params.replace(verify_rounds=-5)``) are refused alike; the gymnax
    environment applies it to params passed at ``reset``/``step`` time.

    >>> from qverify.network.sim import SimConfig
    >>> from qverify.network.topology import grid
    >>> params = from_network(grid(1, 2), SimConfig(n_demands=1))
    >>> check_params(params.replace(verify_rounds=-5))
    Traceback (most recent call last):
    ...
    qverify.errors.ParameterError: verify_rounds = -5 is outside the allowed range [3, inf)
    """
    if params.length_km.shape[0] == 0:
        raise QverifyError("empty topology: the environment needs at least one link")
    check_range("length_km", params.length_km, 0.0, 1e5, low_open=True)
    for name, lo, hi, lo_open, hi_open in PARAM_RANGES:
        value = getattr(params, name)
        if np.ndim(value) == 0:  # a 0-d array (strongly typed params) is named by its value
            value = np.asarray(value).item()
        check_range(name, value, lo, hi, low_open=lo_open, high_open=hi_open)
    check_range("mu_levels", params.mu_levels, 0.0, math.inf, low_open=True, high_open=True)
    if params.max_steps < 1:
        raise ParameterError("max_steps", params.max_steps, "[1, inf)")
    if params.epoch_slots < 1:
        raise ParameterError("epoch_slots", int(params.epoch_slots), "[1, inf)")
    if params.test_levels is not None:
        levels = np.asarray(params.test_levels, dtype=float)
        if levels.ndim != 1:
            raise ParameterError("test_levels shape", levels.shape, "(T,) with T ≥ 1")
        M.check_test_levels(levels.tolist(), int(params.verify_rounds))


def from_network(g: Any, config: Any, seed: int = 0, mu_levels: tuple[float, ...] = (0.1, 0.25, 0.45, 0.7),
                 max_steps: int = 100, violation_cost: float = 1.0, random_byzantine: bool = False) -> EnvParams:  # fmt: skip
    """EnvParams for topology ``g`` under a :class:`qverify.network.sim.SimConfig` (same draws).

    The instance is :func:`qverify.network.sim.build_params` with the same ``seed``, so the
    environment and ``qverify simulate`` describe the same network. ``random_byzantine=True`` keeps
    the number of Byzantine nodes but draws their placement anew every episode.
    """
    from qverify.network.sim import build_params

    params = build_params(g, config, seed, mu_levels, max_steps, violation_cost, random_byzantine)
    check_params(params)
    return params


def strongly_typed(params: EnvParams) -> EnvParams:
    """Python scalars in ``params`` as float32 / int32 / bool arrays.

    Weakly typed leaves would give states whose dtypes differ between ``reset`` and ``step``, and a
    jitted training loop would then recompile on every call.
    """

    def fix(x: Any) -> Any:
        if isinstance(x, bool):
            return jnp.asarray(x, dtype=jnp.bool_)
        if isinstance(x, int):
            return jnp.asarray(x, dtype=jnp.int32)
        if isinstance(x, float):
            return jnp.asarray(x, dtype=jnp.float32)
        return x

    return jax.tree.map(fix, params)
