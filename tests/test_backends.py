"""The simulator router: Stim for Clifford circuits with Pauli noise, against Aer's exact distributions."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_aer.noise import NoiseModel, amplitude_damping_error, pauli_error

from qverify.backends import sample_counts, stim_circuit
from qverify.errors import CircuitError
from qverify.protocols.mdi import BSMNoise, mdi_circuits, mdi_noise_model

SHOTS = 200_000


def _agree(circuits, noise, seed=0):
    """Stim's counts lie within 5σ of Aer's exact distributions in every cell."""
    exact = sample_counts(circuits, SHOTS, np.random.default_rng(seed), noise, "exact").probabilities
    stim = sample_counts(circuits, SHOTS, np.random.default_rng(seed + 1), noise, "stim")
    assert stim.method == "stim" and stim.counts.shape == exact.shape
    sd = np.sqrt(SHOTS * exact * (1 - exact)) + 1e-9
    assert np.abs(stim.counts - SHOTS * exact).max() / sd.max() < 5
    assert np.all(np.abs(stim.counts - SHOTS * exact) <= 5 * sd + 1e-9)


@pytest.mark.parametrize("relay", ["honest", "intercept_resend_x", "z_measure"])
def test_bsm_on_stim_matches_exact_distributions(relay):
    _agree(mdi_circuits(relay), mdi_noise_model(BSMNoise(e_mis=0.05, gate_error=0.08)))


def test_asymmetric_two_qubit_pauli_noise_keeps_its_qubit_order():
    # Depolarising noise is symmetric and would hide a swapped Stim argument order; this channel is not:
    # Qiskit label "XI" is X on the gate's second qubit, "IZ" Z on its first.
    noise = NoiseModel(basis_gates=["cx", "h", "id"])
    noise.add_quantum_error(pauli_error([("XI", 0.1), ("IZ", 0.05), ("YX", 0.15), ("II", 0.7)]), "cx", [0, 1])
    circuits = []
    for basis in ("ZZ", "XX", "ZX", "XZ"):
        qc = QuantumCircuit(2, 2, name=basis)
        qc.cx(0, 1)
        for q, b in enumerate(basis):
            if b == "X":
                qc.h(q)
        qc.measure([0, 1], [0, 1])
        circuits.append(qc)
    _agree(circuits, noise)
    # From |00⟩ in the Z basis: XI flips clbit 1 alone (outcome 2), YX flips both (3), IZ nothing.
    got = sample_counts(circuits[:1], SHOTS, np.random.default_rng(3), noise, "stim").counts[0] / SHOTS
    assert got[2] == pytest.approx(0.10, abs=0.005) and got[3] == pytest.approx(0.15, abs=0.005) and got[1] == 0


def test_auto_runs_large_clifford_circuits_on_stim():
    n = 16  # past the exact limit (12 qubits)
    qc = QuantumCircuit(n, n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.measure(range(n), range(n))
    c = sample_counts([qc], 4000, np.random.default_rng(0))
    assert c.method == "stim"
    assert c.counts[0, 0] + c.counts[0, -1] == 4000 and 1800 < c.counts[0, 0] < 2200


def test_stim_refuses_what_it_cannot_run_exactly():
    with pytest.raises(CircuitError, match="Pauli"):
        sample_counts(mdi_circuits("honest"), 10, np.random.default_rng(0),
                      mdi_noise_model(BSMNoise(amp_damping=0.1)), "stim")  # fmt: skip
    with pytest.raises(CircuitError, match="not a Clifford gate"):
        stim_circuit(mdi_circuits("inject")[0])
    # A gate outside the noise model's basis: Aer transpiles it and puts the basis gates' errors there.
    default_basis = NoiseModel()
    default_basis.add_all_qubit_quantum_error(pauli_error([("X", 0.1), ("I", 0.9)]), ["sx"])
    with pytest.raises(CircuitError, match="noise model's basis"):
        stim_circuit(mdi_circuits("honest")[0], default_basis)
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(amplitude_damping_error(0.2), ["h"])
    qc = QuantumCircuit(14, 1)
    qc.h(0)
    qc.t(1)
    qc.measure(0, 0)
    assert sample_counts([qc], 200, np.random.default_rng(0), noise).method == "sampled"  # auto falls back to Aer
