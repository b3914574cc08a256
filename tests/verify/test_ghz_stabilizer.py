"""GHZ verification on Stim (Clifford sources, any n up to 64): agreement with the exact density
matrix where both run, the closed forms where only Stim can, and refusals for what it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qverify.backends import is_clifford, to_stim
from qverify.errors import ChoiceError, CircuitError
from qverify.protocols.ghz import STRATEGIES, ghz_state, shared_state
from qverify.verify.ghz import exact_pass_probabilities, verify_ghz


def _within(est, p: float, sigmas: float = 4.5) -> bool:
    return abs(est.value - p) <= sigmas * np.sqrt(p * (1 - p) / est.trials) + 1e-12


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("n", "noise", "p"), [(3, "local", 0.2), (7, "global", 0.3), (11, "local", 0.05)])
def test_stabilizer_sampling_agrees_with_the_exact_density_matrix(strategy, n, noise, p):
    # Where both run, the exact pass probability (Aer density matrix, every challenge) is the oracle.
    _t, probs, _f = exact_pass_probabilities(n, strategy, 1, p, noise=noise)
    r = verify_ghz(
        n, p_depol=p, strategy=strategy, dishonest=1, rounds=20_000, seed=5, method="stabilizer", noise=noise
    )
    assert r.pass_probability.method == "stabilizer"
    assert _within(r.pass_probability, float(probs.mean())), (r.pass_probability, probs.mean())


@pytest.mark.parametrize(("n", "noise"), [(24, "local"), (40, "global"), (64, "local")])
def test_large_ghz_follows_the_closed_forms(n, noise):
    # Local depolarising p per qubit: 1/2 + (1 − p)^n / 2; global: 1 − p/2 (tests/verify/test_noise_and_limits.py).
    p = 0.01
    r = verify_ghz(n, p_depol=p, rounds=20_000, seed=n, noise=noise, threshold=0.0)
    assert r.pass_probability.method == "stabilizer"  # chosen by "auto" above 12 parties
    expect = 0.5 + (1 - p) ** n / 2 if noise == "local" else 1 - p / 2
    assert _within(r.pass_probability, expect), (r.pass_probability, expect)


def test_large_cheaters_are_caught_at_64_parties():
    # Wrong basis: half the challenges see an odd Y count at the honest state, so P = 3/4; a product
    # source passes half the rounds.
    wrong = verify_ghz(64, strategy="wrong_basis", dishonest=5, rounds=10_000, seed=1)
    product = verify_ghz(64, strategy="product_source", rounds=10_000, seed=1)
    assert _within(wrong.pass_probability, 0.75) and not wrong.accepted
    assert _within(product.pass_probability, 0.5) and not product.accepted


def test_same_seed_same_verdict_and_count():
    a = verify_ghz(30, p_depol=0.02, rounds=5_000, seed=9)
    b = verify_ghz(30, p_depol=0.02, rounds=5_000, seed=9)
    assert a.pass_probability.value == b.pass_probability.value and a.accepted == b.accepted


def test_a_40_qubit_clifford_file_runs_and_a_non_clifford_one_is_refused_before_allocation():
    # Issue #15 item 5: a 40-qubit GHZ file tried to allocate 8 TiB.
    qc = ghz_state(40)
    qc.measure_all()
    assert verify_ghz(40, rounds=2_000, state=qc).pass_probability.value == 1.0
    bad = ghz_state(40)
    bad.t(3)
    assert not is_clifford(bad)
    with pytest.raises(Exception, match="40 qubits") as info:
        verify_ghz(40, rounds=10, state=bad)
    assert "Traceback" not in str(info.value)


def test_to_stim_maps_depolarising_and_refuses_non_clifford_gates():
    prep = to_stim(shared_state(3, "swap_qubit", 1), 0.2)
    text = str(prep)
    assert "DEPOLARIZE1(0.15)" in text and "R 1" in text  # Aer depolarizing(p) = X, Y, Z each p/4
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.t(1)
    with pytest.raises(CircuitError, match="'t' at instruction 1"):
        to_stim(qc)


def test_unknown_method_is_refused():
    with pytest.raises(ChoiceError, match="method"):
        verify_ghz(4, rounds=10, method="tensor")
