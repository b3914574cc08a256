"""GHZ verification (Pappa et al., PRL 108, 260502, 2012) against theory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.backends import exact_density_matrix
from qverify.errors import CircuitError, ParameterError
from qverify.protocols.ghz import ghz_state, shared_state
from qverify.verify.ghz import even_thetas, exact_pass_probabilities, pauli_flip_expectation, verify_ghz


@pytest.mark.parametrize("n", range(3, 11))
def test_honest_ghz_passes_every_challenge(n):
    _t, probs, fid = exact_pass_probabilities(n)
    assert np.allclose(probs, 1.0) and fid == pytest.approx(1.0)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_dishonest_strategies_match_theory(n):
    # Wrong basis by one party: that party's Y rounds (half of them) pass with 1/2 -> 3/4.
    assert exact_pass_probabilities(n, "wrong_basis")[1].mean() == pytest.approx(0.75)
    # A party swapping in its own |+>: X/Y correlations of the rest vanish -> 1/2.
    assert exact_pass_probabilities(n, "swap_qubit")[1].mean() == pytest.approx(0.5)
    # Product source |+>^n: only the all-X challenge (1 of 2^(n-1)) is certain -> 1/2 + 2^-n.
    assert exact_pass_probabilities(n, "product_source")[1].mean() == pytest.approx(0.5 + 0.5 / 2 ** (n - 1))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 6), p=st.floats(0.0, 0.3))
def test_fidelity_bound_holds_for_noisy_sources(n, p):
    # Honest parties: P = 1/2 + (F+ - F-)/2, so F+ >= 2P - 1.
    _t, probs, fid = exact_pass_probabilities(n, p_depol=p)
    assert fid >= 2 * probs.mean() - 1 - 1e-9


def test_pass_relation_is_exact_for_ghz_diagonal_states():
    n = 4
    rho = exact_density_matrix(ghz_state(n))
    minus = np.zeros_like(rho)
    dim = 2**n
    minus[0, 0] = minus[dim - 1, dim - 1] = 0.5
    minus[0, dim - 1] = minus[dim - 1, 0] = -0.5
    mix = 0.7 * rho + 0.3 * minus  # F+ = 0.7, F- = 0.3
    p = np.mean([0.5 + 0.5 * (-1) ** (t.sum() // 2) * pauli_flip_expectation(mix, ["Y" if x else "X" for x in t])
                 for t in even_thetas(n)])  # fmt: skip
    assert p == pytest.approx(0.5 + (0.7 - 0.3) / 2)


def test_sampled_mode_agrees_with_exact():
    ex = verify_ghz(5, p_depol=0.05, rounds=3000, seed=2, confidence=0.999)
    sa = verify_ghz(5, p_depol=0.05, rounds=3000, seed=2, confidence=0.999, method="sampled")
    assert sa.pass_probability.contains(ex.pass_probability.exact)


def test_verdicts():
    assert verify_ghz(6, rounds=5000).accepted
    for strategy in ("wrong_basis", "swap_qubit", "product_source"):
        assert not verify_ghz(6, strategy=strategy, rounds=5000).accepted


def test_bad_input():
    with pytest.raises(ParameterError, match="parties"):
        verify_ghz(2)
    with pytest.raises(ParameterError, match="confidence"):
        verify_ghz(3, confidence=1.0)
    with pytest.raises(CircuitError, match="one qubit per party"):
        verify_ghz(4, state=shared_state(3))
