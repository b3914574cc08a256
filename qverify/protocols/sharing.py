"""Threshold quantum secret sharing circuits: ((3,5)) via the [[5,1,3]] code, and HBB.

((3,5)) (Cleve, Gottesman, Lo, PRL 83, 648, 1999): the secret qubit is encoded in the five-qubit
code (stabilisers XZZXI and cyclic shifts, logical X = XXXXX, Z = ZZZZZ); each share is one qubit.
The code corrects any two erasures, so any three shares reconstruct the secret; by the no-cloning
bound, any two shares hold no information about it.

Encoder and decoders are Clifford circuits synthesised from Pauli tableaux, so the exported
OpenQASM is short and exact (no floating-point angles): the encoder maps X₀ ↦ X̄, Z₀ ↦ Z̄ and the
ancillas' Z_j ↦ the stabilisers; the decoder of a 3-subset A maps the representatives of X̄ and Z̄
supported on A (which exist because the other two shares form a correctable erasure) to X and Z
on the subset's first qubit. A qubit whose X and Z expectations equal the secret's is the secret,
so the remaining qubits factor off as junk.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.quantum_info import Clifford, Operator, Pauli

from qverify.errors import ParameterError

STABILISERS = ("XZZXI", "IXZZX", "XIXZZ", "ZXIXZ")
"""Generators; character k acts on qubit k (the reverse of Qiskit's label order)."""
LOGICAL_X, LOGICAL_Z = "XXXXX", "ZZZZZ"


def _pauli(label: str) -> Pauli:
    """Pauli from a string whose character k acts on qubit k."""
    return Pauli(label[::-1])


def _symplectic(p: Pauli) -> np.ndarray:
    return np.concatenate([p.x, p.z]).astype(np.uint8)


def _omega(a: np.ndarray, b: np.ndarray) -> int:
    n = len(a) // 2
    return int((a[:n] @ b[n:] + a[n:] @ b[:n]) % 2)


def _solve_gf2(rows: list[np.ndarray], rhs: list[int], dim: int) -> np.ndarray:
    """One solution d of ω(d, rows[k]) = rhs[k] over GF(2); raises if none exists."""
    n = dim // 2
    # ω(d, v) = d · (v_z, v_x): a linear form in d.
    a = np.array([np.concatenate([r[n:], r[:n]]) for r in rows], dtype=np.uint8).reshape(len(rows), dim)
    m = np.concatenate([a, np.array(rhs, dtype=np.uint8).reshape(-1, 1)], axis=1)
    pivots, r = [], 0
    for c in range(dim):
        hit = next((i for i in range(r, len(m)) if m[i, c]), None)
        if hit is None:
            continue
        m[[r, hit]] = m[[hit, r]]
        for i in range(len(m)):
            if i != r and m[i, c]:
                m[i] ^= m[r]
        pivots.append(c)
        r += 1
    if any(m[i, -1] for i in range(r, len(m))):
        raise ValueError("no symplectic partner: the given Paulis are not independent")
    d = np.zeros(dim, dtype=np.uint8)
    for i, c in enumerate(pivots):
        d[c] = m[i, -1]
    return d


def _rank_gf2(vectors: list[np.ndarray]) -> int:
    m = np.array(vectors, dtype=np.uint8)
    r = 0
    for c in range(m.shape[1]):
        hit = next((i for i in range(r, len(m)) if m[i, c]), None)
        if hit is None:
            continue
        m[[r, hit]] = m[[hit, r]]
        for i in range(len(m)):
            if i != r and m[i, c]:
                m[i] ^= m[r]
        r += 1
    return r


def _to_pauli(v: np.ndarray) -> Pauli:
    n = len(v) // 2
    return Pauli((v[n:].astype(bool), v[:n].astype(bool)))


def clifford_from_images(n: int, x_images: dict[int, Pauli], z_images: dict[int, Pauli]) -> Clifford:
    """A Clifford C on ``n`` qubits with C P_q C† = image for every given X_q / Z_q image.

    Missing images are completed by symplectic Gram–Schmidt (any completion; the ones asked for
    are honoured exactly, signs included). Raises ``ValueError`` if the given images do not have
    the commutation relations of the Paulis they replace.
    """
    xs: dict[int, np.ndarray] = {q: _symplectic(p) for q, p in x_images.items()}
    zs: dict[int, np.ndarray] = {q: _symplectic(p) for q, p in z_images.items()}
    dim = 2 * n

    def partner(of: np.ndarray) -> np.ndarray:
        """A vector anticommuting with ``of`` and commuting with every other vector so far."""
        rows = [v for v in [*xs.values(), *zs.values()]]
        return _solve_gf2(rows, [int(v is of) for v in rows], dim)

    for q in range(n):  # give every lone image its partner first, so all vectors come in pairs
        if q in zs and q not in xs:
            xs[q] = partner(zs[q])
        elif q in xs and q not in zs:
            zs[q] = partner(xs[q])
    for q in range(n):
        if q in xs:
            continue
        span = [*xs.values(), *zs.values()]
        e = next(e for e in np.eye(dim, dtype=np.uint8) if not span or _rank_gf2([*span, e]) > _rank_gf2(span))
        for p in xs:  # symplectic Gram–Schmidt: make the new vector commute with every pair
            e = e ^ (_omega(e, zs[p]) * xs[p]) ^ (_omega(e, xs[p]) * zs[p])
        zs[q] = e
        xs[q] = partner(e)
    signed = {**{("x", q): p for q, p in x_images.items()}, **{("z", q): p for q, p in z_images.items()}}

    def label(kind: str, q: int) -> str:
        p = signed.get((kind, q))
        if p is None:
            p = _to_pauli(xs[q] if kind == "x" else zs[q])
        sign = "-" if p.phase == 2 else "+"
        if p.phase % 2:
            raise ValueError(f"image of {kind.upper()}{q} is not Hermitian: {p}")
        return sign + Pauli((p.z, p.x)).to_label()

    cliff = Clifford.from_dict(
        {"destabilizer": [label("x", q) for q in range(n)], "stabilizer": [label("z", q) for q in range(n)]}
    )
    if not cliff.is_unitary():
        raise ValueError("the given images do not have the commutation relations of Pauli operators")
    return cliff


@cache
def encoder_clifford() -> Clifford:
    """Clifford encoder: X₀ ↦ X̄, Z₀ ↦ Z̄, Z_j ↦ j-th stabiliser (j = 1…4)."""
    return clifford_from_images(
        5,
        {0: _pauli(LOGICAL_X)},
        {0: _pauli(LOGICAL_Z), **{j + 1: _pauli(s) for j, s in enumerate(STABILISERS)}},
    )


def _stabiliser_group() -> list[Pauli]:
    gens = [_pauli(s) for s in STABILISERS]
    group = []
    for bits in itertools.product((0, 1), repeat=4):
        p = _pauli("IIIII")
        for b, g in zip(bits, gens, strict=True):
            if b:
                p = p.compose(g)
        group.append(p)
    return group


def _restricted_logical(logical: str, subset: tuple[int, ...]) -> Pauli:
    """The representative of a logical operator supported on ``subset``, as a Pauli on it."""
    outside = [q for q in range(5) if q not in subset]
    for s in _stabiliser_group():
        p = _pauli(logical).compose(s)
        if not any(p.x[q] or p.z[q] for q in outside):
            return Pauli((p.z[list(subset)], p.x[list(subset)], p.phase))
    raise ParameterError("subset", subset, "three shares whose complement is a correctable erasure")


@cache
def decoder_clifford(subset: tuple[int, ...]) -> Clifford:
    """Clifford on the qubits ``subset`` (local order) that moves the secret onto ``subset[0]``."""
    if len(subset) != 3 or len(set(subset)) != 3 or not all(0 <= s < 5 for s in subset):
        raise ParameterError("subset", subset, "three distinct shares among 0–4")
    recoder = clifford_from_images(
        3, {0: _restricted_logical(LOGICAL_X, subset)}, {0: _restricted_logical(LOGICAL_Z, subset)}
    )
    return recoder.adjoint()


@cache
def codewords() -> np.ndarray:
    """|0_L⟩ and |1_L⟩ of the five-qubit code as a (2, 32) array (little-endian basis)."""
    u = Operator(encoder_clifford().to_circuit()).data
    return np.array([u[:, 0], u[:, 1]])


def encoder_matrix() -> np.ndarray:
    """Unitary U with U|s⟩|0000⟩ = |s_L⟩ (secret on qubit 0, shares on qubits 0–4)."""
    return np.asarray(Operator(qss_encode()).data)


def decoder_matrix(subset: tuple[int, ...]) -> np.ndarray:
    """Unitary on the qubits ``subset`` (3 shares) that moves the secret onto ``subset[0]``."""
    return np.asarray(Operator(decoder_clifford(tuple(subset)).to_circuit()).data)


def _split(vec: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """Amplitudes as a matrix: rows = basis of qubits ``keep`` (little-endian in that order),
    columns = the other qubits."""
    n = 5
    t = vec.reshape((2,) * n)  # axis a ↔ qubit n − 1 − a
    rest = tuple(q for q in range(n) if q not in keep)
    order = [n - 1 - q for q in reversed(keep)] + [n - 1 - q for q in reversed(rest)]
    return t.transpose(order).reshape(2 ** len(keep), 2 ** len(rest))


def decoder_for(words: np.ndarray, subset: tuple[int, ...]) -> np.ndarray:
    """Decoder of ``subset`` for any 5-qubit code given by its codewords (2, 32), as a dense unitary.

    This is the general path for user-supplied encoders, which need not be Clifford. Raises
    ``CircuitError`` if the two erasures outside ``subset`` are not correctable.
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
    """Encoder of the ((3,5)) scheme (5 qubits; the secret starts on qubit 0), Clifford gates only."""
    qc = QuantumCircuit(QuantumRegister(5, "share"), name="qss35_encode")
    qc.compose(encoder_clifford().to_circuit(), range(5), inplace=True)
    return qc


def qss_decode(subset: tuple[int, ...]) -> QuantumCircuit:
    """Decoder for the shares ``subset`` (secret ends on ``subset[0]``), Clifford gates only."""
    qc = QuantumCircuit(QuantumRegister(5, "share"), name=f"qss35_decode_{''.join(map(str, subset))}")
    qc.compose(decoder_clifford(tuple(subset)).to_circuit(), list(subset), inplace=True)
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
