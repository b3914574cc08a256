"""Write the canonical protocol circuits as OpenQASM 3 (``qverify export-circuits``)."""

from __future__ import annotations

from pathlib import Path

from qiskit import QuantumCircuit, qasm3

from qverify.protocols.ghz import ghz_state
from qverify.protocols.mdi import BASES, RELAYS, mdi_round, round_labels
from qverify.protocols.sharing import authorised_sets, hbb_state, qss_decode, qss_encode
from qverify.protocols.signatures import all_position_circuits

QASM_BASIS = ("u", "cx", "id", "h", "x", "s", "sdg", "measure")
"""Gates the exported circuits use; unitary blocks are synthesised into u + cx (fixed seed)."""


def _portable(qc: QuantumCircuit) -> QuantumCircuit:
    from qiskit import transpile

    if any(inst.operation.name == "unitary" for inst in qc.data):
        out: QuantumCircuit = transpile(qc, basis_gates=list(QASM_BASIS), optimization_level=1, seed_transpiler=0)
        return out
    return qc


def canonical_circuits() -> dict[str, str]:
    """Relative path → OpenQASM 3 text, for every canonical circuit.

    MDI-QKD: one file per relay behaviour and (basis, Alice bit, Bob bit) setting, with
    ``inject_prob = 1`` for the injecting relay. GHZ states for 3, 5, 8 parties; the ((3,5)) encoder
    and the decoder of every authorised set (synthesised to u + cx); HBB's three-party GHZ; the
    BB84-state signature position circuits.
    """
    files: dict[str, str] = {}
    for relay in RELAYS:
        for basis, a, b in round_labels(BASES):
            qc = mdi_round(basis, a, b, relay)
            files[f"mdi/{relay}/{qc.name}.qasm"] = qasm3.dumps(qc) + "\n"
    for n in (3, 5, 8):
        files[f"ghz/ghz_{n}.qasm"] = qasm3.dumps(ghz_state(n)) + "\n"
    files["sharing/qss35_encode.qasm"] = qasm3.dumps(_portable(qss_encode())) + "\n"
    for subset in authorised_sets():
        qc = qss_decode(subset)
        files[f"sharing/{qc.name}.qasm"] = qasm3.dumps(_portable(qc)) + "\n"
    files["sharing/hbb_ghz3.qasm"] = qasm3.dumps(hbb_state()) + "\n"
    for qc in all_position_circuits():
        files[f"signatures/{qc.name}.qasm"] = qasm3.dumps(qc) + "\n"
    return files


def export_circuits(directory: str | Path) -> list[Path]:
    """Write :func:`canonical_circuits` under ``directory``; returns the paths written."""
    root = Path(directory)
    written = []
    for rel, text in canonical_circuits().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
