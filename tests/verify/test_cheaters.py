"""Optimal cheaters of the X/Y GHZ test (qverify.verify.cheaters) and their place next to the library's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qverify.errors import ChoiceError, ParameterError
from qverify.verify import cheaters as C
from qverify.verify.dishonest import P_STAR, dishonest_fidelity_bound
from qverify.verify.ghz import OPTIMAL_STRATEGIES, verify_ghz


def _separable_optimum(honest: int) -> float:
    """Derived in qverify.verify.dishonest: a product state's logical coherence |⟨1…1|ρ_H|0…0⟩| is at most
    2^-|H|, and the coalition's best is ½ + |c|/√2 (both answers' signs chosen)."""
    return 0.5 + 2.0**-honest / math.sqrt(2)


@pytest.mark.parametrize(("n", "k"), [(3, 1), (3, 2), (4, 1), (4, 3), (5, 1)])
def test_product_and_separable_cheaters_reach_their_optimum(n, k):
    dis = tuple(range(n - k, n))
    prod = C.optimal_cheater(n, "product", dis, restarts=3)
    sep = C.optimal_cheater(n, "separable", dis, restarts=3)
    assert prod.pass_probability == pytest.approx(P_STAR, abs=1e-6)
    assert sep.pass_probability == pytest.approx(_separable_optimum(n - k), abs=1e-6)
    # the library's separable cheater (|+⟩^n, measured as told) is beaten by the optimal one of its class
    assert sep.pass_probability >= C.library_pass_probability(n, "product_source") - 1e-12
    assert prod.pass_probability > max(C.library_pass_probability(n, s) for s in ("swap_qubit", "product_source"))
    for ch in (prod, sep):
        assert ch.honest_pass_probability <= ch.pass_probability + 1e-12
        assert dishonest_fidelity_bound(ch.pass_probability, n, k) <= ch.fidelity() + 1e-7


def test_biseparable_cheaters_per_cut():
    """n = 4, one dishonest party: every cut with an honest party on each side; the best is ¾
    (two honest halves, each steered by the coalition — derived: half the rounds land in L)."""
    per_cut = C.optimal_biseparable_cheaters(4, (3,), restarts=3)
    assert set(per_cut) == set(C.cuts(4, (3,)))
    best = max(c.pass_probability for c in per_cut.values())
    assert best == pytest.approx(0.75, abs=1e-6)
    assert all(c.pass_probability <= P_STAR + 1e-9 for c in per_cut.values())
    with pytest.raises(ParameterError, match="coalition"):
        C.optimal_biseparable_cheaters(3, (1, 2))


def test_optimal_strategies_in_verify_ghz():
    for s in OPTIMAL_STRATEGIES:
        r = verify_ghz(4, strategy=s, rounds=4000, seed=2)
        kind = s.removeprefix("optimal_")
        ch = C.optimal_cheater(4, kind, (0,), seed=2)
        assert r.pass_probability.exact == pytest.approx(ch.pass_probability, abs=1e-9)
        assert not r.accepted  # the dishonest-party verdict rejects every optimal cheater
    honest_view = verify_ghz(4, strategy="optimal_product", rounds=10**5, seed=1, trust="honest", threshold=0.6)
    assert honest_view.accepted and honest_view.fidelity <= 0.5 + 1e-9  # 2P − 1 ≈ 0.707 > F ≤ ½


def test_bad_input():
    with pytest.raises(ParameterError, match="parties = 6"):
        verify_ghz(6, strategy="optimal_product", rounds=10)
    with pytest.raises(ParameterError, match="p_depol"):
        verify_ghz(4, strategy="optimal_product", rounds=10, p_depol=0.1)
    with pytest.raises(ChoiceError, match="kind"):
        C.optimal_cheater(4, "entangled")
    with pytest.raises(ParameterError, match="blocks"):
        C.optimal_block_cheater(3, (2,), ((0,), (1,)))
    assert np.isclose(np.linalg.norm(C.optimal_cheater(3, "product").state), 1.0)
