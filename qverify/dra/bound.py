"""An upper bound on the episodic return of any allocator: the LP relaxation of the clairvoyant plan.

The per-step enumeration and the best fixed action of :mod:`qverify.dra.baselines` are *lower*
bounds on the optimum of an episode (pools carry key from slot to slot, so the optimum is a
stochastic control problem). This module bounds it from above, so that "the DQN reached the optimum"
can be checked against an interval [lower, upper] rather than against a lower bound alone.

**Why it is an upper bound.** The channel (excess loss, fades, detector and source drift) and the
Byzantine set evolve independently of the decisions, and the environment draws them from the
episode key in a fixed order. A clairvoyant planner that knows the episode key knows, for every
slot ``t``, link ``l`` and (μ, protocol) option ``a``, the key it would distil, ``r[t, a, l]`` bits
(0 when the option's true QBER is above the abort threshold). The LP

    maximise   Σ_t Σ_{d,p} z[t,d,p] / (demand_bits · D)
    subject to Σ_a x[t,l,a] = 1,  x ≥ 0                                  (options mixed)
               pool[t,l] = pool[t−1,l] + Σ_a r[t,a,l] x[t,l,a] − disc[t,l] − Σ_{(d,p) ∋ l} z[t,d,p]
               pool[t−1,l] + Σ_a r[t,a,l] x[t,l,a] − disc[t,l] ≤ pool_cap_bits
               Σ_p z[t,d,p] ≤ demand_bits,   pool, disc, z ≥ 0,
               z[t,d,p] = 0 on invalid paths and, when Byzantine relays drop keys, on paths
               through an active Byzantine relay

contains every trajectory of every policy (one-hot x, one route per demand, delivered key drawn
from the pools of the path's links; a real relay consumes at least what it delivers and a real
pool is never below the LP's), and its objective drops only the non-positive violation term of the
reward (:func:`qverify.dra.env.step`). So its optimum bounds the return of every policy on that
episode from above, including policies that see the future. It is solved per episode with HiGHS
(:func:`scipy.optimize.linprog`). Only the single-path relay of the DRA environment is covered.
With finite-key blocks the LP still uses the asymptotic ``r``: a block keeps at most what it
accumulated (``block_keep ≤ 1``) and delivers it later, so the bound stays valid (and looser).
``r`` is the key before test rounds are paid for, so it also bounds every choice of test level
(a slot keeps a fraction ≤ 1 of ``r`` whatever its test rounds); the LP plans no test level.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from qverify.dra import env as E
from qverify.errors import ParameterError, QverifyError
from qverify.network import model as M
from qverify.xla import jit


def _exogenous(params: E.EnvParams, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Per slot of the episode of ``key``: excess loss (dB), η and source scale, extra error, active relays.

    Follows :func:`qverify.dra.baselines.rollout`'s key schedule, so the channel is the one every
    policy evaluated on ``key`` meets (it does not depend on the decisions).
    """
    k_reset, k_run = jax.random.split(key)
    _, state = E.reset(k_reset, params)
    fixed = E.static_action(params)
    base_db = params.length_km * params.loss_db_per_km

    def body(s: E.EnvState, xs: tuple[jax.Array, jax.Array]) -> tuple[E.EnvState, tuple[jax.Array, ...]]:
        k, i = xs
        _k_pol, k_env = jax.random.split(k)
        active = M.active_byzantine(s, params)
        inject = active[params.link_a] | active[params.link_b]
        _, s2, _, _, _ = E.step(k_env, s, fixed, params, M.epoch_end(i, params))
        return s2, (
            s2.loss_db - base_db,
            jnp.exp(s2.log_eta),
            jnp.exp(s2.log_src),
            params.inject_error * inject,
            active,
        )

    steps = jnp.arange(params.max_steps)
    _, (excess, eta, src, extra, active) = jax.lax.scan(body, state, (jax.random.split(k_run, params.max_steps), steps))
    return excess, eta, src, extra, active


def option_bits(params: E.EnvParams, keys: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """Key each (μ, protocol) option would distil, per episode, slot, option and link.

    Returns ``(bits, active)``: bits of shape (episodes, T, 2K, E), option ``a`` = μ level ``a // 2``
    with MDI-QKD when ``a`` is even and decoy BB84 when odd (0 when the option's true QBER is above
    the threshold); ``active`` (episodes, T, N) the relays misbehaving in each slot.
    """

    def one(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        excess, eta, src, extra, active = _exogenous(params, key)

        def slot(ex: jax.Array, et: jax.Array, sr: jax.Array, xe: jax.Array) -> jax.Array:
            rate, qber = E.option_rates(params, ex, et, sr, xe)
            return jnp.where(qber > params.qber_threshold, 0.0, rate) * params.slot_s

        return jax.vmap(slot)(excess, eta, src, extra), active

    bits, active = jit(jax.vmap(one))(keys)
    return np.asarray(bits, dtype=np.float64), np.asarray(active)


def episode_bound(params: E.EnvParams, bits: np.ndarray, active: np.ndarray) -> float:
    """The LP optimum (module docstring) for one episode; ``bits`` (T, A, E), ``active`` (T, N)."""
    path_links = np.asarray(params.path_links)
    path_inner = np.asarray(params.path_inner)
    valid = np.asarray(params.path_valid)
    t_n, a_n, e_n = bits.shape
    d_n, p_n, _ = path_links.shape
    unit = float(params.demand_bits)  # bits are scaled to requests for conditioning
    r = bits / unit
    cap = float(params.pool_cap_bits) / unit
    nx, nz, npool = t_n * e_n * a_n, t_n * d_n * p_n, t_n * e_n
    ix = lambda t, li, a: (t * e_n + li) * a_n + a  # noqa: E731
    iz = lambda t, d, p: nx + (t * d_n + d) * p_n + p  # noqa: E731
    ip = lambda t, li: nx + nz + t * e_n + li  # noqa: E731
    idisc = lambda t, li: nx + nz + npool + t * e_n + li  # noqa: E731
    n_var = nx + nz + 2 * npool

    eq: list[tuple[int, int, float]] = []  # (row, column, coefficient)
    ub: list[tuple[int, int, float]] = []
    eq_b: list[float] = []
    ub_b: list[float] = []
    for t in range(t_n):
        for li in range(e_n):
            # Σ_a x = 1
            eq += [(len(eq_b), ix(t, li, a), 1.0) for a in range(a_n)]
            eq_b.append(1.0)
            # pool balance: pool[t] − pool[t−1] − Σ r x + disc + Σ z = 0
            gen = [(ix(t, li, a), -r[t, a, li]) for a in range(a_n)]
            prev = [(ip(t - 1, li), -1.0)] if t > 0 else []
            uses = [(iz(t, d, p), 1.0) for d in range(d_n) for p in range(p_n) if li in path_links[d, p]]
            eq += [(len(eq_b), c, v) for c, v in [(ip(t, li), 1.0), (idisc(t, li), 1.0), *gen, *prev, *uses]]
            eq_b.append(0.0)
            # cap: pool[t−1] + Σ r x − disc ≤ cap
            ub += [(len(ub_b), c, -v) for c, v in [(idisc(t, li), 1.0), *gen, *prev]]
            ub_b.append(cap)
        for d in range(d_n):
            ub += [(len(ub_b), iz(t, d, p), 1.0) for p in range(p_n)]
            ub_b.append(1.0)

    bounds: list[tuple[float, float | None]] = [(0.0, None)] * n_var
    for t in range(t_n):
        for d in range(d_n):
            for p in range(p_n):
                inner = path_inner[d, p][path_inner[d, p] >= 0]
                dead = not valid[d, p] or (bool(params.drop_keys) and bool(active[t, inner].any()))
                if dead:
                    bounds[iz(t, d, p)] = (0.0, 0.0)

    def matrix(entries: list[tuple[int, int, float]], rows: int) -> sparse.csr_array:
        r_, c_, v_ = zip(*entries, strict=True)
        return sparse.csr_array((v_, (r_, c_)), shape=(rows, n_var))

    cost = np.zeros(n_var)
    cost[nx : nx + nz] = -1.0 / d_n
    res = linprog(
        cost,
        A_ub=matrix(ub, len(ub_b)),
        b_ub=ub_b,
        A_eq=matrix(eq, len(eq_b)),
        b_eq=eq_b,
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:
        raise QverifyError(f"the LP bound did not solve: {res.message}")
    return float(-res.fun)


def upper_bound(params: E.EnvParams, keys: jax.Array) -> dict[str, Any]:
    """Mean (and per-episode) LP upper bound on the return over the episodes of ``keys``.

    Raises ``ParameterError`` for relay modes other than ``single`` (the environment's).
    """
    if params.relay != "single":
        raise ParameterError("relay", params.relay, "single (the LP covers the single-path relay)")
    bits, active = option_bits(params, keys)
    per = [episode_bound(params, bits[i], active[i]) for i in range(bits.shape[0])]
    return {"upper_bound": float(np.mean(per)), "upper_bound_episodes": per}
