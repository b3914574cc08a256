"""Threshold quantum secret sharing circuits: ((3,5)) via the [[5,1,3]] code, and HBB.

((3,5)) (Cleve, Gottesman, Lo, PRL 83, 648, 1999): the secret qubit is encoded in the five-qubit
code (stabilisers XZZXI and cyclic shifts, logical X = XXXXX, Z = ZZZZZ); each share is one qubit.
The code corrects any two erasures, so any three shares reconstruct the secret; by the no-cloning
bound, any two shares hold no information about it. Decoders for each 3-subset are computed from
the code (the unitary that maps the subset's share space to secret ⊗ junk).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit.library import UnitaryGate

from qverify.errors import ParameterError

STABILISERS = ("XZZXI", "IXZZX", "XIXZZ", "ZXIXZ")
_P = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Z": np.diag([1.0, -1.0])}


def _pauli(label: str) -> np.ndarray:
    """Matrix of a Pauli string; character k acts on qubit k (Qiskit little-endian order)."""
    out = np.eye(1)
    for ch in label:  # kron builds big-endian: the first character ends up least significant last
        out = np.kron(_P[ch], out)
    return out


@cache
def codewords() -> np.ndarray:
    """|0_L⟩ and |1_L⟩ of the five-qubit code as a (2, 32) array (little-endian basis)."""
    proj = np.eye(32)
    for g in STABILISERS:
        proj = proj @ (np.eye(32) + _pauli(g)) / 2
    zero = proj[:, 0] / np.linalg.norm(proj[:, 0])
    one = _pauli("XXXXX") @ zero
    return np.array([zero, one])


@cache
def encoder_matrix() -> np.ndarray:
    """Unitary U with U|s⟩|0000⟩ = |s_L⟩ (secret on qubit 0, shares on qubits 0–4)."""
    cw = codewords()
    cols = np.zeros((32, 32), dtype=complex)
    cols[:, 0], cols[:, 1] = cw[0], cw[1]
    rng = np.random.default_rng(513)  # fixed: the completion is arbitrary but must be reproducible
    rest = rng.normal(size=(32, 30)) + 1j * rng.normal(size=(32, 30))
    q, _ = np.linalg.qr(np.concatenate([cols[:, :2], rest], axis=1))
    q[:, 0] *= np.vdot(q[:, 0], cw[0]) / abs(np.vdot(q[:, 0], cw[0]))
    q[:, 1] *= np.vdot(q[:, 1], cw[1]) / abs(np.vdot(q[:, 1], cw[1]))
    # Place |s⟩|0000⟩ (basis indices 0, 1) on the codewords.
    return q


def _split(vec: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """Amplitudes as a matrix: rows = basis of qubits ``keep`` (little-endian in that order),
    columns = the other qubits."""
    n = 5
    t = vec.reshape((2,) * n)  # axis a ↔ qubit n − 1 − a
    rest = tuple(q for q in range(n) if q not in keep)
    order = [n - 1 - q for q in reversed(keep)] + [n - 1 - q for q in reversed(rest)]
    return t.transpose(order).reshape(2 ** len(keep), 2 ** len(rest))


@cache
def decoder_matrix(subset: tuple[int, ...]) -> np.ndarray:
    """Unitary on the qubits ``subset`` (3 shares) that moves the secret onto ``subset[0]``."""
    return decoder_for(codewords(), subset)


def decoder_for(words: np.ndarray, subset: tuple[int, ...]) -> np.ndarray:
    """Decoder of ``subset`` for any 5-qubit code given by its codewords (2, 32).

    Raises ``CircuitError`` if the two erasures outside ``subset`` are not correctable.
    """
    from qverify.errors import CircuitError

    if len(subset) != 3 or len(set(subset)) != 3 or not all(0 <= s < 5 for s in subset):
        raise ParameterError("subset", subset, "three distinct shares among 0–4")
    a0, a1 = (_split(c, subset) for c in words)
    if not np.allclose(a0.conj().T @ a1, 0, atol=1e-8) or not np.allclose(
        a0.conj().T @ a0, a1.conj().T @ a1, atol=1e-8
    ):
        raise CircuitError(f"shares {subset} cannot reconstruct the secret: the code does not correct the other two")
    gram = a0.conj().T @ a0
    w, v = np.linalg.eigh(gram)
    if w.min() < 1e-10:
        raise CircuitError(f"shares {subset} cannot reconstruct the secret: the code is not a ((3,5)) threshold code")
    inv_sqrt = v @ np.diag(1 / np.sqrt(w)) @ v.conj().T
    b0, b1 = a0 @ inv_sqrt, a1 @ inv_sqrt
    u = np.zeros((8, 8), dtype=complex)
    for k in range(4):
        u[0 + 2 * k, :] = b0[:, k].conj()
        u[1 + 2 * k, :] = b1[:, k].conj()
    return u


def authorised_sets() -> list[tuple[int, ...]]:
    return list(itertools.combinations(range(5), 3))


def qss_encode() -> QuantumCircuit:
    """Encoder of the ((3,5)) scheme (5 qubits; the secret starts on qubit 0)."""
    qc = QuantumCircuit(QuantumRegister(5, "share"), name="qss35_encode")
    qc.append(UnitaryGate(encoder_matrix(), label="enc513"), range(5))
    return qc


def qss_decode(subset: tuple[int, ...]) -> QuantumCircuit:
    """Decoder for the shares ``subset`` (secret ends on ``subset[0]``)."""
    qc = QuantumCircuit(QuantumRegister(5, "share"), name=f"qss35_decode_{''.join(map(str, subset))}")
    qc.append(UnitaryGate(decoder_matrix(tuple(subset)), label="dec513"), list(subset))
    return qc


def hbb_state() -> QuantumCircuit:
    """Three-party GHZ of Hillery–Bužek–Berthiaume sharing (dealer = qubit 0)."""
    qc = QuantumCircuit(QuantumRegister(3, "party"), name="hbb_ghz3")
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    for i in range(3):
        qc.id(i)
    return qc
