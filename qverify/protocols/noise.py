"""Aer noise models shared by the protocol circuits (each source or channel is an ``id`` gate)."""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit_aer.noise import NoiseModel, depolarizing_error

from qverify.errors import CircuitError
from qverify.physics._validate import check_range

NOISY_BASIS = ("id", "x", "h", "s", "sdg", "u", "ry", "cx", "cswap", "unitary", "reset")
"""Gates the noisy simulations run natively (no transpilation, so the ``id`` gates survive)."""


def depolarising_channel(p_depol: float) -> NoiseModel | None:
    """Depolarising error of probability ``p_depol`` in [0, 1] on every ``id`` (channel) gate.

    ``None`` when ``p_depol == 0`` (a noiseless run).
    """
    check_range("p_depol", p_depol, 0.0, 1.0)
    if p_depol == 0:
        return None
    model = NoiseModel(basis_gates=list(NOISY_BASIS))
    model.add_all_qubit_quantum_error(depolarizing_error(p_depol, 1), ["id"])
    return model


NOT_A_SOURCE = ("measure", "reset", "if_else", "while_loop", "for_loop", "switch_case")
"""Operations a state-preparation circuit may not contain before its final measurements."""


def as_source(qc: QuantumCircuit) -> QuantumCircuit:
    """A user's state-preparation circuit as a noisy source, like the built-in ones.

    Final measurements are dropped; identity gates (``id``, and the ``U(0, 0, 0)`` an OpenQASM 3
    ``id`` becomes when loaded) are removed; one ``id`` per qubit is appended as the channel on which
    :func:`depolarising_channel` acts, so ``p_depol`` means the same for a loaded file as for a
    built-in source. Mid-circuit measurements, resets and classical control are refused: their
    random outcomes would make the verdict change between runs.

    Examples:
        >>> from qiskit import QuantumCircuit
        >>> qc = QuantumCircuit(2); _ = qc.h(0); _ = qc.cx(0, 1); _ = qc.id(0)
        >>> [i.operation.name for i in as_source(qc).data]
        ['h', 'cx', 'id', 'id']
    """
    bare = qc.remove_final_measurements(inplace=False)
    out = bare.copy_empty_like()
    for k, inst in enumerate(bare.data):
        op = inst.operation
        if op.name in NOT_A_SOURCE:
            raise CircuitError(
                f"circuit {qc.name!r}: {op.name!r} at instruction {k} before the end; a state-preparation "
                "circuit must be unitary up to its final measurements (mid-circuit measurements, resets "
                "and classical control are not supported)"
            )
        if op.name == "id" or (op.name in ("u", "U", "u3") and all(float(p) == 0.0 for p in op.params)):
            continue
        out.append(inst)
    for q in range(out.num_qubits):
        out.id(q)
    return out
