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
epoch's heralded Z/X test rounds and bounded the same way, so fewer rounds weigh more conservatively;
node-check reports likewise, as the failures their claim implies out of the partner's GHZ rounds,
bounded in closed form by :func:`cp_bracket`'s upper end
(:func:`qverify.network.node_checks.claim_upper`).

JAX has no inverse of ``betainc``; :func:`cp_upper` solves ``I_u(k + 1, n − k) = c`` by Newton's
method inside a bracket known in closed form (traceable under ``jit``/``vmap``).
``tests/network/test_estimation.py`` checks it against ``scipy.stats.beta.ppf``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, gammaln, ndtri

MAX_STEPS = 24
"""Most Newton steps :func:`cp_upper` takes (each a ``betainc`` per element). An epoch's bounds at the
default 10⁴ test rounds settle in 2 from the Cornish–Fisher start (3 from the plain normal one;
the bisection this replaced took 22: the cost of an epoch's end
under ``vmap``, where every iteration runs to the slowest element); small ``n`` at high confidence
takes up to 7, and float32 noise in ``betainc`` can keep a few elements moving at the 1e-6 level
until the cap."""

TOLERANCE = 1e-6
"""Newton stops once every element's step, or its bracket, is below this (absolute, in rate units):
the noise of float32 ``betainc`` itself moves the root by about as much at large ``n``."""


def cp_bracket(errors: Any, trials: Any, confidence: Any, xp: Any = jnp) -> tuple[Any, Any]:
    """Closed-form (lower, upper) bracket of the one-sided Clopper–Pearson upper bound, ``n ≥ 1``.

    Lower: the point estimate ``k/n`` when ``confidence`` ≥ ½ (the median of Bin(n, k/n) is k, so
    ``P(Bin(n, k/n) ≤ k) ≥ ½ ≥ 1 − c``), else 0. Upper: the smaller of two Chernoff-type bounds of
    the binomial's lower tail, each ``p`` with ``P(Bin(n, p) ≤ k) ≤ 1 − c``: Hoeffding's
    ``k/n + √(L/2n)`` and the relative (multiplicative) Chernoff bound ``exp(−n (p − q)²/2p)`` solved
    for ``p``, ``q + L/n + √(2qL/n + (L/n)²)``, with ``q = k/n``, ``L = −ln(1 − c)``
    (W. Hoeffding, JASA 58, 13 (1963), Thm. 1; M. Mitzenmacher and E. Upfal, *Probability and
    Computing* (2005), Thm. 4.5). ``xp``: ``jax.numpy`` or ``numpy`` (the host's node-check bound).
    """
    q = errors / trials
    big_l = -xp.log1p(-confidence)
    hoeffding = q + xp.sqrt(big_l / (2.0 * trials))
    chernoff = q + big_l / trials + xp.sqrt(2.0 * q * big_l / trials + (big_l / trials) ** 2)
    return xp.where(confidence >= 0.5, q, 0.0), xp.minimum(1.0, xp.minimum(hoeffding, chernoff))


def cp_upper(errors: Any, trials: Any, confidence: Any, where: Any = None) -> jax.Array:
    """One-sided Clopper–Pearson upper bound of a binomial rate at ``confidence`` (float32).

    ``errors`` ``k`` out of ``trials`` ``n`` (broadcast together); ``k = n`` and ``n ≤ 0`` give 1,
    ``k = 0`` the closed form ``1 − (1 − c)^{1/n}``. ``where``: the elements wanted (default all);
    the others read 1. Newton's method on ``I_u(k + 1, n − k) − c`` (derivative: the Beta density),
    started from the Cornish–Fisher (normal plus skewness) approximation of the Beta quantile and
    kept inside :func:`cp_bracket` (a step leaving the bracket is replaced by its midpoint, and every evaluation narrows the
    bracket), until every wanted element moves less than ``TOLERANCE`` or ``MAX_STEPS`` is reached;
    a call in which no element is wanted (under ``vmap``: in no batch element) costs no ``betainc``.

    Accuracy: ``jax.scipy.special.betainc`` in float32 loses digits as ``n`` grows (its log-beta
    prefactor subtracts lgamma values of order n log n); against scipy's float64 ``beta.ppf`` the
    absolute error stayed below 2e-5 for n ≤ 1000 and 1e-4 for n ≤ 20 000
    (``tests/network/test_estimation.py::test_cp_upper_matches_scipy``), far below the bound's own
    statistical width at those n.
    """
    k = jnp.asarray(errors, jnp.float32)
    n = jnp.asarray(trials, jnp.float32)
    k, n = jnp.broadcast_arrays(k, n)
    c = jnp.asarray(confidence, jnp.float32)
    full = (k >= n) | (n <= 0)
    wanted = ~full if where is None else ~full & jnp.asarray(where, bool)
    zero = k <= 0
    need = wanted & ~zero
    a = jnp.where(full, 1.0, k + 1.0)
    b = jnp.where(full, 1.0, jnp.maximum(n - k, 1.0))
    lo, hi = cp_bracket(jnp.where(full, 0.0, k), jnp.maximum(n, 1.0), c)
    log_beta = gammaln(a) + gammaln(b) - gammaln(a + b)
    s = a + b
    # Cornish–Fisher start: the normal approximation of the Beta quantile with its skewness term,
    # typically within 1e-5 at the model's round counts, so Newton settles in two betainc calls, not three.
    z = ndtri(c)
    skew = 2.0 * (b - a) * jnp.sqrt(s + 1.0) / ((s + 2.0) * jnp.sqrt(a * b))
    guess = a / s + jnp.sqrt(a * b / (s * s * (s + 1.0))) * (z + skew * (z * z - 1.0) / 6.0)
    x = jnp.where((guess > lo) & (guess < hi), guess, 0.5 * (lo + hi))

    def more(state: tuple[Any, jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
        return (state[0] < MAX_STEPS) & jnp.any(state[4] > TOLERANCE)

    def newton(
        state: tuple[Any, jax.Array, jax.Array, jax.Array, jax.Array],
    ) -> tuple[Any, jax.Array, jax.Array, jax.Array, jax.Array]:
        i, x, lo, hi, _moved = state
        f = betainc(a, b, x) - c
        lo, hi = jnp.where(f < 0, x, lo), jnp.where(f < 0, hi, x)  # I_u increases in u
        density = jnp.exp((a - 1.0) * jnp.log(x) + (b - 1.0) * jnp.log1p(-x) - log_beta)
        new = x - f / density
        # Inclusive: a converged step that rounds onto the bracket's end is kept, not bisected.
        new = jnp.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
        return i + 1, new, lo, hi, jnp.where(need, jnp.minimum(jnp.abs(new - x), hi - lo), 0.0)

    start = (0, x, lo, hi, jnp.where(need, jnp.inf, 0.0))
    _i, x, _lo, _hi, _moved = jax.lax.while_loop(more, newton, start)
    closed = -jnp.expm1(jnp.log1p(-c) / jnp.maximum(n, 1.0))  # 1 − (1 − c)^(1/n) without cancellation
    return jnp.where(wanted, jnp.where(zero, closed, x), 1.0)


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
    Bin(n, ½) is n/2), and every reader clips the statistic to [0, ½]. Any other claim gets a Newton
    solve of its own, which costs nothing where there is none: the model's endpoints make none, and
    under ``vmap`` every solve runs to the slowest element, where ``betainc`` near ½ (large, equal
    parameters) converges slowly enough to dominate an epoch's end.
    It is the in-scan twin of the host's :func:`qverify.network.measure.claim_upper` (float64
    scipy; this one float32, see :func:`cp_upper`'s accuracy), the statistic the weight rule reads.
    """
    k, n = zx_counts(counts)
    k = jnp.asarray(k, jnp.float32)
    n = jnp.asarray(n, jnp.float32)
    claim = jnp.clip(jnp.asarray(reported, jnp.float32), 0.0, 1.0)
    claimed = jnp.rint(claim * n[..., None])
    upper = cp_upper(k, n, confidence)
    half = 2.0 * claimed >= n[..., None]
    # cp_upper reads a claim of 0 in closed form, without a Newton step.
    own = cp_upper(claimed, n[..., None], confidence, where=(claimed != k[..., None]) & ~half)
    per = jnp.where(half, 0.5, own)
    per = jnp.where(claimed == k[..., None], upper[..., None], per)
    return upper, jnp.where(n[..., None] > 0, per, claim)
