"""Verification of threshold quantum secret sharing: ((3,5)) reconstruction and secrecy, HBB.

All checks are exact (Aer density matrices): every authorised set of three shares reconstructs
random secret states with fidelity 1, every unauthorised pair holds a state independent of the
secret (trace distance), and the reconstruction fidelity degrades with depolarising noise on the
shares. For HBB (Hillery, Bužek, Berthiaume, PRA 59, 1829, 1999), the error rate on sifted rounds
is exactly 1 − the GHZ-test pass probability; an eavesdropper who intercepts one share in a random
X/Y basis and re-sends it is caught on 25 % of the sifted rounds.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit

from qverify.backends import exact_density_matrix
from qverify.physics._validate import check_range
from qverify.protocols.noise import depolarising_channel
from qverify.protocols.sharing import authorised_sets, hbb_state, qss_decode, qss_encode
from qverify.verify.ghz import even_thetas, pauli_flip_expectation


def reduced(rho: np.ndarray, keep: list[int], n: int) -> np.ndarray:
    """Partial trace onto the qubits ``keep`` (returned in increasing qubit order)."""
    from qiskit.quantum_info import DensityMatrix, partial_trace

    traced = [q for q in range(n) if q not in keep]
    return np.asarray(partial_trace(DensityMatrix(rho), traced).data)


def _secret_prep(theta: float, phi: float) -> QuantumCircuit:
    qc = QuantumCircuit(5)
    qc.u(theta, phi, 0.0, 0)
    return qc


def _secret_vector(theta: float, phi: float) -> np.ndarray:
    return np.array([np.cos(theta / 2), np.exp(1j * phi) * np.sin(theta / 2)])


def codewords_of(encoder: QuantumCircuit) -> np.ndarray:
    """|0_L⟩, |1_L⟩ of a 5-qubit encoder (secret on qubit 0), relative phase included, exactly."""
    from qverify.errors import CircuitError

    if encoder.num_qubits != 5:
        raise CircuitError(f"a ((3,5)) encoder acts on 5 qubits; this circuit has {encoder.num_qubits}")
    bare = encoder.remove_final_measurements(inplace=False)
    vecs = []
    for prep in ("0", "1", "+"):
        qc = QuantumCircuit(5)
        if prep == "1":
            qc.x(0)
        if prep == "+":
            qc.h(0)
        rho = exact_density_matrix(qc.compose(bare))
        w, v = np.linalg.eigh(rho)
        if w[-1] < 1 - 1e-9:
            raise CircuitError("the encoder does not map pure inputs to pure states (measurements or resets?)")
        vecs.append(v[:, -1])
    zero, one, plus = vecs
    phase = np.vdot(one, plus) / np.vdot(zero, plus)  # ⟨1_L|+_L⟩/⟨0_L|+_L⟩ = e^{iφ}
    return np.array([zero, one * phase / abs(phase)])


def reconstruction_fidelity(
    subset: tuple[int, ...], theta: float, phi: float, p_depol: float = 0.0, encoder: QuantumCircuit | None = None
) -> float:
    """Fidelity of the secret recovered from ``subset`` (exact), shares depolarised with ``p_depol``."""
    from qiskit.circuit.library import UnitaryGate

    from qverify.protocols.sharing import decoder_for

    check_range("p_depol", p_depol, 0.0, 1.0)
    enc = qss_encode() if encoder is None else encoder.remove_final_measurements(inplace=False)
    qc = _secret_prep(theta, phi).compose(enc)
    for q in range(5):
        qc.id(q)
    if encoder is None:
        qc = qc.compose(qss_decode(subset))
    else:
        qc.append(UnitaryGate(decoder_for(codewords_of(encoder), tuple(subset))), list(subset))
    rho = exact_density_matrix(qc, depolarising_channel(p_depol))
    r1 = reduced(rho, [subset[0]], 5)
    v = _secret_vector(theta, phi)
    return float(np.real(v.conj() @ r1 @ v))


def share_state(pair: tuple[int, ...], theta: float, phi: float, encoder: QuantumCircuit | None = None) -> np.ndarray:
    """Reduced state of the shares ``pair`` for the secret (θ, φ) (exact)."""
    enc = qss_encode() if encoder is None else encoder.remove_final_measurements(inplace=False)
    rho = exact_density_matrix(_secret_prep(theta, phi).compose(enc))
    return reduced(rho, list(pair), 5)


def trace_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(np.linalg.eigvalsh(a - b)).sum())


@dataclass(frozen=True)
class QSSResult:
    """((3,5)) check: worst reconstruction fidelity over all authorised sets and secrets, worst
    trace distance between unauthorised pairs' states for different secrets, and the verdict."""

    min_fidelity: float
    max_unauthorised_distance: float
    secrets: int
    accepted: bool
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_qss(
    secrets: int = 4, seed: int = 0, p_depol: float = 0.0, tol: float = 1e-10, encoder: QuantumCircuit | None = None
) -> QSSResult:
    """Check all 10 authorised sets on ``secrets`` random states and all 10 pairs for secrecy.

    >>> r = verify_qss(secrets=2)
    >>> r.accepted, round(r.min_fidelity, 9), r.max_unauthorised_distance < 1e-10
    (True, 1.0, True)
    """
    rng = np.random.default_rng(seed)
    angles = [(float(np.arccos(1 - 2 * rng.random())), float(2 * np.pi * rng.random())) for _ in range(secrets)]
    fids = [reconstruction_fidelity(s, th, ph, p_depol, encoder) for s in authorised_sets() for th, ph in angles]
    dist = 0.0
    for pair in itertools.combinations(range(5), 2):
        states = [share_state(pair, th, ph, encoder) for th, ph in angles[:2]] + [share_state(pair, 0.0, 0.0, encoder)]
        dist = max(dist, max(trace_distance(states[0], s) for s in states[1:]))
    params = {"secrets": secrets, "seed": seed, "p_depol": p_depol, "tolerance": tol}
    ok = min(fids) >= 1 - tol and dist <= tol
    return QSSResult(float(min(fids)), float(dist), secrets, bool(ok), params)


def hbb_error_rate(eavesdropper: bool = False, p_depol: float = 0.0) -> float:
    """Error rate of HBB on sifted rounds (even number of Y measurements), exact.

    With ``eavesdropper`` Eve intercepts party 2's qubit, measures it in X or Y (equal
    probability) and re-sends her result; theory gives 1/4.
    """
    variants: list[QuantumCircuit] = []
    base = hbb_state()
    if not eavesdropper:
        variants = [base]
    else:
        for basis in ("X", "Y"):
            qc = QuantumCircuit(4)
            qc.compose(base, qubits=[0, 1, 2], inplace=True)
            if basis == "Y":
                qc.sdg(2)
            qc.h(2)
            qc.cx(2, 3)  # Eve keeps the outcome: the re-sent qubit is dephased in her basis
            qc.h(2)
            if basis == "Y":
                qc.s(2)
            variants.append(qc)
    errs = []
    for qc in variants:
        rho = exact_density_matrix(qc, depolarising_channel(p_depol))
        if qc.num_qubits == 4:
            rho = reduced(rho, [0, 1, 2], 4)
        for t in even_thetas(3):
            bases = ["Y" if x else "X" for x in t]
            p_pass = 0.5 + 0.5 * (-1) ** (int(t.sum()) // 2) * pauli_flip_expectation(rho, bases)
            errs.append(1 - p_pass)
    return float(np.mean(errs))
