"""Baseline allocation policies and policy evaluation, all in JAX.

A policy here is ``policy(key, obs, state) -> branch choices`` (a flat int vector, one entry per
action branch; see :func:`qverify.dra.env.branch_sizes`).

* :func:`static_policy` — the static defaults (middle μ level, protocol as built, shortest path;
  with test levels, ``verify_rounds`` test rounds: :func:`qverify.dra.env.static_action`);
* :func:`random_policy` — uniform over every branch;
* :func:`greedy_policy` — per link, the (μ, protocol) with the highest key rate under last slot's
  monitored conditions among those predicted below the QBER threshold, where the attacker's extra
  error is estimated from the worse endpoint's *reported* QBER; per demand, the path with the
  largest bottleneck of (pool + predicted rate) that avoids links predicted above the threshold.
  With test levels it keeps the static level (1×): fewer rounds save key but loosen the bound
  that aborts links, and no one-slot rule weighs the two, so the greedy heuristic does not try;
* :func:`greedy_oracle_policy` — the same rule fed the true injected error (reads the Byzantine
  set: an oracle, labelled as such wherever it is reported);
* ``evaluate(..., oracle=True)`` — the per-step optimum by enumeration: every joint action is
  tried on the *same* next-slot randomness and the best step reward is taken (clairvoyant, myopic);
* :func:`best_static` — the best fixed joint action in hindsight, by enumeration over all joint
  actions on the same episodes.

Both enumerations need at most :data:`MAX_JOINT_ACTIONS` joint actions. Neither is the optimum of
the episodic return of a fluctuating network (pools carry over between slots, so that optimum is a
stochastic control problem no enumeration reaches); the larger of the two is the reference that
learning is measured against, and it is a lower bound on the true optimum.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qverify.dra import env as E
from qverify.errors import QverifyError
from qverify.network import model as M
from qverify.xla import jit

PolicyFn = Callable[[jax.Array, jax.Array, E.EnvState], jax.Array]
MAX_JOINT_ACTIONS = 100_000


def static_policy(params: E.EnvParams) -> PolicyFn:
    fixed = E.branches_from_action(E.static_action(params))

    def policy(key: jax.Array, obs: jax.Array, state: E.EnvState) -> jax.Array:
        return fixed

    return policy


def random_policy(params: E.EnvParams) -> PolicyFn:
    sizes = jnp.asarray(E.branch_sizes(params))

    def policy(key: jax.Array, obs: jax.Array, state: E.EnvState) -> jax.Array:
        return jax.random.randint(key, sizes.shape, 0, sizes).astype(jnp.int32)

    return policy


def _conditions(params: E.EnvParams, state: E.EnvState, measured: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(excess loss dB, detector-efficiency factor, source-rate factor) a greedy policy plans with:
    measured, the loss monitor's reading and nominal drifts (a network knows no more); else the truth."""
    if measured:
        one = jnp.ones_like(state.loss_monitor)
        return state.loss_monitor - params.length_km * params.loss_db_per_km, one, one
    return state.loss_db - params.length_km * params.loss_db_per_km, jnp.exp(state.log_eta), jnp.exp(state.log_src)


def _greedy(params: E.EnvParams, extra_error: Callable[[E.EnvState], jax.Array], measured: bool) -> PolicyFn:
    def policy(key: jax.Array, obs: jax.Array, state: E.EnvState) -> jax.Array:
        extra = extra_error(state)
        excess, eta_scale, src_scale = _conditions(params, state, measured)
        rates, qbers = E.option_rates(params, excess, eta_scale, src_scale, extra)
        blocks = []
        if E.n_blocks(params):
            # Finite keys: a block keeps block_keep of its key but delivers it only when it closes;
            # score each block by that fraction times the share of the remaining episode after its
            # first close, and each option by its best block.
            remaining = jnp.maximum(params.max_steps - state.t, 1).astype(jnp.float32)
            block_slots = params.block_pulses[None, :] / M.pulses_per_slot(params, src_scale[:, None])
            value = params.block_keep * jnp.clip(1.0 - block_slots / remaining, 0.0, 1.0)[:, None, :]  # (E, 2, B)
            rates = rates * jnp.tile(value.max(axis=2).T, (params.mu_levels.shape[0], 1))
        ok = qbers < params.qber_threshold
        score = jnp.where(ok, rates, -1.0 - qbers)
        best = jnp.argmax(score, axis=0)
        mu_level = (best // 2).astype(jnp.int32)
        protocol = (best % 2).astype(jnp.int32)  # 0 = MDI (flag True first)
        link_rate = jnp.take_along_axis(rates, best[None], axis=0)[0]
        link_ok = jnp.take_along_axis(ok, best[None], axis=0)[0]
        has = params.path_links >= 0
        lk = jnp.where(has, params.path_links, 0)
        cap = jnp.where(link_ok, state.pool + link_rate * params.slot_s, -1.0)
        bottleneck = jnp.where(has, cap[lk], jnp.inf).min(axis=2)
        bottleneck = jnp.where(params.path_valid, bottleneck, -jnp.inf)
        route = jnp.argmax(bottleneck, axis=1).astype(jnp.int32)
        if E.n_blocks(params):
            blocks = [jnp.argmax(value[jnp.arange(protocol.shape[0]), protocol], axis=1).astype(jnp.int32)]
        # Test levels: the static one (module docstring).
        tests = [E.static_action(params).tests] if E.n_test_levels(params) else []
        return jnp.concatenate([mu_level, protocol, route, *blocks, *tests])

    return policy


def greedy_policy(params: E.EnvParams) -> PolicyFn:
    """Greedy allocation on what the control plane sees (reports, the loss monitor, nominal drifts)."""

    def estimated(state: E.EnvState) -> jax.Array:
        # The honest link's QBER at last slot's μ under the monitored conditions; what the worse
        # report exceeds it by is read as an injected flip x (e = e₀ + x − 2e₀x).
        excess, eta_scale, src_scale = _conditions(params, state, measured=True)
        _r, q0 = E.link_physics(params, state.mu, params.is_mdi, excess, eta_scale, src_scale, jnp.zeros_like(state.mu))
        worst = state.reported.max(axis=1)
        return jnp.clip((worst - q0) / jnp.maximum(1.0 - 2.0 * q0, 1e-6), 0.0, 0.5)

    return _greedy(params, estimated, measured=True)


def greedy_oracle_policy(params: E.EnvParams) -> PolicyFn:
    """Greedy allocation fed the true injected error and conditions (an oracle: it reads the
    Byzantine set, the drifts and the exact loss)."""

    def true_extra(state: E.EnvState) -> jax.Array:
        active = M.active_byzantine(state, params)
        return params.inject_error * (active[params.link_a] | active[params.link_b])

    return _greedy(params, true_extra, measured=False)


def joint_actions(params: E.EnvParams) -> np.ndarray:
    """Every joint action as rows of branch choices; raises if there are too many."""
    sizes = E.branch_sizes(params)
    total = int(np.prod(sizes, dtype=np.float64))
    if total > MAX_JOINT_ACTIONS:
        raise QverifyError(f"{total} joint actions; exact enumeration allows at most {MAX_JOINT_ACTIONS}")
    return np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int32)


def rollout(policy: PolicyFn, params: E.EnvParams, key: jax.Array, oracle: bool = False) -> dict[str, jax.Array]:
    """One episode; returns per-step reward, delivered bits, served fraction, QBER of links in use."""
    k_reset, k_run = jax.random.split(key)
    obs, state = E.reset(k_reset, params)
    # The barrier keeps XLA from constant-folding every joint action's relay bookkeeping at compile
    # time (a scatter over thousands of constant rows took seconds, with a warning).
    table = jax.lax.optimization_barrier(jnp.asarray(joint_actions(params))) if oracle else None

    def body(carry: tuple[jax.Array, E.EnvState], xs: tuple[jax.Array, jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
        o, s = carry
        k, i = xs
        now = M.epoch_end(i, params)
        k_pol, k_env = jax.random.split(k)
        if table is not None:
            rewards = jax.vmap(lambda a: E.step(k_env, s, E.action_from_branches(a, params), params, now)[2])(table)
            branches = table[jnp.argmax(rewards)]
        else:
            branches = policy(k_pol, o, s)
        o2, s2, r, _d, info = E.step(k_env, s, E.action_from_branches(branches, params), params, now)
        return (o2, s2), {
            "reward": r,
            "delivered_bits": info["delivered_bits"],
            "served": info["served"],
            "violations": info["violations"],
            "qber_in_use": info["qber_in_use"],
        }

    steps = jnp.arange(params.max_steps)
    _, out = jax.lax.scan(body, (obs, state), (jax.random.split(k_run, params.max_steps), steps))
    return out


def evaluate(
    policy: PolicyFn | None, params: E.EnvParams, keys: jax.Array, oracle: bool = False
) -> dict[str, np.ndarray]:
    """Evaluate over episodes (one per key, vmapped): returns, delivered key, QBER variance, ...

    ``qber_var`` is the variance over time of the QBER of each link while it is in use, averaged
    over links and episodes (the paper's "variance of QBER during fluctuation").
    """
    fn = jit(jax.vmap(lambda k: rollout(policy or (lambda *_: None), params, k, oracle)))  # type: ignore[arg-type]
    return _summarise(jax.tree.map(np.asarray, fn(keys)))


def _summarise(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-episode figures of :func:`evaluate` from stacked rollouts (episodes first)."""
    q = out["qber_in_use"]  # (episodes, steps, E) with NaN where unused
    import warnings

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # links never in use have no variance
        used = np.isfinite(q).sum(axis=1) >= 2
        var = np.where(used, np.nanvar(np.where(np.isfinite(q), q, np.nan), axis=1), np.nan)
    return {
        "returns": out["reward"].sum(axis=1),
        "delivered_bits": out["delivered_bits"].sum(axis=1),
        "served": out["served"].mean(axis=1),
        "violations": out["violations"].sum(axis=1),
        "qber_var": np.array([np.mean(v[np.isfinite(v)]) if np.isfinite(v).any() else np.nan for v in var]),
        "qber_mean": np.array([np.mean(x[np.isfinite(x)]) if np.isfinite(x).any() else np.nan for x in q]),
    }


def evaluate_many(
    policies: dict[str, PolicyFn], params: E.EnvParams, keys: jax.Array
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`evaluate` for several policies in one compiled program (one compilation, not one each).

    The policies are branches of a ``lax.switch`` inside a single rollout, vmapped over (policy,
    episode) pairs; every policy sees exactly the episodes of ``keys`` that :func:`evaluate` would
    give it, so the results are the same as evaluating each policy on its own.
    """
    names = list(policies)
    branches = [policies[n] for n in names]

    def switched(index: jax.Array) -> PolicyFn:
        def policy(key: jax.Array, obs: jax.Array, state: E.EnvState) -> jax.Array:
            return jax.lax.switch(index, [lambda k, o, s, b=b: b(k, o, s).astype(jnp.int32) for b in branches],
                                  key, obs, state)  # fmt: skip

        return policy

    n_k = keys.shape[0]
    index = jnp.repeat(jnp.arange(len(names)), n_k)
    tiled = jnp.tile(keys, (len(names), 1))
    fn = jit(jax.vmap(lambda i, k: rollout(switched(i), params, k)))
    out = jax.tree.map(np.asarray, fn(index, tiled))
    return {n: _summarise(jax.tree.map(lambda x, j=j: x[j * n_k : (j + 1) * n_k], out)) for j, n in enumerate(names)}


def best_static(params: E.EnvParams, keys: jax.Array, chunk: int = 512) -> tuple[np.ndarray, float]:
    """The fixed joint action with the highest mean return over ``keys`` (exact enumeration)."""
    table = joint_actions(params)

    def ret(a: jax.Array, k: jax.Array) -> jax.Array:
        return rollout(lambda *_: a, params, k)["reward"].sum()

    fn = jit(jax.vmap(lambda a: jax.vmap(lambda k: ret(a, k))(keys).mean()))
    means = np.concatenate([np.asarray(fn(jnp.asarray(table[i : i + chunk]))) for i in range(0, len(table), chunk)])
    best = int(np.argmax(means))
    return table[best], float(means[best])
