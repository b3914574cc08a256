"""Single-photon MDI-QKD round as a Qiskit circuit: BB84 preparation, channel, Charlie's BSM.

Qubit 0 is Alice's photon, qubit 1 Bob's; each passes an ``id`` gate standing for its fibre (the
noise model attaches channel errors there). Charlie applies CX(0→1), H(0) and measures: clbit 1 = 1
heralds ψ± (the only states a linear-optics BSM announces), clbit 0 then tells ψ− (1) from ψ+ (0).
Φ± (clbit 1 = 0) are discarded, which gives the 1/2 success probability of Y11 = η_a η_b / 2.

Key conventions (Lo–Curty–Qi PRL 108, 130503): in Z, ψ± means Alice's and Bob's bits differ; in X
and Y, ψ+ means equal bits and ψ− different bits. All measurements are terminal (attacks use
deferred measurement on ancillas), so exact outcome distributions exist for every circuit.

>>> qc = mdi_round("Z", 0, 1)
>>> qc.num_qubits, qc.num_clbits
(2, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit_aer.noise import NoiseModel, amplitude_damping_error, depolarizing_error

from qverify.errors import ChoiceError, ParameterError
from qverify.physics._validate import check_range

Basis = Literal["Z", "X", "Y"]
BASES: tuple[str, ...] = ("Z", "X", "Y")
RELAYS: tuple[str, ...] = ("honest", "intercept_resend_z", "intercept_resend_x", "z_measure", "inject")
"""Relay behaviours: an honest BSM; Eve intercepting every photon of Alice in Z or in X and re-sending
what she saw; a wrong measurement (Charlie measures both photons in Z and announces a random ψ sign);
injection of a maximally mixed state in place of Alice's photon with probability ``inject_prob``."""


@dataclass(frozen=True)
class BSMNoise:
    """Noise of one MDI round.

    Attributes:
        e_mis: misalignment, a Pauli error with probability ``e_mis`` on Alice's input, i.e.
            ``depolarizing_error(2 e_mis, 1)``; in [0, 0.5].
        gate_error: depolarising probability on Charlie's CX and H gates, in [0, 1].
        amp_damping: amplitude-damping γ on both inputs, in [0, 1].
    """

    e_mis: float = 0.0
    gate_error: float = 0.0
    amp_damping: float = 0.0

    def __post_init__(self) -> None:
        check_range("e_mis", self.e_mis, 0.0, 0.5)
        check_range("gate_error", self.gate_error, 0.0, 1.0)
        check_range("amp_damping", self.amp_damping, 0.0, 1.0)

    @property
    def is_noiseless(self) -> bool:
        return self.e_mis == 0 and self.gate_error == 0 and self.amp_damping == 0


def _prepare(qc: QuantumCircuit, qubit: int, basis: str, bit: int) -> None:
    if bit:
        qc.x(qubit)
    if basis in ("X", "Y"):
        qc.h(qubit)
    if basis == "Y":
        qc.s(qubit)


def mdi_round(
    alice_basis: str,
    alice_bit: int,
    bob_bit: int,
    relay: str = "honest",
    inject_prob: float = 1.0,
) -> QuantumCircuit:
    """Circuit of one single-photon round; Alice and Bob use the same basis.

    Args:
        alice_basis: ``"Z"``, ``"X"`` or ``"Y"`` (Y serves fidelity estimation only).
        alice_bit: Alice's encoded bit, 0 or 1.
        bob_bit: Bob's encoded bit, 0 or 1.
        relay: one of :data:`RELAYS`.
        inject_prob: for ``relay="inject"``, the probability in [0, 1] that Alice's photon is
            replaced by a maximally mixed state.
    """
    if alice_basis not in BASES:
        raise ChoiceError("basis", alice_basis, BASES)
    if relay not in RELAYS:
        raise ChoiceError("relay", relay, RELAYS)
    for name, bit in (("alice_bit", alice_bit), ("bob_bit", bob_bit)):
        if bit not in (0, 1):
            raise ParameterError(name, bit, "{0, 1}")
    check_range("inject_prob", inject_prob, 0.0, 1.0)

    photons = QuantumRegister(2, "photon")
    bsm = ClassicalRegister(2, "bsm")
    regs: list[QuantumRegister | ClassicalRegister] = [photons]
    extra = {"intercept_resend_z": 1, "intercept_resend_x": 1, "z_measure": 1, "inject": 3}.get(relay, 0)
    if extra:
        regs.append(QuantumRegister(extra, "relay"))
    qc = QuantumCircuit(*regs, bsm, name=f"mdi_{alice_basis}{alice_bit}{bob_bit}_{relay}")
    _prepare(qc, 0, alice_basis, alice_bit)
    _prepare(qc, 1, alice_basis, bob_bit)
    qc.id(0)  # Alice's fibre
    qc.id(1)  # Bob's fibre
    if relay.startswith("intercept_resend"):
        # Eve measures Alice's photon and re-sends the result: a copy into her ancilla that is never
        # returned is the same channel (deferred measurement).
        x_basis = relay.endswith("_x")
        if x_basis:
            qc.h(0)
        qc.cx(0, 2)
        if x_basis:
            qc.h(0)
    elif relay == "inject":
        coin, junk, partner = 2, 3, 4
        qc.ry(2 * math.asin(math.sqrt(inject_prob)), coin)
        qc.h(partner)
        qc.cx(partner, junk)  # junk is now maximally mixed
        qc.cswap(coin, 0, junk)
    if relay == "z_measure":
        qc.cx(0, 1)  # parity of the two Z outcomes into qubit 1
        qc.h(2)  # a fair coin decides which ψ Charlie announces
        qc.measure(2, bsm[0])
        qc.measure(1, bsm[1])
    else:
        qc.cx(0, 1)
        qc.h(0)
        qc.measure(0, bsm[0])
        qc.measure(1, bsm[1])
    return qc


def round_labels(bases: tuple[str, ...] = BASES) -> list[tuple[str, int, int]]:
    """The (basis, alice_bit, bob_bit) settings of one full set of rounds, in a fixed order."""
    return [(b, a, c) for b in bases for a in (0, 1) for c in (0, 1)]


def mdi_circuits(
    relay: str = "honest", bases: tuple[str, ...] = BASES, inject_prob: float = 1.0
) -> list[QuantumCircuit]:
    """One circuit per setting of :func:`round_labels` (12 for Z, X, Y)."""
    return [mdi_round(b, a, c, relay, inject_prob) for b, a, c in round_labels(bases)]


def mdi_noise_model(noise: BSMNoise) -> NoiseModel | None:
    """Aer noise model: channel errors on the ``id`` gates of qubits 0/1, gate noise at Charlie."""
    if noise.is_noiseless:
        return None
    model = NoiseModel(basis_gates=["id", "x", "h", "s", "cx", "ry", "cswap"])
    for qubit in (0, 1):
        err = None
        if noise.e_mis > 0 and qubit == 0:
            err = depolarizing_error(2 * noise.e_mis, 1)
        if noise.amp_damping > 0:
            damp = amplitude_damping_error(noise.amp_damping)
            err = damp if err is None else err.compose(damp)
        if err is not None:
            model.add_quantum_error(err, "id", [qubit])
    if noise.gate_error > 0:
        model.add_quantum_error(depolarizing_error(noise.gate_error, 2), "cx", [0, 1])
        model.add_quantum_error(depolarizing_error(noise.gate_error, 1), "h", [0])
    return model
