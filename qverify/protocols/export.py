"""Write the canonical protocol circuits as OpenQASM 3 (``qverify export-circuits``).

Every canonical circuit is built from exact gates (Clifford gates and angles that are multiples
of π/2), so its OpenQASM text carries no machine-dependent floating-point digits. A file already
on disk is rewritten only when the circuit it holds differs from the builder's as an operator (up
to a global phase) or in what it measures, so exporting onto a clean checkout changes nothing
even where another Qiskit version would format the same circuit differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qiskit import QuantumCircuit, qasm3
from qiskit.quantum_info import Operator

from qverify.protocols.ghz import ghz_state
from qverify.protocols.mdi import BASES, RELAYS, mdi_round, round_labels
from qverify.protocols.sharing import authorised_sets, hbb_state, qss_decode, qss_encode
from qverify.protocols.signatures import all_position_circuits


def canonical_circuits() -> dict[str, QuantumCircuit]:
    """Relative path → circuit, for every canonical circuit.

    MDI-QKD: one file per relay behaviour and (basis, Alice bit, Bob bit) setting, with
    ``inject_prob = 1`` for the injecting relay. GHZ states for 3, 5, 8 parties; the ((3,5))
    encoder and the decoder of every authorised set (Clifford circuits); HBB's three-party GHZ;
    the BB84-state signature position circuits.
    """
    files: dict[str, QuantumCircuit] = {}
    for relay in RELAYS:
        for basis, a, b in round_labels(BASES):
            qc = mdi_round(basis, a, b, relay)
            files[f"mdi/{relay}/{qc.name}.qasm"] = qc
    for n in (3, 5, 8):
        files[f"ghz/ghz_{n}.qasm"] = ghz_state(n)
    files["sharing/qss35_encode.qasm"] = qss_encode()
    for subset in authorised_sets():
        qc = qss_decode(subset)
        files[f"sharing/{qc.name}.qasm"] = qc
    files["sharing/hbb_ghz3.qasm"] = hbb_state()
    for qc in all_position_circuits():
        files[f"signatures/{qc.name}.qasm"] = qc
    return files


def to_qasm(qc: QuantumCircuit) -> str:
    """OpenQASM 3 text of a canonical circuit, newline-terminated."""
    return qasm3.dumps(qc) + "\n"


def _final_measurements(qc: QuantumCircuit) -> list[tuple[int, int]]:
    return sorted(
        (qc.find_bit(inst.qubits[0]).index, qc.find_bit(inst.clbits[0]).index)
        for inst in qc.data
        if inst.operation.name == "measure"
    )


def same_circuit(a: QuantumCircuit, b: QuantumCircuit) -> bool:
    """True when ``a`` and ``b`` act alike: same registers' sizes, the same unitary up to a global
    phase, and the same qubit → bit measurements at the end."""
    if (a.num_qubits, a.num_clbits) != (b.num_qubits, b.num_clbits):
        return False
    if _final_measurements(a) != _final_measurements(b):
        return False
    ua = Operator(a.remove_final_measurements(inplace=False))
    ub = Operator(b.remove_final_measurements(inplace=False))
    return bool(ua.equiv(ub))


@dataclass(frozen=True)
class ExportResult:
    """Paths written (new or changed circuits) and paths left as they were (equivalent circuits)."""

    written: list[Path]
    unchanged: list[Path]


def export_circuits(directory: str | Path) -> ExportResult:
    """Write :func:`canonical_circuits` under ``directory``, leaving equivalent files untouched."""
    root = Path(directory)
    written, unchanged = [], []
    for rel, qc in canonical_circuits().items():
        path = root / rel
        if path.is_file():
            try:
                on_disk = qasm3.loads(path.read_text())
            except Exception:  # unreadable or stale file: replace it
                on_disk = None
            if on_disk is not None and same_circuit(on_disk, qc):
                unchanged.append(path)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_qasm(qc))
        written.append(path)
    return ExportResult(written, unchanged)
