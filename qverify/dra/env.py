"""The QKD network as a pure-JAX environment for dynamic resource allocation.

These are the pure functions; :class:`qverify.dra.gymnax_env.QKDNetworkEnv` wraps them as a gymnax
``Environment`` (spaces, auto-reset) for gymnax wrappers and PureJaxRL-style loops.

``reset(key, params) -> (obs, state)`` and ``step(key, state, action, params) ->
(obs, state, reward, done, info)`` are pure, ``jit``-able and ``vmap``-able; ``EnvParams`` and
``EnvState`` are flax struct dataclasses (pytrees). The dynamics are those of
:mod:`qverify.network.sim` written in ``jax.numpy`` with the same physics functions
(:mod:`qverify.physics`): OU excess loss in dB plus fades, drifting detector efficiency and source
rate, Byzantine nodes injecting corrupted states and dropping relayed keys, key pools and demands.

Actions are factored (one branch per decision, for action-branching agents):

* ``mu_level`` (E,) — index into ``params.mu_levels`` per link;
* ``protocol`` (E,) — 0 = MDI-QKD, 1 = decoy BB84;
* ``route`` (D,) — candidate path per demand.

Reward per step = delivered key / requested key (in [0, 1]) − ``violation_cost`` × (number of links
in use whose true QBER exceeds ``qber_threshold``) / (links in use). A violation is charged, never
silently clipped; a link above the threshold also distils no key.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qverify.errors import ParameterError, QverifyError
from qverify.physics.rates import fibre_link_rates


@struct.dataclass
class EnvParams:
    """Static description of one network instance (a pytree; arrays have fixed shapes)."""

    length_km: jax.Array  # (E,)
    relay_fraction: jax.Array  # (E,)
    is_mdi: jax.Array  # (E,) protocol as built
    link_a: jax.Array  # (E,) endpoint node index
    link_b: jax.Array  # (E,)
    path_links: jax.Array  # (D, P, L) link indices, -1 padding
    path_inner: jax.Array  # (D, P, M) intermediate nodes, -1 padding
    path_valid: jax.Array  # (D, P)
    byzantine: jax.Array  # (N,) bool
    node_weight: jax.Array  # (N,) voting weight (observation only)
    mu_levels: jax.Array  # (K,)
    loss_db_per_km: float = struct.field(pytree_node=True, default=0.2)
    eta_det: float = struct.field(pytree_node=True, default=0.145)
    p_dark: float = struct.field(pytree_node=True, default=3e-6)
    e_mis: float = struct.field(pytree_node=True, default=0.015)
    f_ec: float = struct.field(pytree_node=True, default=1.16)
    sift_mdi: float = struct.field(pytree_node=True, default=1.0)
    sift_bb84: float = struct.field(pytree_node=True, default=0.5)
    clock_hz: float = struct.field(pytree_node=True, default=1e9)
    inject_error: float = struct.field(pytree_node=True, default=0.15)
    demand_bits: float = struct.field(pytree_node=True, default=2000.0)
    pool_cap_bits: float = struct.field(pytree_node=True, default=1e7)
    slot_s: float = struct.field(pytree_node=True, default=1.0)
    qber_threshold: float = struct.field(pytree_node=True, default=0.11)
    violation_cost: float = struct.field(pytree_node=True, default=1.0)
    loss_sigma_db: float = struct.field(pytree_node=True, default=1.0)
    loss_theta: float = struct.field(pytree_node=True, default=0.05)
    fade_rate: float = struct.field(pytree_node=True, default=2e-3)
    fade_db: float = struct.field(pytree_node=True, default=10.0)
    fade_slots: int = struct.field(pytree_node=True, default=30)
    eta_sigma: float = struct.field(pytree_node=True, default=0.05)
    source_sigma: float = struct.field(pytree_node=True, default=0.05)
    drift_theta: float = struct.field(pytree_node=True, default=0.01)
    drop_keys: bool = struct.field(pytree_node=True, default=True)
    max_steps: int = struct.field(pytree_node=False, default=100)
    random_byzantine: int = struct.field(pytree_node=True, default=0)


@struct.dataclass
class EnvState:
    excess_db: jax.Array
    fade_left: jax.Array
    log_eta: jax.Array
    log_src: jax.Array
    pool: jax.Array
    qber: jax.Array
    rate_bps: jax.Array
    mu: jax.Array
    backlog: jax.Array
    t: jax.Array
    byzantine: jax.Array


@struct.dataclass
class Action:
    mu_level: jax.Array  # (E,) int
    protocol: jax.Array  # (E,) int
    route: jax.Array  # (D,) int


def branch_sizes(params: EnvParams) -> tuple[int, ...]:
    """Number of options of every action branch: E × K (μ), E × 2 (protocol), D × P (route)."""
    e = params.length_km.shape[0]
    d, p = params.path_valid.shape
    k = params.mu_levels.shape[0]
    return (k,) * e + (2,) * e + (p,) * d


def action_from_branches(branches: jax.Array, params: EnvParams) -> Action:
    """Split a flat (B,) int vector of branch choices into an :class:`Action`."""
    e = params.length_km.shape[0]
    return Action(branches[:e], branches[e : 2 * e], branches[2 * e :])


def branches_from_action(action: Action) -> jax.Array:
    return jnp.concatenate([action.mu_level, action.protocol, action.route]).astype(jnp.int32)


def link_physics(
    params: EnvParams,
    mu: jax.Array,
    use_mdi: jax.Array,
    excess_db: jax.Array,
    eta_scale: jax.Array,
    clock_scale: jax.Array,
    extra_error: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Key rate (bit/s) and QBER per link: :func:`qverify.physics.rates.fibre_link_rates`."""
    rate, qber, _gain = fibre_link_rates(
        params.length_km, params.relay_fraction, mu, use_mdi, params.loss_db_per_km, params.eta_det, params.p_dark,
        params.e_mis, params.f_ec, params.sift_mdi, params.sift_bb84, params.clock_hz, excess_db, eta_scale, clock_scale, extra_error,
    )  # fmt: skip
    return rate, qber


def _ou(key: jax.Array, x: jax.Array, theta: float, sigma: float) -> jax.Array:
    return x * (1 - theta) + sigma * jnp.sqrt(1 - (1 - theta) ** 2) * jax.random.normal(key, x.shape)


def observe(state: EnvState, params: EnvParams) -> jax.Array:
    """Flat observation: per link (source rate, μ, detector efficiency, loss dB, QBER, pool),
    per node weight, per demand backlog — scaled to O(1)."""
    loss = params.length_km * params.loss_db_per_km + state.excess_db
    per_link = jnp.stack(
        [
            jnp.exp(state.log_src),
            state.mu,
            jnp.exp(state.log_eta),
            loss / 20.0,
            state.qber / params.qber_threshold,
            state.pool / params.pool_cap_bits,
            jnp.log10(1.0 + state.rate_bps) / 6.0,
        ],
        axis=1,
    ).ravel()
    return jnp.concatenate(
        [per_link, params.node_weight, state.backlog / params.demand_bits, jnp.array([state.t / params.max_steps])]
    ).astype(jnp.float32)


def obs_size(params: EnvParams) -> int:
    e = params.length_km.shape[0]
    return 7 * e + params.node_weight.shape[0] + params.path_valid.shape[0] + 1


def reset(key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
    """Initial state: calm channel, empty pools, no backlog.

    With ``params.random_byzantine = k > 0`` the Byzantine set is drawn anew (k nodes, uniformly)
    at every reset, so an agent learns to allocate without knowing where the adversary sits;
    otherwise it is ``params.byzantine``.
    """
    e = params.length_km.shape[0]
    d = params.path_valid.shape[0]
    k_mu = params.mu_levels.shape[0]
    state = EnvState(
        excess_db=jnp.zeros(e, jnp.float32),
        fade_left=jnp.zeros(e, dtype=jnp.int32),
        log_eta=jnp.zeros(e, jnp.float32),
        log_src=jnp.zeros(e, jnp.float32),
        pool=jnp.zeros(e, jnp.float32),
        qber=jnp.full(e, params.e_mis, dtype=jnp.float32),
        rate_bps=jnp.zeros(e, jnp.float32),
        mu=jnp.full(e, params.mu_levels[k_mu // 2], dtype=jnp.float32),
        backlog=jnp.zeros(d, jnp.float32),
        t=jnp.array(0, dtype=jnp.int32),
        byzantine=_draw_byzantine(key, params),
    )
    return observe(state, params), state


def _draw_byzantine(key: jax.Array, params: EnvParams) -> jax.Array:
    # Traced (no Python branch on the count), so instances with different Byzantine counts share
    # one compiled program and can be stacked along a vmapped axis.
    n = params.byzantine.shape[0]
    ranks = jnp.argsort(jax.random.uniform(key, (n,)))
    return jnp.where(params.random_byzantine > 0, ranks < params.random_byzantine, params.byzantine)


def step(
    key: jax.Array, state: EnvState, action: Action, params: EnvParams
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
    """Advance one slot. Returns ``(obs, state, reward, done, info)``; no auto-reset."""
    k_loss, k_fade, k_eta, k_src = jax.random.split(key, 4)
    e = params.length_km.shape[0]
    excess = _ou(k_loss, state.excess_db, params.loss_theta, params.loss_sigma_db)
    starts = jax.random.uniform(k_fade, (e,)) < params.fade_rate
    fade_left = jnp.where(starts, params.fade_slots, jnp.maximum(state.fade_left - 1, 0)).astype(jnp.int32)
    log_eta = _ou(k_eta, state.log_eta, params.drift_theta, params.eta_sigma)
    log_src = _ou(k_src, state.log_src, params.drift_theta, params.source_sigma)
    excess_total = jnp.maximum(excess, -params.length_km * params.loss_db_per_km) + params.fade_db * (fade_left > 0)
    mu = params.mu_levels[jnp.clip(action.mu_level, 0, params.mu_levels.shape[0] - 1)]
    use_mdi = action.protocol == 0
    inject = state.byzantine[params.link_a] | state.byzantine[params.link_b]
    rate, qber = link_physics(
        params, mu, use_mdi, excess_total, jnp.exp(log_eta), jnp.exp(log_src), params.inject_error * inject
    )
    aborted = qber > params.qber_threshold
    rate = jnp.where(aborted, 0.0, rate)
    pool = jnp.minimum(state.pool + rate * params.slot_s, params.pool_cap_bits)

    d, p = params.path_valid.shape
    route = jnp.clip(action.route, 0, p - 1)
    lk_all = params.path_links[jnp.arange(d), route]  # (D, L)
    inner = params.path_inner[jnp.arange(d), route]  # (D, M)
    valid = params.path_valid[jnp.arange(d), route]
    has = lk_all >= 0
    lk = jnp.where(has, lk_all, 0)
    ok = jnp.where(has, ~aborted[lk], True).all(axis=1) & valid
    req = jnp.where(has & ok[:, None], params.demand_bits, 0.0)
    requested = jnp.zeros(e).at[lk.ravel()].add(req.ravel())
    frac_link = jnp.where(requested > 0, jnp.minimum(1.0, pool / jnp.where(requested > 0, requested, 1.0)), 1.0)
    frac = jnp.where(has, frac_link[lk], 1.0).min(axis=1) * ok
    consumed = jnp.zeros(e).at[lk.ravel()].add((jnp.where(has, frac[:, None], 0.0) * params.demand_bits).ravel())
    pool = jnp.maximum(pool - consumed, 0.0)
    byz_inner = jnp.where(inner >= 0, state.byzantine[jnp.where(inner >= 0, inner, 0)], False).any(axis=1)
    frac = jnp.where(params.drop_keys & byz_inner, 0.0, frac)
    delivered = frac * params.demand_bits
    served = frac >= 1.0 - 1e-6
    backlog = jnp.maximum(state.backlog + params.demand_bits - delivered, 0.0)

    in_use = jnp.zeros(e, dtype=bool).at[lk.ravel()].max(has.ravel())
    violations = (in_use & (qber > params.qber_threshold)).sum()
    reward = delivered.sum() / (params.demand_bits * d) - params.violation_cost * violations / jnp.maximum(
        in_use.sum(), 1
    )
    t = state.t + 1
    new = EnvState(excess, fade_left, log_eta, log_src, pool, qber, rate, mu, backlog, t, state.byzantine)
    done = t >= params.max_steps
    info = {
        "delivered_bits": delivered.sum(),
        "served": served.mean(),
        "violations": violations,
        "qber_in_use": jnp.where(in_use, qber, jnp.nan),
        "qber": qber,
    }
    return observe(new, params), new, reward.astype(jnp.float32), done, info


def validate_action(action: Action, params: EnvParams) -> None:
    """Raise ``ParameterError`` for an out-of-range action (non-jitted API only)."""
    for name, arr, hi in (
        ("mu_level", action.mu_level, params.mu_levels.shape[0]),
        ("protocol", action.protocol, 2),
        ("route", action.route, params.path_valid.shape[1]),
    ):
        a = np.asarray(arr)
        if a.shape != np.asarray(getattr(static_action(params), name)).shape:
            raise ParameterError(
                f"action.{name} shape", a.shape, str(np.asarray(getattr(static_action(params), name)).shape)
            )
        if a.size and (a.min() < 0 or a.max() >= hi):
            bad = a[(a < 0) | (a >= hi)][0]
            raise ParameterError(f"action.{name}", int(bad), f"[0, {hi - 1}]")


def static_action(params: EnvParams) -> Action:
    """The static default: the middle μ level, the protocol as built, the shortest path."""
    e = params.length_km.shape[0]
    d = params.path_valid.shape[0]
    k = params.mu_levels.shape[0]
    return Action(
        jnp.full(e, k // 2, dtype=jnp.int32),
        jnp.where(params.is_mdi, 0, 1).astype(jnp.int32),
        jnp.zeros(d, dtype=jnp.int32),
    )


def check_params(params: EnvParams) -> None:
    """Raise a clear error for invalid parameters (call outside ``jit``)."""
    if params.length_km.shape[0] == 0:
        raise QverifyError("empty topology: the environment needs at least one link")
    if np.any(np.asarray(params.length_km) <= 0):
        raise ParameterError("length_km", float(np.min(np.asarray(params.length_km))), "(0, 1e5) km")
    for name, lo, hi in (
        ("loss_db_per_km", 0.0, 10.0),
        ("eta_det", 1e-12, 1.0),
        ("p_dark", 0.0, 0.999999),
        ("e_mis", 0.0, 0.5),
        ("qber_threshold", 1e-6, 0.5),
    ):
        v = float(getattr(params, name))
        if not lo <= v <= hi:
            raise ParameterError(name, v, f"[{lo:g}, {hi:g}]")
    if np.any(np.asarray(params.mu_levels) <= 0):
        raise ParameterError("mu_levels", np.asarray(params.mu_levels).tolist(), "all > 0")
    if params.max_steps < 1:
        raise ParameterError("max_steps", params.max_steps, "[1, inf)")


def from_network(g: Any, config: Any, seed: int = 0, mu_levels: tuple[float, ...] = (0.1, 0.25, 0.45, 0.7),
                 max_steps: int = 100, violation_cost: float = 1.0, random_byzantine: bool = False) -> EnvParams:  # fmt: skip
    """EnvParams for topology ``g`` under a :class:`qverify.network.sim.SimConfig` (same draws).

    Links, demands, candidate paths and the Byzantine set come from
    :func:`qverify.network.sim.prepare` with the same ``seed``, so the environment and the network
    simulator describe the same instance. ``random_byzantine=True`` keeps the number of Byzantine
    nodes but draws their placement anew every episode.
    """
    from qverify.network.adversary import injected_error
    from qverify.network.sim import prepare

    links, _demands, paths, byz = prepare(g, config, seed)
    lp = config.link
    fl = config.fluctuation
    adv = config.adversary
    params = EnvParams(
        length_km=jnp.asarray(links.length_km, dtype=jnp.float32),
        relay_fraction=jnp.asarray(links.relay_fraction, dtype=jnp.float32),
        is_mdi=jnp.asarray(links.is_mdi),
        link_a=jnp.asarray(links.a, dtype=jnp.int32),
        link_b=jnp.asarray(links.b, dtype=jnp.int32),
        path_links=jnp.asarray(paths.links, dtype=jnp.int32),
        path_inner=jnp.asarray(paths.inner, dtype=jnp.int32),
        path_valid=jnp.asarray(paths.valid),
        byzantine=jnp.asarray(byz if adv.onset_slot == 0 else np.zeros_like(byz)),
        node_weight=jnp.ones(links.n_nodes, dtype=jnp.float32),
        mu_levels=jnp.asarray(mu_levels, dtype=jnp.float32),
        loss_db_per_km=lp.channel.loss_db_per_km,
        eta_det=lp.detector.eta_det,
        p_dark=lp.detector.p_dark,
        e_mis=lp.channel.e_mis,
        f_ec=lp.ec.f_ec,
        sift_mdi=lp.source.sift_for("mdi"),
        sift_bb84=lp.source.sift_for("bb84"),
        clock_hz=lp.source.clock_hz,
        inject_error=injected_error(adv.inject_prob) if adv.does("inject") else 0.0,
        demand_bits=config.demand_bits,
        pool_cap_bits=config.pool_cap_bits,
        slot_s=config.slot_s,
        qber_threshold=config.qber_threshold,
        violation_cost=violation_cost,
        loss_sigma_db=fl.loss_sigma_db,
        loss_theta=fl.loss_theta,
        fade_rate=fl.fade_rate,
        fade_db=fl.fade_db,
        fade_slots=fl.fade_slots,
        eta_sigma=fl.eta_sigma,
        source_sigma=fl.source_sigma,
        drift_theta=fl.drift_theta,
        drop_keys=adv.does("drop") or adv.does("corrupt"),
        max_steps=max_steps,
        random_byzantine=int(byz.sum()) if random_byzantine else 0,
    )
    check_params(params)
    return strongly_typed(params)


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
