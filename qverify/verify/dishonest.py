"""A fidelity bound for the X/Y GHZ test that holds when parties are dishonest, computed and certified here.

Setting (Pappa et al., PRL 108, 260502, 2012): the source and a coalition ``D`` of ``k`` parties
(1 ≤ k ≤ n − 1) collude; the honest parties ``H`` (the verifier among them) measure X or Y as
challenged. The coalition answers from its challenge bits ``θ_D`` with any measurement on everything
it holds (its k qubits plus any memory, including randomness shared with the source). The figure
bounded is

    ``F(ρ) = max_Λ ⟨GHZ| (id_H ⊗ Λ)(ρ) |GHZ⟩``,

``Λ`` any quantum operation (CPTP map) on the coalition's systems: the GHZ fidelity up to what the
dishonest parties could undo. (Unitaries alone do not suffice: with ``k ≥ 2`` the state
``½(GHZ₊ ⊗ |0⟩⟨0| + GHZ₋ ⊗ |1⟩⟨1|)`` — the last dishonest qubit a flag the coalition reads before
answering — passes with probability 1 at unitary fidelity ½; see :func:`flagged_ghz_state`.)

Reduction (derived here; every step is checked against the full n-qubit model in
``tests/verify/test_dishonest.py``):

1. Averaging the honest challenges ``θ_H`` (uniform given ``θ_D``, ``Σθ`` even) the pass probability
   is ``½ + ½ E_{θ_D} Tr[ρ (A_{θ_D} ⊗ B_{θ_D})]`` with ``A_{θ_D} = i^{|θ_D|} |0_H⟩⟨1_H| + h.c.``
   (every other term ``|x⟩⟨x̄|`` averages to zero) and ``B_{θ_D}`` the coalition's ±1 observable. So
   the honest side is one *logical qubit* ``L = span{|0…0⟩_H, |1…1⟩_H}`` asked X or Y with
   probability ½ each; its complement ("junk", only when ``|H| ≥ 2``) passes with ½ and has ``F = 0``.
2. The coalition's two binary measurements decompose (Naimark, then Jordan's lemma) into qubit
   blocks it can read without changing its answers; reading the block can only lower ``F``, and
   ``F`` and the pass probability are averages over blocks. The worst case is therefore the lower
   convex envelope of a **two-qubit** problem — ``B_X = Z``, ``B_Y = cos φ Z + sin φ X`` up to a
   coalition rotation, ``φ ∈ [0, π]`` — together with the junk point ``(P, F) = (½, 0)``.
3. Two-qubit fidelity is a semidefinite programme (König, Renner, Schaffner, IEEE TIT 55, 4337,
   2009): ``F(ρ) = ½ min{Tr σ : ρ ≤ I ⊗ σ} = ½ max{Tr ρ C : C ≥ 0, Tr_A C = I}``.

Result: the envelope is piecewise linear with vertices ``(½, 0)``, ``(P*, ½)``, ``(1, 1)``,
``P* = ½ + 1/(2√2) ≈ 0.8536`` (honest qubits in ``(|0…0⟩ + e^{iπ/4}|1…1⟩)/√2``, coalition
unentangled and answering from its challenge bits — the counterexample of issue 32, and the XY
threshold of Han et al., npj Quantum Inf. 2021, Table 1), GHZ at ``(1, 1)``:

    ``F ≥ √2 (P − ½)`` for ``½ ≤ P ≤ P*``,   ``F ≥ ½ + (2 + √2)(P − P*)`` for ``P ≥ P*``.

The Quantum Protocol Zoo's summary ``P = 1 − τ²/2`` (τ the trace distance to GHZ minimised over
unitaries on D, ``refs/verification.md``) is the honest-case relation ``F = 2P − 1`` for pure
states; it does not hold when the coalition adapts its answers (the product cheat has ``τ² = ½``,
hence ``1 − τ²/2 = ¾``, but passes at ``P* ≈ 0.854``).

It is the same for every ``n`` and every coalition size ``k ≤ n − 2``; for ``k = n − 1`` there is no
junk and the exact envelope is higher below ``P*`` (it starts at ``(½, ¼)``), so qverify reports
``max(¼, ·)`` there (``F ≥ ¼`` always holds for one honest qubit). The vertices are attained, in the
full n-qubit model for ``k ≥ 2`` (the flag fits in a dishonest qubit), so the bound cannot be raised.

Soundness is certified by :func:`certify`: for each piece ``F ≥ a + bP`` and each cell of ``φ``
values, a dual feasible ``C`` (made exactly feasible) gives ``F − bP ≥ λ_min(C/2 − bT_φ/4) − b/2``,
and ``‖T_φ − T_φ'‖ ≤ |φ − φ'|`` extends it over the cell. Cells are split until each certifies
``a − CERTIFIED_MARGIN``; qverify reports the envelope minus :data:`CERTIFIED_MARGIN`.
Certifying F ≥ 0.9 needs ``P ≥`` :func:`certifying_pass_rate` ``(0.9) ≈ 0.9707`` (honest bound: 0.95).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.errors import ParameterError, SolverError
from qverify.physics._validate import check_range

SQRT2 = math.sqrt(2.0)
P_STAR = 0.5 + 1.0 / (2.0 * SQRT2)
"""Best pass probability with no entanglement between honest and dishonest parties (derived above)."""
SLOPE_LOW, SLOPE_HIGH = SQRT2, 2.0 + SQRT2
"""Slopes dF/dP of the two pieces of the envelope."""
PIECES: tuple[tuple[float, float], ...] = (
    (-SQRT2 / 2.0, SLOPE_LOW),
    (0.5 - SLOPE_HIGH * P_STAR, SLOPE_HIGH),
)
"""(a, b) of each piece ``F ≥ a + bP`` of the envelope."""
CERTIFIED_MARGIN = 1e-4
"""Slack the certificate of :func:`certify` proves: ``F ≥ envelope(P) − CERTIFIED_MARGIN`` for every state."""

DISHONEST_BOUND = (
    "dishonest-party bound (qverify.verify.dishonest: SDP-certified envelope, coalition may collude with the source)"
)
HONEST_BOUND = "honest-party bound F ≥ 2P − 1 (Pappa et al., PRL 108, 260502; assumes every party measures honestly)"
SOLVERS = ("CLARABEL", "SCS")

_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1.0, -1.0]).astype(complex)
_I2 = np.eye(2, dtype=complex)


def check_coalition(parties: int, coalition: int) -> None:
    """Raise unless ``3 ≤ parties`` and ``1 ≤ coalition ≤ parties − 1`` (at least the verifier is honest)."""
    if not isinstance(parties, (int, np.integer)) or parties < 3:
        raise ParameterError("parties", parties, "[3, 64]")
    if not isinstance(coalition, (int, np.integer)) or not 1 <= coalition <= parties - 1:
        raise ParameterError("coalition", coalition, f"[1, {parties - 1}]")


def envelope(p: Any) -> Any:
    """The exact worst-case fidelity at pass probability ``p`` (coalitions with ``|H| ≥ 2``), vectorised."""
    p = np.asarray(p, dtype=float)
    low = PIECES[0][0] + PIECES[0][1] * p
    high = PIECES[1][0] + PIECES[1][1] * p
    return np.clip(np.maximum(low, high), 0.0, 1.0)


def dishonest_fidelity_bound(p: Any, parties: int, coalition: int) -> Any:
    """Lower bound on ``F`` (see the module docstring) of any state and coalition strategy of
    ``coalition`` dishonest parties out of ``parties`` that passes with probability ``p``.

    >>> round(float(dishonest_fidelity_bound(1.0, 3, 1)), 4), round(float(dishonest_fidelity_bound(0.95, 4, 2)), 4)
    (0.9999, 0.8292)
    """
    check_coalition(parties, coalition)
    check_range("pass probability", p, 0.0, 1.0)
    out = np.maximum(envelope(p) - CERTIFIED_MARGIN, 0.0)
    if coalition == parties - 1:
        out = np.maximum(out, 0.25)  # one honest qubit: F ≥ 2^{-H_min(A|D)}/2 ≥ 1/4
    return out if np.ndim(out) else float(out)


def certifying_pass_rate(fidelity: float) -> float:
    """Smallest pass probability whose dishonest-party bound reaches ``fidelity`` (any coalition).

    >>> round(certifying_pass_rate(0.9), 4)
    0.9707
    """
    check_range("fidelity", fidelity, 0.0, 1.0 - CERTIFIED_MARGIN)
    target = fidelity + CERTIFIED_MARGIN
    if target <= 0.5:
        return float((target - PIECES[0][0]) / PIECES[0][1])
    return float((target - PIECES[1][0]) / PIECES[1][1])


# ----------------------------------------------------------------------------- two-qubit SDPs


def logical_correlator(phi: float) -> np.ndarray:
    """``T_φ = X ⊗ B_X + Y ⊗ B_Y`` with ``B_X = Z``, ``B_Y = cos φ Z + sin φ X`` (honest logical qubit ⊗
    coalition qubit); the pass probability is ``½ + Tr(ρ T_φ)/4``."""
    return np.kron(_X, _Z) + np.kron(_Y, np.cos(phi) * _Z + np.sin(phi) * _X)


def _solve(problem: Any, solver: str, accept: tuple[str, ...] = ("optimal",)) -> None:
    """Solve ``problem``; any status outside ``accept`` raises :class:`~qverify.errors.SolverError`."""
    import cvxpy as cp

    if solver not in SOLVERS:
        from qverify.errors import ChoiceError

        raise ChoiceError("solver", solver, SOLVERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            problem.solve(solver=solver)
        except cp.error.SolverError as exc:
            raise SolverError(solver, "solver_error", str(exc).splitlines()[0] if str(exc) else "") from None
    if problem.status not in accept:
        raise SolverError(solver, str(problem.status))


def min_fidelity_two_qubit(p: float, phi: float, solver: str = "CLARABEL") -> tuple[float, np.ndarray]:
    """(min F, the minimising state) over two-qubit ``ρ`` passing with probability ≥ ``p`` at angle ``φ``.

    Joint SDP over ``ρ`` and the KRS dual variable ``σ``: ``min ½ Tr σ`` s.t. ``ρ ≤ I ⊗ σ``. Infeasible
    (``p`` above ``½ + λ_max(T_φ)/4``) raises :class:`~qverify.errors.SolverError`.
    """
    import cvxpy as cp

    check_range("pass probability", p, 0.0, 1.0)
    rho = cp.Variable((4, 4), hermitian=True)
    sig = cp.Variable((2, 2), hermitian=True)
    t = logical_correlator(phi)
    cons = [rho >> 0, cp.real(cp.trace(rho)) == 1, cp.kron(_I2, sig) - rho >> 0,
            0.5 + 0.25 * cp.real(cp.trace(t @ rho)) >= p]  # fmt: skip
    prob = cp.Problem(cp.Minimize(0.5 * cp.real(cp.trace(sig))), cons)
    _solve(prob, solver)
    r = np.asarray(rho.value)
    return float(prob.value), (r + r.conj().T) / 2


def two_qubit_fidelity(rho: np.ndarray, solver: str = "CLARABEL") -> float:
    """``F = max_Λ ⟨Φ|(id ⊗ Λ)(ρ)|Φ⟩ = ½ max{Tr ρC : C ≥ 0, Tr_A C = I_D}`` (KRS 2009) for ``ρ`` on
    (2-dim A) ⊗ (any D), A first.

    The dual ``C`` is repaired to exact feasibility before ``½ Tr ρC`` is evaluated, so the value is
    a certified lower bound on ``F`` whatever the solver's accuracy (and equal to it when it converged).
    """
    import cvxpy as cp

    rho = np.asarray(rho, dtype=complex)
    d = rho.shape[0] // 2
    c = cp.Variable((2 * d, 2 * d), hermitian=True)
    eye_d = np.eye(d)
    pt = sum(cp.kron(np.eye(2)[[i]], eye_d) @ c @ cp.kron(np.eye(2)[[i]].T, eye_d) for i in range(2))
    prob = cp.Problem(cp.Maximize(0.5 * cp.real(cp.trace(rho @ c))), [c >> 0, pt == eye_d])
    _solve(prob, solver, accept=("optimal", "optimal_inaccurate"))
    cv = _repair_choi(np.asarray(c.value), d, solver)
    return float(0.5 * np.real(np.trace(rho @ cv)))


def _repair_choi(cv: np.ndarray, d: int, solver: str) -> np.ndarray:
    """Nearest-by-construction exactly feasible ``C``: PSD part, then ``(I ⊗ M^{-½}) C (I ⊗ M^{-½})``."""
    cv = (cv + cv.conj().T) / 2
    w, v = np.linalg.eigh(cv)
    cv = (v * np.maximum(w, 0.0)) @ v.conj().T
    marg = cv.reshape(2, d, 2, d).trace(axis1=0, axis2=2)
    w, v = np.linalg.eigh(marg)
    if w.min() <= 0:
        raise SolverError(solver, "certificate not repairable (singular marginal)")
    m = (v / np.sqrt(w)) @ v.conj().T
    return np.kron(_I2, m) @ cv @ np.kron(_I2, m)


def _dual_problem(b: float) -> tuple[Any, Any, Any]:
    """The dual SDP of :func:`piece_certificate`, built once per slope (``T_φ`` a parameter)."""
    import cvxpy as cp

    c = cp.Variable((4, 4), hermitian=True)
    tv = cp.Variable()
    t_phi = cp.Parameter((4, 4), hermitian=True)
    pt = sum(cp.kron(np.eye(2)[[i]], _I2) @ c @ cp.kron(np.eye(2)[[i]].T, _I2) for i in range(2))
    prob = cp.Problem(cp.Maximize(tv), [c >> 0, pt == _I2, c / 2 - (b / 4) * t_phi - tv * np.eye(4) >> 0])
    return prob, c, t_phi


def piece_certificate(phi: float, a: float, b: float, solver: str = "CLARABEL", problem: Any = None) -> float:
    """Certified lower bound on ``min_ρ [F(ρ) − b P_φ(ρ)] − a`` at angle ``φ`` (≥ 0: the piece holds at φ).

    Solves the dual ``max t : C/2 − bT_φ/4 ≥ tI, C ≥ 0, Tr_A C = I``, repairs ``C`` to exact
    feasibility (PSD part, then ``(I ⊗ M^{-½}) C (I ⊗ M^{-½})``, ``M = Tr_A C``) and evaluates
    ``λ_min`` with numpy, so the value does not rest on the solver's accuracy (an inaccurate solve
    only makes it smaller). ``problem`` is a prebuilt :func:`_dual_problem` for slope ``b``.
    """
    prob, c, t_param = problem if problem is not None else _dual_problem(b)
    t_phi = logical_correlator(phi)
    t_param.value = t_phi
    _solve(prob, solver, accept=("optimal", "optimal_inaccurate"))
    cv = _repair_choi(np.asarray(c.value), 2, solver)
    return float(np.linalg.eigvalsh(cv / 2 - (b / 4) * t_phi).min() - b / 2 - a)


@dataclass(frozen=True)
class Certificate:
    """Result of :func:`certify`: ``cells`` (piece index, φ centre, half width, certified value), and the
    smallest certified value (≥ −margin means the envelope minus ``margin`` is proven)."""

    cells: tuple[tuple[int, float, float, float], ...]
    worst: float
    margin: float

    @property
    def proven(self) -> bool:
        return self.worst >= -self.margin


def certify(
    margin: float = CERTIFIED_MARGIN, start_cells: int = 16, max_depth: int = 18, solver: str = "CLARABEL",
    lo: float = 0.0, hi: float = math.pi,
) -> Certificate:  # fmt: skip
    """Prove ``F ≥ a + bP − margin`` for both pieces over ``φ ∈ [lo, hi]`` by adaptive cells (see module docstring).

    A cell ``[φ − h, φ + h]`` certifies ``piece_certificate(φ) − b h / 4``; cells below ``−margin`` are
    halved, up to ``max_depth`` times (then the worst value is reported, not hidden).
    """
    check_range("margin", margin, 0.0, 1.0, low_open=True)
    out: list[tuple[int, float, float, float]] = []
    for i, (a, b) in enumerate(PIECES):
        problem = _dual_problem(b)
        h0 = (hi - lo) / (2 * start_cells)
        stack = [(lo + (2 * j + 1) * h0, h0, 0) for j in range(start_cells)]
        while stack:
            phi, h, depth = stack.pop()
            val = piece_certificate(phi, a, b, solver, problem) - b * h / 4
            if val < -margin and depth < max_depth:
                stack += [(phi - h / 2, h / 2, depth + 1), (phi + h / 2, h / 2, depth + 1)]
            else:
                out.append((i, phi, h, val))
    return Certificate(tuple(out), min(c[3] for c in out), margin)


# ----------------------------------------------------------------------------- full n-qubit model


def ghz_vector(n: int) -> np.ndarray:
    v = np.zeros(2**n, dtype=complex)
    v[0] = v[-1] = 1 / SQRT2
    return v


def _single(theta: int) -> np.ndarray:
    return _Y if theta else _X


def _op_on(n: int, ops: dict[int, np.ndarray]) -> np.ndarray:
    """Kronecker product with ``ops[q]`` on qubit q (Qiskit order: qubit 0 least significant)."""
    out = np.ones((1, 1), dtype=complex)
    for q in reversed(range(n)):
        out = np.kron(out, ops.get(q, _I2))
    return out


def _permute_to_hd(rho: np.ndarray, n: int, dishonest: tuple[int, ...]) -> tuple[np.ndarray, list[int]]:
    """``ρ`` reordered so that tensor factor order is (honest qubits…, dishonest qubits…), big-endian."""
    honest = [q for q in range(n) if q not in dishonest]
    order = honest + list(dishonest)
    t = rho.reshape((2,) * (2 * n))
    axes = [n - 1 - q for q in order]  # tensor axis of qubit q is n − 1 − q
    t = np.transpose(t, axes + [n + a for a in axes])
    return t.reshape(2**n, 2**n), honest


def _challenge_terms(
    rho: np.ndarray, n: int, dishonest: tuple[int, ...], memory: tuple[int, ...] = ()
) -> list[tuple[tuple[int, ...], tuple[int, ...], np.ndarray]]:
    """(θ over the parties, θ_D, ``(−1)^{|θ|/2} Tr_H[ρ (M_{θ_H} ⊗ I)]``) for every even challenge.

    ``ρ`` is on ``n`` qubits; ``memory`` qubits belong to the coalition but are not parties (no
    challenge); the coalition's system is ``dishonest`` then ``memory`` (big-endian in that order).
    """
    parties = [q for q in range(n) if q not in memory]
    coal = tuple(dishonest) + tuple(memory)
    k = len(coal)
    r, honest = _permute_to_hd(np.asarray(rho, dtype=complex), n, coal)
    dh = 2 ** len(honest)
    r4 = r.reshape(dh, 2**k, dh, 2**k)
    out = []
    for bits in itertools.product((0, 1), repeat=len(parties)):
        if sum(bits) % 2:
            continue
        theta = dict(zip(parties, bits, strict=True))
        m = np.ones((1, 1), dtype=complex)
        for q in honest:
            m = np.kron(m, _single(theta[q]))
        sign = (-1) ** (sum(bits) // 2)
        o = sign * np.einsum("ab,biaj->ij", m, r4)  # (Tr_H[(M ⊗ I) ρ])_ij = Σ M_ab ρ_(b i),(a j)
        out.append((bits, tuple(theta[q] for q in dishonest), (o + o.conj().T) / 2))
    return out


def coalition_operators(
    rho: np.ndarray, n: int, dishonest: tuple[int, ...], memory: tuple[int, ...] = ()
) -> dict[tuple[int, ...], np.ndarray]:
    """``O_{θ_D} = E_{θ_H} (−1)^{|θ|/2} Tr_H[ρ (M_{θ_H} ⊗ I_D)]`` for every ``θ_D`` (brute force over all
    even challenges, no reduction used); the best coalition answer is ``sign(O)``, worth ``‖O‖₁``.
    ``memory``: coalition qubits that are not parties (see :func:`_challenge_terms`)."""
    ops: dict[tuple[int, ...], np.ndarray] = {}
    cnt: dict[tuple[int, ...], int] = {}
    for _, key, o in _challenge_terms(rho, n, dishonest, memory):
        ops[key] = ops.get(key, 0) + o
        cnt[key] = cnt.get(key, 0) + 1
    return {key: o / cnt[key] for key, o in ops.items()}


def challenge_pass_probabilities(
    rho: np.ndarray, n: int, dishonest: tuple[int, ...], strategy: dict[tuple[int, ...], np.ndarray],
    memory: tuple[int, ...] = (),
) -> dict[tuple[int, ...], float]:  # fmt: skip
    """Pass probability for every even challenge (θ over the parties) under ``strategy``."""
    return {
        bits: float(np.clip(0.5 + 0.5 * np.real(np.trace(o @ strategy[key])), 0.0, 1.0))
        for bits, key, o in _challenge_terms(rho, n, dishonest, memory)
    }


def pass_probability(
    rho: np.ndarray, n: int, dishonest: tuple[int, ...], strategy: dict[tuple[int, ...], np.ndarray]
) -> float:
    """Pass probability when the coalition answers ``θ_D`` with the ±1 observable ``strategy[θ_D]``."""
    ops = coalition_operators(rho, n, dishonest)
    return float(0.5 + 0.5 * np.mean([np.real(np.trace(o @ strategy[key])) for key, o in ops.items()]))


def optimal_strategy(
    rho: np.ndarray, n: int, dishonest: tuple[int, ...], memory: tuple[int, ...] = ()
) -> tuple[float, dict[tuple[int, ...], np.ndarray]]:
    """(best pass probability, best observables) of a coalition holding exactly its qubits of ``ρ``
    (and ``memory``): ``½ + ½ E_{θ_D} ‖O_{θ_D}‖₁`` with ``B = sign(O_{θ_D})``."""
    if not dishonest:
        raise ParameterError("coalition", 0, f"[1, {n - 1}]")
    ops = coalition_operators(rho, n, dishonest, memory)
    strat: dict[tuple[int, ...], np.ndarray] = {}
    vals = []
    for key, o in ops.items():
        w, v = np.linalg.eigh(o)
        strat[key] = (v * np.where(w >= 0, 1.0, -1.0)) @ v.conj().T
        vals.append(np.abs(w).sum())
    return float(0.5 + 0.5 * np.mean(vals)), strat


def honest_strategy(n: int, dishonest: tuple[int, ...]) -> dict[tuple[int, ...], np.ndarray]:
    """The observables of parties who measure as told: the product of their X/Y's times the sign share."""
    out = {}
    for key in itertools.product((0, 1), repeat=len(dishonest)):
        m = np.ones((1, 1), dtype=complex)
        for t in key:
            m = np.kron(m, _single(t))
        out[key] = m
    return out


def fidelity_up_to_coalition(rho: np.ndarray, n: int, dishonest: tuple[int, ...], solver: str = "CLARABEL") -> float:
    """``max_Λ ⟨GHZ|(id_H ⊗ Λ)(ρ)|GHZ⟩`` over CPTP ``Λ`` on the coalition's qubits (an SDP, KRS 2009).

    GHZ is ``(I ⊗ V)|Φ⟩`` with ``|Φ⟩`` maximally entangled between the honest logical qubit and one
    coalition qubit and ``V`` an isometry on the coalition, so ``F`` is the KRS fidelity of the block
    ``Π_L ρ Π_L`` (logical qubit ⊗ coalition qubits).
    """
    k = len(dishonest)
    r, honest = _permute_to_hd(np.asarray(rho, dtype=complex), n, dishonest)
    dh = 2 ** len(honest)
    r4 = r.reshape(dh, 2**k, dh, 2**k)[np.ix_([0, dh - 1], range(2**k), [0, dh - 1], range(2**k))]
    return two_qubit_fidelity(r4.reshape(2 * 2**k, 2 * 2**k), solver)


def logical_to_n_qubit(rho2: np.ndarray, n: int, dishonest: tuple[int, ...]) -> np.ndarray:
    """Embed a (logical honest qubit ⊗ one coalition qubit) state into n qubits: the logical qubit as
    ``|0…0⟩_H, |1…1⟩_H``, the coalition qubit on the first dishonest qubit, the others in |0⟩."""
    dim = 2**n
    honest = [q for q in range(n) if q not in dishonest]
    hmask = sum(1 << q for q in honest)
    idx = [[0, 1 << dishonest[0]], [hmask, hmask | (1 << dishonest[0])]]  # [logical][coalition] -> index
    out = np.zeros((dim, dim), dtype=complex)
    for a, d in itertools.product(range(2), repeat=2):
        for a2, d2 in itertools.product(range(2), repeat=2):
            out[idx[a][d], idx[a2][d2]] = rho2[2 * a + d, 2 * a2 + d2]
    return out


def flagged_ghz_state(n: int, dishonest: tuple[int, ...]) -> np.ndarray:
    """``½(GHZ₊ ⊗ |0⟩⟨0| + GHZ₋ ⊗ |1⟩⟨1|)`` with GHZ on all qubits but the last dishonest one (the flag).

    Passes with probability 1 (the coalition reads the flag and flips its answer), fidelity 1 up to a
    coalition *operation*, but at most ½ up to a coalition unitary (the state has rank 2).
    """
    if len(dishonest) < 2:
        raise ParameterError("coalition", len(dishonest), f"[2, {n - 1}] (the flag needs a second dishonest qubit)")
    flag = dishonest[-1]
    rest = [q for q in range(n) if q != flag]
    mask = sum(1 << q for q in rest)
    out = np.zeros((2**n, 2**n), dtype=complex)
    for f, s in ((0, 1), (1, -1)):
        v = np.zeros(2**n, dtype=complex)
        v[f << flag] = 1 / SQRT2
        v[mask | (f << flag)] = s / SQRT2
        out += 0.5 * np.outer(v, v.conj())
    return out


def _perm_matrix(n: int, order: list[int]) -> np.ndarray:
    """Permutation taking a Qiskit-ordered vector to big-endian order over ``order`` (first = most significant)."""
    dim = 2**n
    perm = np.zeros((dim, dim))
    for x in range(dim):
        y = int("".join(str((x >> q) & 1) for q in order), 2)
        perm[y, x] = 1.0
    return perm


def pass_operator(n: int, dishonest: tuple[int, ...], strategy: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
    """``W`` (Qiskit order) with ``P = ½ + ½ Tr(ρ W)`` when the coalition answers ``θ_D`` with
    ``strategy[θ_D]`` (an observable on its qubits, in the order of ``dishonest``)."""
    honest = [q for q in range(n) if q not in dishonest]
    perm = _perm_matrix(n, honest + list(dishonest))
    dim = 2**n
    w = np.zeros((dim, dim), dtype=complex)
    thetas = [t for t in itertools.product((0, 1), repeat=n) if sum(t) % 2 == 0]
    for theta in thetas:
        m = np.ones((1, 1), dtype=complex)
        for q in honest:
            m = np.kron(m, _single(theta[q]))
        b = strategy[tuple(theta[q] for q in dishonest)]
        w += (-1) ** (sum(theta) // 2) * np.kron(m, b)
    return perm.T @ (w / len(thetas)) @ perm


def seesaw(
    n: int, dishonest: tuple[int, ...], weight: float, iterations: int = 20, seed: int = 0, solver: str = "CLARABEL",
) -> tuple[float, float]:  # fmt: skip
    """See-saw in the full n-qubit model: minimise ``F(ρ) − weight · P(ρ, B)`` alternating the coalition's
    best observables ``B`` for ``ρ`` (exact) and the best ``ρ`` for ``B`` (an SDP over n-qubit ``ρ``
    jointly with the KRS variable). Returns the final (pass probability, F) — an attained point."""
    import cvxpy as cp

    rng = np.random.default_rng(seed)
    dim = 2**n
    g = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    rho = g @ g.conj().T
    rho /= np.trace(rho).real
    k = len(dishonest)
    honest = [q for q in range(n) if q not in dishonest]
    dh = 2 ** len(honest)
    sel = np.zeros((2 * 2**k, dim))
    for a, hidx in enumerate((0, dh - 1)):
        for d in range(2**k):
            sel[a * 2**k + d, hidx * 2**k + d] = 1.0
    proj = sel @ _perm_matrix(n, honest + list(dishonest))
    for _ in range(iterations):
        _, strat = optimal_strategy(rho, n, dishonest)
        w = pass_operator(n, dishonest, strat)
        r = cp.Variable((dim, dim), hermitian=True)
        s = cp.Variable((2**k, 2**k), hermitian=True)
        cons = [r >> 0, cp.real(cp.trace(r)) == 1, cp.kron(_I2, s) - proj @ r @ proj.T >> 0]
        obj = 0.5 * cp.real(cp.trace(s)) - weight * (0.5 + 0.5 * cp.real(cp.trace(w @ r)))
        _solve(cp.Problem(cp.Minimize(obj), cons), solver, accept=("optimal", "optimal_inaccurate"))
        rho = np.asarray(r.value)
        rho = (rho + rho.conj().T) / 2
        ev, vec = np.linalg.eigh(rho)
        rho = (vec * np.maximum(ev, 0)) @ vec.conj().T
        rho /= np.trace(rho).real
    p, _ = optimal_strategy(rho, n, dishonest)
    return p, fidelity_up_to_coalition(rho, n, dishonest, solver)  # certified lower bound on F


def _main(argv: list[str]) -> None:  # pragma: no cover - the derivation, run by hand
    """``python -m qverify.verify.dishonest [--seesaw]``: the certificate, and optionally the see-saw
    cross-check for n = 3, 4, 5 and every coalition size."""
    cert = certify()
    print(
        f"cells {len(cert.cells)}  worst certified value {cert.worst:.3e}  margin {cert.margin:g}  proven {cert.proven}"
    )
    print(f"P* = {P_STAR:.6f}; pass rate certifying F >= 0.9: {certifying_pass_rate(0.9):.6f}")
    if "--seesaw" in argv:
        for n in (3, 4, 5):
            for k in range(1, n):
                dis = tuple(range(n - k, n))
                for w in (1.5, 3.0, 4.0):
                    p, f = seesaw(n, dis, w, iterations=4, seed=n + k)
                    b = dishonest_fidelity_bound(p, n, k)
                    print(f"n={n} k={k} weight={w}: P={p:.4f} F={f:.4f} bound={b:.4f} ok={b <= f + 1e-7}")


if __name__ == "__main__":  # pragma: no cover
    import sys

    _main(sys.argv[1:])
