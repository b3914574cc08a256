"""Binomial counts for the measurement path, drawn exactly and with few random numbers.

``jax.random.binomial`` runs two loops over the whole batch, each to the slowest element: the
geometric-sum inversion (a fresh uniform per element and iteration, about ``n·q + 1`` iterations)
and BTRS rejection (two fresh uniforms per iteration). On CPU the uniforms dominate; an epoch of
the network model draws a few dozen counts per seed, and with it the counts cost more than the
epoch's slots (``bench/bench_network.py`` times both samplers side by side).

:func:`binomial` draws the same law with fewer uniforms:

* sequential CDF search where ``n·q ≤ 10`` (``q = min(p, 1 − p)``, the switch of
  ``jax.random.binomial``): one uniform per element, then arithmetic alone,
  ``P(k + 1) = P(k) · q/(1 − q) · (n − k)/(k + 1)``, until the CDF passes it;
* BTRS rejection (Hörmann, "The generation of binomial random variates", J. Stat. Comput. Simul.
  46, 101 (1993), algorithm BTRS with its squeeze) elsewhere: about one attempt in six is
  rejected at the network's sizes (n = 3333, p = 1–5 %), so two attempts per element are drawn up
  front and the few elements left are retried alone (:func:`_btrs`).

Both run in float32. The search stops where the remaining tail mass cannot be resolved by a float32
uniform (the probability of the current count below 2⁻²⁴ past twice the mean, where the tail is
at most about that probability), so the draws are exact up to the resolution of the uniforms,
as ``jax.random.binomial``'s are. ``tests/network/test_binomial.py`` tests the law against
``scipy.stats.binom``.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

_Search = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # k, P(k), CDF(k), done
_Retry = tuple[jax.Array, jax.Array, jax.Array]  # key, k, pending

SEARCH_MAX_MEAN = 10.0
"""Elements with ``n·min(p, 1 − p)`` at most this use the CDF search, larger ones BTRS (Hörmann 1993)."""


def _stirling_exact(k: int) -> float:
    return math.lgamma(k + 1) - ((k + 0.5) * math.log(k + 1) - (k + 1) + 0.5 * math.log(2 * math.pi))


_STIRLING_SMALL = tuple(_stirling_exact(k) for k in range(3))


def stirling_tail(k: jax.Array) -> jax.Array:
    """``log k! − [(k + ½) log(k + 1) − (k + 1) + ½ log 2π]`` for integer-valued ``k ≥ 0`` (float).

    Exact constants for k ≤ 2, the series ``1/12 − 1/360 x² + 1/1260 x⁴`` (x = 1/(k + 1), over k + 1)
    above: its error is below the next term ``1/(1680 (k + 1)⁷)``, at most 3.4e-8 from k = 3 on,
    under float32 rounding of the bound it enters. Selects rather than a table lookup: a gather per
    candidate costs more than the arithmetic.

    >>> k = 20
    >>> abs(float(stirling_tail(jnp.float32(k))) - _stirling_exact(k)) < 1e-7
    True
    """
    k = jnp.asarray(k, jnp.float32)
    kp1 = k + 1.0
    inv2 = 1.0 / (kp1 * kp1)
    series = (1.0 / 12 - (1.0 / 360 - inv2 / 1260) * inv2) / kp1
    c0, c1, c2 = _STIRLING_SMALL
    return jnp.where(k < 0.5, c0, jnp.where(k < 1.5, c1, jnp.where(k < 2.5, c2, series)))


def _search(u: jax.Array, n: jax.Array, q: jax.Array, todo: jax.Array, steps: int = 4) -> jax.Array:
    """Smallest k with CDF(k) ≥ u for Binomial(n, q), q ≤ ½, where ``todo``; 0 elsewhere.

    ``steps`` CDF steps per loop iteration (a loop iteration costs more than a step).
    """
    ratio = q / jnp.maximum(1.0 - q, 1e-30)
    pmf0 = jnp.exp(n * jnp.log1p(-q))
    mean = n * q

    def cond(c: _Search) -> jax.Array:
        return jnp.any(~c[3])

    def body(c: _Search) -> _Search:
        k, pmf, cdf, done = c
        for _ in range(steps):
            nxt = pmf * ratio * (n - k) / (k + 1.0)
            k = jnp.where(done, k, k + 1.0)
            pmf = jnp.where(done, pmf, nxt)
            cdf = jnp.where(done, cdf, cdf + nxt)
            resolved = (k > 2.0 * mean + 1.0) & (pmf < 2.0**-24)
            done = done | (u <= cdf) | (k >= n) | resolved
        return k, pmf, cdf, done

    start = (jnp.zeros_like(n), pmf0, pmf0, ~todo | (u <= pmf0) | (n <= 0))
    return jax.lax.while_loop(cond, body, start)[0]


def _btrs_constants(n: jax.Array, q: jax.Array) -> tuple[jax.Array, ...]:
    """Per-element constants of BTRS (Hörmann 1993): n, b, a, c, v_r, α, log(q/(1−q)), mode m, h."""
    spq = jnp.sqrt(n * q * (1.0 - q))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * q
    m = jnp.floor((n + 1.0) * q)
    h = stirling_tail(m) + stirling_tail(n - m) + (m + 0.5) * jnp.log((m + 1.0) / (n - m + 1.0))
    return n, b, a, n * q + 0.5, 0.92 - 4.2 / b, (2.83 + 5.1 / b) * spq, jnp.log(q / (1.0 - q)), m, h


def _btrs_try(u: jax.Array, v: jax.Array, const: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
    """One BTRS attempt per element from uniforms ``u``, ``v`` in [0, 1): (candidate k, accepted)."""
    n, b, a, c, v_r, alpha, lpq, m, h = const
    u = u - 0.5
    us = 0.5 - jnp.abs(u)
    k = jnp.floor((2.0 * a / us + b) * u + c)
    quick = (us >= 0.07) & (v <= v_r)
    inside = (k >= 0) & (k <= n)
    log_v = jnp.log(v * alpha / (a / (us * us) + b))
    bound = (
        h
        # log1p of (k − m)/(n − k + 1), not log of a ratio near 1: times n + 1, a float32 log of the
        # ratio would shift the bound by ~n·1e-7 (3e-4 at n = 3333).
        + (n + 1.0) * jnp.log1p((k - m) / (n - k + 1.0))
        + (k + 0.5) * jnp.log((n - k + 1.0) / (k + 1.0))
        + (k - m) * lpq
        - stirling_tail(k)
        - stirling_tail(n - k)
    )
    return k, quick | (inside & (log_v <= bound))


def _first_accepted(k: jax.Array, ok: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Of candidates along axis 0, the first accepted one (and whether any was)."""
    first = jnp.argmax(ok, axis=0)
    return jnp.take_along_axis(k, first[None], axis=0)[0], ok.any(axis=0)


def _btrs(
    key: jax.Array, uv: jax.Array, n: jax.Array, q: jax.Array, todo: jax.Array, buffer_frac: float, tries: int
) -> jax.Array:
    """Binomial(n, q) by transformed rejection with squeeze (Hörmann 1993, BTRS), q ≤ ½, n·q ≥ 10,
    where ``todo`` (1-D); 0 elsewhere. ``uv`` (2, T, size): T first attempts per element.

    About one attempt in six is rejected; the first T attempts of every element run at once, and the
    few elements with none accepted are retried alone, gathered into a small buffer, ``tries`` fresh
    attempts each, until all are accepted. The first accepted attempt is kept; attempts are
    independent, so the rejection method stays exact.
    """
    const = _btrs_constants(jnp.where(todo, n, 100.0), jnp.where(todo, q, 0.5))
    size = n.shape[0]
    buffer = max(1, min(size, math.ceil(size * buffer_frac)))
    k_first, accepted = _first_accepted(*_btrs_try(uv[0], uv[1], const))

    def cond(c: _Retry) -> jax.Array:
        return jnp.any(c[2])

    def body(c: _Retry) -> _Retry:
        key_, k_out, pending = c
        key_, sub = jax.random.split(key_)
        idx = jnp.nonzero(pending, size=buffer, fill_value=size)[0]
        gathered = tuple(x.at[idx].get(mode="fill", fill_value=1.0) for x in const)
        fresh = jax.random.uniform(sub, (2, tries, buffer))
        k, ok = _first_accepted(*_btrs_try(fresh[0], fresh[1], gathered))
        kept = k_out.at[idx].get(mode="fill", fill_value=0.0)
        return key_, k_out.at[idx].set(jnp.where(ok, k, kept), mode="drop"), pending.at[idx].set(~ok, mode="drop")

    start = (key, jnp.where(todo, k_first, 0.0), todo & ~accepted)
    return jax.lax.while_loop(cond, body, start)[1]


# Jitted, so that eager calls in a loop compile once per shape (see qverify.network.model.run).
@partial(jax.jit, static_argnames=("first_tries", "buffer_frac", "tries"))
def binomial(
    key: jax.Array, n: jax.Array, p: jax.Array, first_tries: int = 2, buffer_frac: float = 1 / 16, tries: int = 4
) -> jax.Array:
    """Binomial(n, p) counts, float32, shape of ``broadcast(n, p)``; ``n`` is floored, ``p`` clipped
    to [0, 1]; ``n ≤ 0`` gives 0; a NaN ``p`` or a non-finite ``n`` gives NaN (as
    ``jax.random.binomial`` does for NaN), never an endless loop.

    ``first_tries`` BTRS attempts per element are drawn with the search's uniforms in one call; the
    elements with none accepted are retried in a buffer of ``buffer_frac`` of the elements, ``tries``
    attempts each (cost only: any values give the same law; the defaults were the fastest of those
    timed on the network model's draws).

    >>> k = binomial(jax.random.PRNGKey(0), jnp.full(20_000, 3333.0), jnp.full(20_000, 0.03))
    >>> bool(abs(float(k.mean()) - 99.99) < 0.5)  # mean n·p; sd of the mean 0.07
    True
    """
    n, p = jnp.broadcast_arrays(jnp.asarray(n, jnp.float32), jnp.asarray(p, jnp.float32))
    shape = n.shape
    n, p = n.ravel(), p.ravel()
    # NaN p or a non-finite n would keep a loop running forever: such elements draw nothing, read NaN.
    valid = jnp.isfinite(n) & ~jnp.isnan(p)
    n = jnp.where(valid, jnp.floor(jnp.maximum(n, 0.0)), 0.0)
    p = jnp.where(valid, jnp.clip(p, 0.0, 1.0), 0.0)
    flip = p > 0.5
    q = jnp.where(flip, 1.0 - p, p)
    small = n * q <= SEARCH_MAX_MEAN
    k_first, k_retry = jax.random.split(key)
    # An element takes the search or BTRS, never both, so the two share the first uniforms.
    uv = jax.random.uniform(k_first, (2, first_tries, n.shape[0]))
    k = jnp.where(small, _search(uv[0, 0], n, q, small), _btrs(k_retry, uv, n, q, ~small, buffer_frac, tries))
    return jnp.where(valid, jnp.where(flip, n - k, k), jnp.nan).reshape(shape)
