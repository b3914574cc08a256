"""Aer noise models shared by the protocol circuits (each source or channel is an ``id`` gate)."""

from __future__ import annotations

from qiskit_aer.noise import NoiseModel, depolarizing_error

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
