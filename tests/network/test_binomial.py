"""The measurement path's binomial sampler against the binomial law itself (scipy.stats.binom)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from qverify.network.binomial import _stirling_exact, binomial, stirling_tail


def chi_square_pvalue(samples: np.ndarray, n: int, p: float) -> float:
    """Pearson's test of the samples against Binomial(n, p); bins with expectation < 5 pooled."""
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    observed = np.bincount(samples.astype(np.int64), minlength=n + 1)
    big = pmf * samples.size >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(pmf[big], pmf[~big].sum()) * samples.size
    keep = exp > 0
    return float(stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue)


# Both algorithms (CDF search where n·min(p, 1 − p) ≤ 10, BTRS above), both sides of p = ½ (the
# sampler draws min(p, 1 − p) and mirrors), the boundary n·q = 10 and the sizes the network draws.
CASES = [
    (3333, 0.03),  # an error count of a 1e4-round epoch split over three bases
    (3333, 0.97),
    (3333, 0.5),
    (3333, 0.001),  # search
    (750, 0.056),  # a node-check count
    (20, 0.3),  # search, n·q = 6
    (40, 0.25),  # n·q = 10 exactly: search
    (1000, 0.0101),  # n·q = 10.1: BTRS just above the switch
    (100_000, 0.2),
]


@pytest.mark.parametrize(("n", "p"), CASES)
def test_matches_binomial_law(n: int, p: float) -> None:
    draws = np.asarray(binomial(jax.random.PRNGKey(7), jnp.full(200_000, n), jnp.full(200_000, p)))
    assert np.all(draws == np.round(draws)) and draws.min() >= 0 and draws.max() <= n
    # Fixed key, so the test is deterministic; a biased sampler fails it at this size (a bias of
    # 1 % in one bin of ≥ 2000 expected counts is 0.45 sd per bin, and the chi-square adds them).
    assert chi_square_pvalue(draws, n, p) > 1e-3
    assert abs(draws.mean() - n * p) < 5 * math.sqrt(n * p * (1 - p) / draws.size) + 1e-9


def test_retries_exact_when_buffer_is_tiny() -> None:
    """One first attempt and a one-slot retry buffer with one attempt: nearly every rejection goes
    through many rounds of the retry loop, which must keep the law."""
    draws = binomial(jax.random.PRNGKey(3), jnp.full(50_000, 800.0), jnp.full(50_000, 0.05), 1, 1e-9, 1)
    assert chi_square_pvalue(np.asarray(draws), 800, 0.05) > 1e-3


def test_under_vmap_same_law() -> None:
    keys = jax.random.split(jax.random.PRNGKey(11), 4000)
    n = jnp.array([3333.0, 750.0, 20.0, 0.0])
    p = jnp.array([0.02, 0.95, 0.3, 0.4])
    draws = np.asarray(jax.jit(jax.vmap(lambda k: binomial(k, n, p)))(keys))
    assert np.all(draws[:, 3] == 0)
    for col in range(3):
        assert chi_square_pvalue(draws[:, col], int(n[col]), float(p[col])) > 1e-3


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=-5, max_value=20_000),
    p=st.floats(min_value=-0.5, max_value=1.5, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_support_and_degenerate_cases(n: int, p: float, seed: int) -> None:
    k = np.asarray(binomial(jax.random.PRNGKey(seed), jnp.full(64, float(n)), jnp.full(64, p)))
    m = max(n, 0)
    assert np.all(k == np.round(k)) and np.all(k >= 0) and np.all(k <= m)
    if p <= 0 or m == 0:
        assert np.all(k == 0)
    if p >= 1:
        assert np.all(k == m)


def test_stirling_tail_against_lgamma() -> None:
    k = np.arange(0, 5000)
    got = np.asarray(stirling_tail(jnp.asarray(k, jnp.float32)))
    want = np.array([_stirling_exact(int(x)) for x in k])
    # The series' truncation error is below 1/(1680 (k + 1)^7) ≤ 3.4e-8 from k = 3 on; float32
    # rounding of a value ≤ 0.083 adds at most 4e-9.
    assert np.max(np.abs(got - want)) < 5e-8


def test_invalid_inputs_read_nan_and_terminate() -> None:
    n = jnp.array([jnp.inf, 100.0, jnp.nan, 3333.0])
    p = jnp.array([0.3, jnp.nan, 0.2, 0.02])
    k = np.asarray(jax.jit(binomial)(jax.random.PRNGKey(0), n, p))
    assert np.isnan(k[:3]).all() and 0 <= k[3] <= 3333
