"""Parameter estimation of a link's endpoints: the conservative QBER statistic behind aborts.

An endpoint estimates the epoch's QBER from its public test outcomes, ``k`` errors in ``n`` heralded
Z- and X-basis test rounds, and uses the one-sided Clopper–Pearson upper confidence bound
(C. J. Clopper and E. S. Pearson, Biometrika 26, 404 (1934)): the ``u`` with
``P(Bin(n, u) ≤ k) = 1 − c``, i.e. ``I_u(k + 1, n − k) = c`` for the regularised incomplete beta
function ``I``. Finite-key analyses bound the phase error of the key the same way, by an upper
bound of the error rate measured on a random sample of the rounds (e.g. M. Tomamichel et al.,
Nat. Commun. 3, 634 (2012), Eq. (2), there with a Serfling bound). The abort rule of an honest
endpoint (:func:`pe_aborts`): abort when this bound exceeds the QBER threshold, or when no test
round was heralded (nothing verified, nothing kept). The control plane's weights read the same
statistic of each endpoint's *claim* (:func:`claim_bounds`): the claim read as errors out of the
epoch's heralded Z/X test rounds and bounded the same way, so fewer rounds weigh more conservatively.

JAX has no inverse of ``betainc``; :func:`cp_upper` bisects it (``ITERATIONS`` halvings, static
shapes, traceable under ``jit``/``vmap``). ``tests/network/test_estimation.py`` checks it against
``scipy.stats.beta.ppf``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc

ITERATIONS = 22
"""Bisection halvings of [0, 1]: resolution 2⁻²² ≈ 2.4e-7, below the error of float32 ``betainc``
itself (up to 2e-5, see :func:`cp_upper`); each halving is a ``betainc`` per element, the cost of an
epoch's end under ``vmap``."""


def cp_upper(errors: Any, trials: Any, confidence: Any, where: Any = None) -> jax.Array:
    """One-sided Clopper–Pearson upper bound of a binomial rate at ``confidence`` (float32).

    ``errors`` ``k`` out of ``trials`` ``n`` (broadcast together); ``k = n`` and ``n ≤ 0`` give 1.
    ``where``: the elements wanted (default all); the others read 1. The bisection runs while a
    wanted element is left, so a call in which none is wanted (under ``vmap``: in no batch element)
    costs no ``betainc`` at all.

    Accuracy: ``jax.scipy.special.betainc`` in float32 loses digits as ``n`` grows (its log-beta
    prefactor subtracts lgamma values of order n log n); against scipy's float64 ``beta.ppf`` the
    absolute error stayed below 2e-5 for n ≤ 1000 and 1e-4 for n ≤ 20 000
    (``tests/network/test_estimation.py::test_cp_upper_matches_scipy``), far below the bound's own
    statistical width at those n.
    """
    k = jnp.asarray(errors, jnp.float32)
    n = jnp.asarray(trials, jnp.float32)
    k, n = jnp.broadcast_arrays(k, n)
    full = (k >= n) | (n <= 0)
    a = jnp.where(full, 1.0, k + 1.0)
    b = jnp.where(full, 1.0, jnp.maximum(n - k, 1.0))
    c = jnp.asarray(confidence, jnp.float32)

    def halve(_i: int, lohi: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = betainc(a, b, mid) < c  # I_u increases in u: the bound lies above mid
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    need = ~full if where is None else ~full & jnp.asarray(where, bool)

    def more(state: tuple[Any, jax.Array, jax.Array]) -> jax.Array:
        return (state[0] < ITERATIONS) & jnp.any(need)

    def step(state: tuple[Any, jax.Array, jax.Array]) -> tuple[Any, jax.Array, jax.Array]:
        i, lo, hi = state
        return (i + 1, *halve(i, (lo, hi)))

    _i, _lo, hi = jax.lax.while_loop(more, step, (0, jnp.zeros_like(k), jnp.ones_like(k)))
    return jnp.where(full | ~need, 1.0, hi)


def zx_counts(counts: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(errors, heralds) pooled over the Z and X bases from an epoch's counts (…, 3, 2)."""
    return counts[..., 0, 0] + counts[..., 1, 0], counts[..., 0, 1] + counts[..., 1, 1]


def pe_aborts(
    counts: jax.Array, threshold: Any, confidence: Any, upper: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """An honest endpoint's decision from its epoch's counts (E, 3, 2): (abort (E,), upper bound (E,)).

    Abort when the Clopper–Pearson upper bound of the pooled Z/X error rate at ``confidence``
    exceeds ``threshold``, or when no Z/X test round was heralded. ``upper``: that bound, already
    computed (by :func:`claim_bounds`); it is not recomputed then.
    """
    k, n = zx_counts(counts)
    if upper is None:
        upper = cp_upper(k, n, confidence)
    return (upper > threshold) | (n <= 0), upper


def claim_bounds(reported: jax.Array, counts: jax.Array, confidence: Any) -> tuple[jax.Array, jax.Array]:
    """The epoch's conservative statistics: (upper (E,), claim upper (E, 2)).

    ``upper`` is the one-sided Clopper–Pearson bound at ``confidence`` of the pooled Z/X error rate
    of the public counts (E, 3, 2) (what :func:`pe_aborts` reads). ``claim upper`` is the same bound
    of each endpoint's claim ``reported`` (E, 2): the claim read as ``k = rint(claim × n)`` errors
    out of the ``n`` heralded Z/X test rounds; where no Z/X round was heralded, the claim itself (in
    [0, 1]). A claim of the counts' own estimate (an honest endpoint's) reads ``upper``; a claim of 0
    (a liar's) the closed form ``1 − (1 − c)^{1/n}``; a claim of half the rounds or more (a
    slanderer's ½) reads ½: its bound is at least ½ at ``confidence`` ≥ ½ (the median of
    Bin(n, ½) is n/2), and every reader clips the statistic to [0, ½]. Any other claim gets its own
    bisection, which costs nothing where there is none: the model's endpoints make none, and under
    ``vmap`` every bisection runs to the slowest element, where ``betainc`` near ½ (large, equal
    parameters) converges slowly enough to dominate an epoch's end.
    It is the in-scan twin of the host's :func:`qverify.network.measure.claim_upper` (float64
    scipy; this one float32, see :func:`cp_upper`'s accuracy), the statistic the weight rule reads.
    """
    k, n = zx_counts(counts)
    k = jnp.asarray(k, jnp.float32)
    n = jnp.asarray(n, jnp.float32)
    c = jnp.asarray(confidence, jnp.float32)
    claim = jnp.clip(jnp.asarray(reported, jnp.float32), 0.0, 1.0)
    claimed = jnp.rint(claim * n[..., None])
    upper = cp_upper(k, n, confidence)
    zero = -jnp.expm1(jnp.log1p(-c) / jnp.maximum(n, 1.0))  # 1 − (1 − c)^(1/n) without cancellation
    half = 2.0 * claimed >= n[..., None]
    other = (claimed != k[..., None]) & (claimed != 0) & ~half
    own = cp_upper(claimed, n[..., None], confidence, where=other)
    per = jnp.where(half, 0.5, own)
    per = jnp.where(claimed == 0, zero[..., None], per)
    per = jnp.where(claimed == k[..., None], upper[..., None], per)
    return upper, jnp.where(n[..., None] > 0, per, claim)
