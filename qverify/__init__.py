"""qverify: circuit-level verification and resilience experiments for QKD networks.

Layers (see the project README): ``physics`` (closed-form key rates), ``protocols`` (Qiskit circuit
builders), ``backends`` (the one place Aer runs), ``verify`` (estimates with confidence intervals),
and ``experiments`` (the ``qverify reproduce`` report).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
