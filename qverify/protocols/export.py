"""Write the canonical protocol circuits as OpenQASM 3 (``qverify export-circuits``)."""

from __future__ import annotations

from pathlib import Path

from qiskit import qasm3

from qverify.protocols.mdi import BASES, RELAYS, mdi_round, round_labels


def canonical_circuits() -> dict[str, str]:
    """Relative path → OpenQASM 3 text, for every canonical circuit.

    MDI-QKD: one file per relay behaviour and (basis, Alice bit, Bob bit) setting, with
    ``inject_prob = 1`` for the injecting relay.
    """
    files: dict[str, str] = {}
    for relay in RELAYS:
        for basis, a, b in round_labels(BASES):
            qc = mdi_round(basis, a, b, relay)
            files[f"mdi/{relay}/{qc.name}.qasm"] = qasm3.dumps(qc) + "\n"
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
