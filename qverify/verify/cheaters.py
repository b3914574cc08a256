"""Optimal cheaters for the X/Y GHZ test: the best a coalition colluding with the source can pass with
a state of a restricted entanglement class, for n ≤ 5 parties.

Classes (:data:`CHEATER_KINDS`), all pure product states over blocks of qubits (the pass probability
with the coalition's best answers is convex in the state, so pure products are the extreme points of
each separable set and the optimum sits on one):

- ``product``: no entanglement between the honest parties and the coalition (blocks H | D);
- ``biseparable``: separable across one cut S | S̄ of the n qubits with an honest party on each side
  (every such cut is tried; per cut with :func:`optimal_biseparable_cheaters`). A cut with a side
  inside the coalition is no restriction (the coalition can rebuild GHZ there: such states pass
  with 1 at F = 1), and H | D is ``product``; so ``biseparable`` needs at least two honest parties;
- ``separable``: fully separable (one block per qubit).

The coalition's answers are exact best responses (``sign(O_{θ_D})``,
:func:`qverify.verify.dishonest.optimal_strategy`); the state is found by a see-saw that alternates
that best response with, block by block, the top eigenvector of the pass operator restricted to the
block, from several random starts. A see-saw gives an attained point (a lower bound on the class
optimum); for ``product`` it meets the analytic optimum ``P* = ½ + 1/(2√2)``
(:data:`qverify.verify.dishonest.P_STAR`).

Today's library cheaters (:data:`qverify.protocols.ghz.STRATEGIES`) measure as told; these adapt
their answers, and pass at higher rates (compare with :func:`library_pass_probability`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.errors import ChoiceError, ParameterError
from qverify.verify.dishonest import fidelity_up_to_coalition, optimal_strategy, pass_operator

CHEATER_KINDS = ("product", "biseparable", "separable")
MAX_CHEATER_PARTIES = 5
"""Largest n for the optimal cheaters (state vectors of 2^5 entries, SDP fidelity of 2·2^k)."""


@dataclass(frozen=True)
class Cheater:
    """A state and coalition strategy of one class.

    Attributes:
        kind: one of :data:`CHEATER_KINDS`.
        parties: n.
        dishonest: the coalition's qubits.
        blocks: the product structure of ``state`` (tuples of qubits).
        state: the n-qubit state vector (Qiskit order: qubit 0 least significant).
        strategy: the coalition's ±1 observable per challenge ``θ_D`` (its qubits in ``dishonest`` order).
        pass_probability: pass probability with that strategy (exact).
        honest_pass_probability: pass probability of ``state`` if the coalition measured as told.
    """

    kind: str
    parties: int
    dishonest: tuple[int, ...]
    blocks: tuple[tuple[int, ...], ...]
    state: np.ndarray
    strategy: dict[tuple[int, ...], np.ndarray]
    pass_probability: float
    honest_pass_probability: float

    def fidelity(self, solver: str = "CLARABEL") -> float:
        """GHZ fidelity up to an operation on the coalition (certified SDP lower bound, see
        :func:`qverify.verify.dishonest.fidelity_up_to_coalition`)."""
        rho = np.outer(self.state, self.state.conj())
        return fidelity_up_to_coalition(rho, self.parties, self.dishonest, solver)

    def challenge_pass_probabilities(self, thetas: np.ndarray) -> np.ndarray:
        """Pass probability for each challenge row of ``thetas`` (shape (m, n), even parity)."""
        out = []
        for t in np.asarray(thetas):
            key = tuple(int(t[q]) for q in self.dishonest)
            w = _single_challenge_operator(self.parties, self.dishonest, self.strategy[key], t)
            out.append(0.5 + 0.5 * float(np.real(self.state.conj() @ w @ self.state)))
        return np.clip(np.array(out), 0.0, 1.0)


def _single_challenge_operator(n: int, dishonest: tuple[int, ...], b: np.ndarray, theta: Any) -> np.ndarray:
    """``(−1)^{|θ|/2} M_{θ_H} ⊗ B`` in Qiskit order."""
    from qverify.verify.dishonest import _perm_matrix, _single

    honest = [q for q in range(n) if q not in dishonest]
    m = np.ones((1, 1), dtype=complex)
    for q in honest:
        m = np.kron(m, _single(int(theta[q])))
    perm = _perm_matrix(n, honest + list(dishonest))
    return (-1) ** (int(np.sum(theta)) // 2) * (perm.T @ np.kron(m, b) @ perm)


def _check(n: int, dishonest: tuple[int, ...]) -> None:
    if not 3 <= n <= MAX_CHEATER_PARTIES:
        raise ParameterError("parties", n, f"[3, {MAX_CHEATER_PARTIES}]")
    if not 1 <= len(dishonest) <= n - 1 or len(set(dishonest)) != len(dishonest):
        raise ParameterError("coalition", len(dishonest), f"[1, {n - 1}] distinct parties")
    for q in dishonest:
        if not 0 <= q < n:
            raise ParameterError("dishonest party", q, f"[0, {n - 1}]")


def _assemble(n: int, blocks: tuple[tuple[int, ...], ...], vecs: list[np.ndarray]) -> np.ndarray:
    """Full state vector (Qiskit order) of ``⊗_j vecs[j]`` with block j on qubits ``blocks[j]`` (big-endian within)."""
    t = np.ones((), dtype=complex)
    order: list[int] = []
    for blk, v in zip(blocks, vecs, strict=True):
        t = np.multiply.outer(t, v.reshape((2,) * len(blk)))
        order += list(blk)
    # axis i of the Qiskit-ordered tensor is qubit n − 1 − i
    t = np.transpose(t, [order.index(n - 1 - i) for i in range(n)])
    return t.reshape(-1)


def optimal_block_cheater(
    n: int, dishonest: tuple[int, ...], blocks: tuple[tuple[int, ...], ...], kind: str = "product",
    restarts: int = 6, iterations: int = 40, seed: int = 0,
) -> Cheater:  # fmt: skip
    """Best pure product state over ``blocks`` with the coalition's best answers (see-saw, module docstring)."""
    _check(n, dishonest)
    if sorted(q for b in blocks for q in b) != list(range(n)):
        raise ParameterError("blocks", blocks, f"a partition of the qubits 0..{n - 1}")
    rng = np.random.default_rng(seed)
    best: tuple[float, list[np.ndarray], Any] | None = None
    for _ in range(restarts):
        vecs = []
        for blk in blocks:
            v = rng.normal(size=2 ** len(blk)) + 1j * rng.normal(size=2 ** len(blk))
            vecs.append(v / np.linalg.norm(v))
        last = -1.0
        for _ in range(iterations):
            psi = _assemble(n, blocks, vecs)
            p, strat = optimal_strategy(np.outer(psi, psi.conj()), n, dishonest)
            w = pass_operator(n, dishonest, strat)
            for j, blk in enumerate(blocks):
                dj = 2 ** len(blk)
                cols = np.stack([_assemble(n, blocks, [*vecs[:j], e, *vecs[j + 1 :]]) for e in np.eye(dj)], axis=1)
                eff = cols.conj().T @ w @ cols
                _, vs = np.linalg.eigh((eff + eff.conj().T) / 2)
                vecs[j] = vs[:, -1]
            if p - last < 1e-10:
                break
            last = p
        psi = _assemble(n, blocks, vecs)
        p, strat = optimal_strategy(np.outer(psi, psi.conj()), n, dishonest)
        if best is None or p > best[0]:
            best = (p, list(vecs), strat)
    assert best is not None
    psi = _assemble(n, blocks, best[1])
    rho = np.outer(psi, psi.conj())
    from qverify.verify.dishonest import honest_strategy, pass_probability

    honest_p = pass_probability(rho, n, dishonest, honest_strategy(n, dishonest))
    return Cheater(kind, n, tuple(dishonest), tuple(blocks), psi, best[2], best[0], honest_p)


def cuts(n: int, dishonest: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every cut S | S̄ of n qubits once (S contains qubit 0) with an honest party on each side."""
    honest = {q for q in range(n) if q not in dishonest}
    out = []
    for r in range(1, n):
        for s in itertools.combinations(range(n), r):
            rest = set(range(n)) - set(s)
            if 0 in s and honest & set(s) and honest & rest:
                out.append(s)
    return out


def optimal_biseparable_cheaters(
    n: int, dishonest: tuple[int, ...], seed: int = 0, **kw: Any
) -> dict[tuple[int, ...], Cheater]:
    """The optimal cheater separable across each cut (keyed by the side containing qubit 0)."""
    _check(n, dishonest)
    if len(dishonest) > n - 2:
        raise ParameterError(
            "coalition", len(dishonest), f"[1, {n - 2}] (a biseparable cheater needs two honest parties)"
        )
    out = {}
    for s in cuts(n, dishonest):
        rest = tuple(q for q in range(n) if q not in s)
        out[s] = optimal_block_cheater(n, dishonest, (s, rest), "biseparable", seed=seed, **kw)
    return out


def optimal_cheater(n: int, kind: str, dishonest: tuple[int, ...] | None = None, seed: int = 0, **kw: Any) -> Cheater:
    """The optimal cheater of ``kind`` (:data:`CHEATER_KINDS`); ``biseparable`` is the best over every cut.

    ``dishonest`` defaults to the last party.
    """
    if kind not in CHEATER_KINDS:
        raise ChoiceError("kind", kind, CHEATER_KINDS)
    dis = (n - 1,) if dishonest is None else tuple(dishonest)
    _check(n, dis)
    if kind == "product":
        honest = tuple(q for q in range(n) if q not in dis)
        return optimal_block_cheater(n, dis, (honest, dis), kind, seed=seed, **kw)
    if kind == "separable":
        return optimal_block_cheater(n, dis, tuple((q,) for q in range(n)), kind, seed=seed, **kw)
    per_cut = optimal_biseparable_cheaters(n, dis, seed=seed, **kw)
    return max(per_cut.values(), key=lambda c: c.pass_probability)


def library_pass_probability(n: int, strategy: str, dishonest: int = 0) -> float:
    """Exact pass probability of one of today's circuit strategies (:data:`qverify.protocols.ghz.STRATEGIES`)."""
    from qverify.verify.ghz import exact_pass_probabilities

    _, probs, _ = exact_pass_probabilities(n, strategy, dishonest)
    return float(probs.mean())
