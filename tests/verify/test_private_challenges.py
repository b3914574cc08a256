"""Secret-shared verification with private challenges and commitments (qverify.verify.secret_shared.run_private)."""

from __future__ import annotations

import math

import pytest

from qverify.errors import ChoiceError, ParameterError
from qverify.verify.dishonest import dishonest_fidelity_bound
from qverify.verify.secret_shared import run_private


def test_entangling_source_caught_only_with_private_committed_challenges():
    """n = 3, one dishonest party holding memory paired with both honest qubits (F = 2^{1−2} = ½, derived in
    qverify.verify.secret_shared): the old ordering (θ public before measuring) passes every round; without
    commitments a rushing coalition passes every round; private committed challenges: ½ + 2^{-2} = ¾."""
    r = run_private(n=3, rounds=3000, coalition=1, source="entangling", seed=4)
    assert r.fidelity == pytest.approx(0.5, abs=1e-6)
    assert r.estimates["old_order"].exact == pytest.approx(1.0, abs=1e-12) and r.estimates["old_order"].value == 1.0
    assert r.estimates["private_uncommitted"].value == 1.0
    assert r.estimates["private_committed"].exact == pytest.approx(0.75, abs=1e-12)
    assert r.estimates["private_committed"].contains(0.75)
    assert r.accepted["old_order"] and r.accepted["private_uncommitted"]  # fooled: F ≥ 0.9 claimed at F = ½
    assert not r.accepted["private_committed"] and not r.accepted["private_committed_liar"]
    # commitments exist to stop changed answers: the liar's every changed opening fails the check
    lied = round(3000 * 0.25)
    assert abs(r.commitment_failures - lied) < 5 * math.sqrt(3000 * 0.25 * 0.75)
    assert r.estimates["private_committed_liar"].value <= r.estimates["private_committed"].value
    # the dishonest-party bound at the measured rate never exceeds the source's true fidelity
    assert dishonest_fidelity_bound(r.estimates["private_committed"].exact, 3, 1) <= r.fidelity


def test_three_honest_parties_pass_five_eighths():
    r = run_private(n=4, rounds=1000, coalition=1, source="entangling", seed=2, compute_fidelity=False)
    assert r.estimates["private_committed"].exact == pytest.approx(0.625, abs=1e-12)  # ½ + 2^{-3}
    assert r.estimates["old_order"].exact == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(r.fidelity)


def test_bad_input():
    with pytest.raises(ParameterError, match="coalition = 3"):
        run_private(n=3, coalition=3)
    with pytest.raises(ChoiceError, match="source"):
        run_private(n=3, coalition=1, source="ghz")
    with pytest.raises(ParameterError, match="n = 6"):
        run_private(n=6, coalition=1)
