"""Load OpenQASM 2 or 3 into a ``QuantumCircuit`` with errors that say what was wrong."""

from __future__ import annotations

from pathlib import Path

from qiskit import QuantumCircuit

from qverify.errors import CircuitError


def load_qasm(source: str | Path) -> QuantumCircuit:
    """Parse a file path or QASM text (version detected from the ``OPENQASM`` header).

    >>> qc = load_qasm('OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; h q[0]; cx q[0], q[1];')
    >>> qc.num_qubits
    2
    """
    text = str(source)
    name = "<text>"
    if "\n" not in text and ";" not in text:
        path = Path(text)
        if not path.exists():
            raise CircuitError(f"QASM file {text!r} does not exist")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CircuitError(f"{str(path)!r} is not a readable text file: {exc}") from None
        name = str(path)
    stripped = "\n".join(line.split("//")[0] for line in text.splitlines()).strip()
    if not stripped.startswith("OPENQASM"):
        raise CircuitError(f"{name}: not OpenQASM (the file must start with 'OPENQASM 2.0;' or 'OPENQASM 3.0;')")
    version = stripped.split(None, 2)[1].rstrip(";")
    try:
        if version.startswith("2"):
            from qiskit import qasm2

            return qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        if version.startswith("3"):
            from qiskit import qasm3

            return qasm3.loads(text)
    except Exception as exc:  # the parsers raise several exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CircuitError(f"{name}: malformed OpenQASM {version}: {first}") from None
    raise CircuitError(f"{name}: unsupported OpenQASM version {version!r} (allowed: 2, 3)")
