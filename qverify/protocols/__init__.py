"""Qiskit circuit builders for the protocols qverify verifies (no networks, no simulators here)."""
