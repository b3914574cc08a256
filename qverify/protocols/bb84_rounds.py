"""Prepare-and-measure BB84 test rounds (six states): what a BB84 link's verification rounds run.

Alice prepares ``|bit⟩`` in basis Z, X or Y; the photon crosses the channel (an ``id`` gate, where
noise attaches: the fibre's depolarising channel, then a Byzantine endpoint's replacement of the
photon by a maximally mixed one); Bob measures in the same basis. Every round is detected (single
photon, the test model of :mod:`qverify.network.measure`), so an outcome is an error or a correct
bit; the Y basis only enters the fidelity (``F = 1 − (e_x + e_y + e_z)/2``).
"""

from __future__ import annotations

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit_aer.noise import NoiseModel, depolarizing_error

from qverify.errors import ChoiceError, ParameterError

BASES: tuple[str, ...] = ("Z", "X", "Y")


def round_circuit(basis: str, bit: int) -> QuantumCircuit:
    """One test round: ``|bit⟩`` in ``basis`` prepared, sent (``id``), measured in ``basis``."""
    if basis not in BASES:
        raise ChoiceError("basis", basis, BASES)
    if bit not in (0, 1):
        raise ParameterError("bit", bit, "{0, 1}")
    qc = QuantumCircuit(QuantumRegister(1, "q"), ClassicalRegister(1, "m"), name=f"bb84_{basis}{bit}")
    if bit:
        qc.x(0)
    if basis == "X":
        qc.h(0)
    elif basis == "Y":
        qc.h(0)
        qc.s(0)
    qc.id(0)  # the channel
    if basis == "X":
        qc.h(0)
    elif basis == "Y":
        qc.sdg(0)
        qc.h(0)
    qc.measure(0, 0)
    return qc


def all_rounds() -> list[tuple[str, int, QuantumCircuit]]:
    """All six rounds as (basis, bit, circuit), bases in :data:`BASES` order."""
    return [(b, bit, round_circuit(b, bit)) for b in BASES for bit in (0, 1)]


def channel_noise(lam: float, inject_prob: float) -> NoiseModel | None:
    """The fibre's depolarising channel of probability ``lam``, then a Byzantine endpoint's
    replacement by a maximally mixed photon with ``inject_prob`` (itself a depolarising channel)."""
    if lam == 0 and inject_prob == 0:
        return None
    model = NoiseModel(basis_gates=["id", "x", "h", "s", "sdg", "u"])
    errors = [depolarizing_error(p, 1) for p in (lam, inject_prob) if p > 0]
    err = errors[0] if len(errors) == 1 else errors[0].compose(errors[1])
    model.add_all_qubit_quantum_error(err, ["id"])
    return model
