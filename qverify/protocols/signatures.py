"""BB84-state quantum digital signature circuits (Amiri, Wallden, Kent, Andersson, PRA 93, 032325,
2016): one signature position = a BB84 state sent by the signer, a channel, and the recipient's
measurement in a basis of its own choosing."""

from __future__ import annotations

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from qverify.errors import ChoiceError, ParameterError


def position_circuit(state_basis: str, bit: int, measure_basis: str) -> QuantumCircuit:
    """Signer prepares ``|bit⟩`` in ``state_basis`` (Z or X); the recipient measures in ``measure_basis``."""
    for name, b in (("state_basis", state_basis), ("measure_basis", measure_basis)):
        if b not in ("Z", "X"):
            raise ChoiceError(name, b, ("Z", "X"))
    if bit not in (0, 1):
        raise ParameterError("bit", bit, "{0, 1}")
    qc = QuantumCircuit(
        QuantumRegister(1, "q"), ClassicalRegister(1, "m"), name=f"qds_{state_basis}{bit}_{measure_basis}"
    )
    if bit:
        qc.x(0)
    if state_basis == "X":
        qc.h(0)
    qc.id(0)  # quantum channel to the recipient
    if measure_basis == "X":
        qc.h(0)
    qc.measure(0, 0)
    return qc


def all_position_circuits() -> list[QuantumCircuit]:
    """The 8 circuits (state basis × bit × measurement basis), in a fixed order."""
    return [position_circuit(sb, b, mb) for sb in ("Z", "X") for b in (0, 1) for mb in ("Z", "X")]
