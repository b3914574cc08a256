"""GHZ verification with dishonest parties (Pappa et al., PRL 108, 260502, 2012).

For a challenge ``θ`` (even parity) the test passes with probability
``P(θ) = 1/2 + (−1)^{|θ|/2} ⟨M_θ⟩ / 2`` with ``M_θ = ⊗_i (X if θ_i = 0 else Y)``. Averaged over
the challenges, a state diagonal in the GHZ basis passes with ``P = 1/2 + (F_+ − F_−)/2``, where
``F_±`` are its fidelities with ``(|0…0⟩ ± |1…1⟩)/√2``; hence the honest-party fidelity bound
``F ≥ 2P − 1`` (equality when ``F_− = 0``). It assumes every party measures as told: a coalition
colluding with the source passes at ``P* ≈ 0.854`` with ``F = ½`` (where ``2P − 1 = 0.707``). The
verdict therefore uses, by default (``trust="dishonest"``), the dishonest-party bound of
:mod:`qverify.verify.dishonest` (F ≥ 0.9 needs ``P ≥ 0.9707``); both bounds are in the result, named.

Modes (:data:`METHODS`): ``exact`` — the density matrix from Aer once, the exact ``P(θ)`` for every
challenge, then the rounds drawn per challenge by binomial sampling (n ≤ 12); ``stabilizer`` — every
round sampled exactly by Stim (Clifford sources with depolarising noise, any n up to 64; the default
above 12 parties); ``sampled`` — each distinct challenge's measurement circuit run on Aer (sources
that are not Clifford).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qverify.backends import (
    MAX_EXACT_QUBITS,
    exact_density_matrix,
    is_clifford,
    sample_counts,
    sample_xy_parities,
    to_stim,
)
from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.protocols.ghz import STRATEGIES, check_parties, measured_bases, measured_y, shared_state, test_circuit
from qverify.protocols.noise import as_source, depolarising_channel
from qverify.verify.dishonest import DISHONEST_BOUND, HONEST_BOUND, check_coalition, dishonest_fidelity_bound
from qverify.verify.stats import Estimate

TRUST = ("dishonest", "honest")
"""Which bound a verdict uses: ``dishonest`` — parties other than the verifier may collude with the source
(:mod:`qverify.verify.dishonest`); ``honest`` — every party measures as told (``F ≥ 2P − 1``)."""


def honest_bound_estimate(pass_probability: Estimate) -> Estimate:
    """The honest-party bound ``2P − 1`` with the interval mapped from ``pass_probability``."""
    e = pass_probability
    return Estimate(
        value=max(0.0, 2 * e.value - 1), low=max(0.0, 2 * e.low - 1), high=max(0.0, 2 * e.high - 1),
        confidence=e.confidence, trials=e.trials, method=e.method, interval=f"{e.interval} (mapped: {HONEST_BOUND})",
        exact=None if e.exact is None else max(0.0, 2 * e.exact - 1),
    )  # fmt: skip


def dishonest_bound_estimate(pass_probability: Estimate, parties: int, coalition: int | None = None) -> Estimate:
    """The dishonest-party bound (:func:`~qverify.verify.dishonest.dishonest_fidelity_bound`) with the
    interval mapped from ``pass_probability`` (the bound is non-decreasing in P, so the lower end of
    the pass rate's interval gives the lower confidence bound on F). ``coalition=None``: any size."""
    e = pass_probability

    def f(p: float) -> float:
        p = min(1.0, max(0.0, p))
        if coalition is None:  # the smallest over coalition sizes: one dishonest party leaves |H| ≥ 2
            return float(dishonest_fidelity_bound(p, parties, 1))
        return float(dishonest_fidelity_bound(p, parties, coalition))

    return Estimate(
        value=f(e.value), low=f(e.low), high=f(e.high), confidence=e.confidence, trials=e.trials, method=e.method,
        interval=f"{e.interval} (mapped: {DISHONEST_BOUND})", exact=None if e.exact is None else f(e.exact),
    )  # fmt: skip


def even_thetas(n: int) -> np.ndarray:
    """All 2^(n−1) challenges with an even number of Y measurements, shape (2^(n−1), n)."""
    rows = [(*t, sum(t) % 2) for t in itertools.product((0, 1), repeat=n - 1)]
    return np.array(rows, dtype=np.int64)


def pauli_flip_expectation(rho: np.ndarray, bases: list[str]) -> float:
    """``Tr(ρ ⊗_i M_i)`` for M_i ∈ {X, Y}, using that the operator maps |x⟩ to c(x)|x̄⟩ (O(2^n))."""
    n = len(bases)
    dim = 2**n
    x = np.arange(dim)
    flip = x ^ (dim - 1)
    phase = np.ones(dim, dtype=complex)
    for i, b in enumerate(bases):
        if b == "Y":
            bit = (x >> i) & 1
            phase *= 1j * np.where(bit, -1.0, 1.0)
    # ⊗M |x⟩ = c(x) |x̄⟩, so Tr(ρ ⊗M) = Σ_x c(x) ρ[x̄, x].
    return float(np.real(np.sum(phase * rho[flip, x])))


@dataclass(frozen=True)
class GHZResult:
    """Outcome of :func:`verify_ghz`.

    Attributes:
        pass_probability: the test's pass rate over the rounds (with its interval; exact value in
            exact mode).
        fidelity_bound: the bound the verdict uses (named by ``bound``), interval mapped from
            ``pass_probability``.
        fidelity: exact fidelity with the GHZ state (exact mode), else ``None``.
        accepted: verdict — the lower end of ``fidelity_bound`` reaches ``threshold``.
        threshold: fidelity the verifier requires.
        bound: name of the bound in ``fidelity_bound`` (:data:`~qverify.verify.dishonest.DISHONEST_BOUND`
            or :data:`~qverify.verify.dishonest.HONEST_BOUND`).
        honest_fidelity_bound: the honest-party bound ``2P − 1`` (always present, labelled).
        dishonest_fidelity_bound: the dishonest-party bound (always present, labelled).
    """

    pass_probability: Estimate
    fidelity_bound: Estimate
    fidelity: float | None
    accepted: bool
    threshold: float
    params: dict[str, Any]
    bound: str = DISHONEST_BOUND
    honest_fidelity_bound: Estimate | None = None
    dishonest_fidelity_bound: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


METHODS = ("auto", "exact", "stabilizer", "sampled")
"""How :func:`verify_ghz` simulates (see the module docstring); ``auto`` picks exact up to 12 parties,
then the stabilizer method for Clifford sources, else Aer sampling."""

NOISE_MODELS = ("local", "global")
"""How ``p_depol`` acts: ``"local"``, a depolarising channel of probability p on every qubit the
source emits (honest pass rate ``1/2 + (1 − p)^n / 2``); ``"global"``, the whole n-qubit state
replaced by the maximally mixed one with probability p, ``ρ → (1 − p) ρ + p I/2^n`` (honest pass
rate ``1 − p/2``)."""


def _check_noise(noise: str, p_depol: float) -> None:
    if noise not in NOISE_MODELS:
        from qverify.errors import ChoiceError

        raise ChoiceError("noise", noise, NOISE_MODELS)
    check_range("p_depol", p_depol, 0.0, 1.0)


def exact_pass_probabilities(
    n: int, strategy: str = "honest", dishonest: int = 0, p_depol: float = 0.0, state: Any = None,
    noise: str = "local",
) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """(challenges, P(pass | θ) per challenge, fidelity with GHZ) from the exact density matrix.

    ``state`` (a ``QuantumCircuit`` on n qubits) replaces the built-in source when given; ``noise``
    says how ``p_depol`` acts (:data:`NOISE_MODELS`).
    """
    _check_noise(noise, p_depol)
    circuit = as_source(state) if state is not None else shared_state(n, strategy, dishonest)
    rho = exact_density_matrix(circuit, depolarising_channel(p_depol if noise == "local" else 0.0))
    if noise == "global" and p_depol:
        rho = (1 - p_depol) * rho + p_depol * np.eye(rho.shape[0]) / rho.shape[0]
    thetas = even_thetas(n)
    probs = np.array(
        [
            0.5
            + 0.5
            * (-1) ** (int(t.sum()) // 2)
            * pauli_flip_expectation(rho, measured_bases(list(t), strategy, dishonest))
            for t in thetas
        ]
    )
    dim = 2**n
    fid = float(np.real(rho[0, 0] + rho[dim - 1, dim - 1] + 2 * np.real(rho[0, dim - 1])) / 2)
    return thetas, np.clip(probs, 0.0, 1.0), fid


OPTIMAL_STRATEGIES: tuple[str, ...] = ("optimal_product", "optimal_biseparable", "optimal_separable")
"""Coalitions that adapt their answers (:mod:`qverify.verify.cheaters`, n ≤ 5, exact mode, no noise):
the best state of each entanglement class with the coalition's best answers. The coalition is
``coalition`` parties (default 1) starting at ``dishonest``."""


def _check_optimal(n: int, strategy: str, state: Any, p_depol: float, method: str, coalition: int | None) -> None:
    from qverify.verify.cheaters import MAX_CHEATER_PARTIES

    if not n <= MAX_CHEATER_PARTIES:
        raise ParameterError("parties", n, f"[3, {MAX_CHEATER_PARTIES}] for strategy {strategy!r}")
    if state is not None:
        raise ParameterError("state", "a circuit", f"none for strategy {strategy!r} (the cheater chooses the state)")
    if p_depol != 0:
        raise ParameterError("p_depol", p_depol, f"0 for strategy {strategy!r}")
    if method not in ("auto", "exact"):
        raise ParameterError("method", method, f"'exact' for strategy {strategy!r}")
    if strategy == "optimal_biseparable" and (coalition or 1) > n - 2:
        raise ParameterError("coalition", coalition, f"[1, {n - 2}] for strategy {strategy!r} (two honest parties)")


def _optimal_cheater_probabilities(
    n: int, strategy: str, first: int, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(challenges, P(pass | θ), plain GHZ fidelity) of the optimal cheater ``strategy``."""
    from qverify.verify.cheaters import optimal_cheater

    dis = tuple((first + i) % n for i in range(k))
    ch = optimal_cheater(n, strategy.removeprefix("optimal_"), dis, seed=seed)
    thetas = even_thetas(n)
    ghz = np.zeros(2**n, dtype=complex)
    ghz[0] = ghz[-1] = 2**-0.5
    return thetas, ch.challenge_pass_probabilities(thetas), float(abs(np.vdot(ghz, ch.state)) ** 2)


def verify_ghz(
    n: int,
    p_depol: float = 0.0,
    strategy: str = "honest",
    dishonest: int = 0,
    rounds: int = 10_000,
    seed: int = 0,
    confidence: float = 0.99,
    threshold: float = 0.9,
    method: str = "auto",
    state: Any = None,
    noise: str = "local",
    trust: str = "dishonest",
    coalition: int | None = None,
) -> GHZResult:
    """Run ``rounds`` rounds of the GHZ test and return pass rate, fidelity bounds and verdict.

    ``trust`` (:data:`TRUST`) picks the bound the verdict uses; ``coalition`` the number of dishonest
    parties assumed (``None``: any number up to ``n − 1``). ``strategy`` is one of today's circuit
    strategies (:data:`qverify.protocols.ghz.STRATEGIES`) or an optimal cheater (:data:`OPTIMAL_STRATEGIES`).

    >>> r = verify_ghz(4, rounds=2000, seed=1)
    >>> r.pass_probability.value, r.accepted
    (1.0, True)
    """
    check_parties(n)
    _check_noise(noise, p_depol)
    if trust not in TRUST:
        from qverify.errors import ChoiceError

        raise ChoiceError("trust", trust, TRUST)
    if coalition is not None:
        check_coalition(n, coalition)
    if state is not None and state.num_qubits != n:
        from qverify.errors import CircuitError

        raise CircuitError(f"the GHZ test needs one qubit per party: circuit has {state.num_qubits}, parties = {n}")
    if state is not None:
        state = as_source(state)
    if strategy not in STRATEGIES + OPTIMAL_STRATEGIES:
        from qverify.errors import ChoiceError

        raise ChoiceError("strategy", strategy, STRATEGIES + OPTIMAL_STRATEGIES)
    optimal = strategy in OPTIMAL_STRATEGIES
    if optimal:
        _check_optimal(n, strategy, state, p_depol, method, coalition)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    check_range("threshold", threshold, 0.0, 1.0)
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    if method not in METHODS:
        from qverify.errors import ChoiceError

        raise ChoiceError("method", method, METHODS)
    source = state if state is not None else shared_state(n, "honest" if optimal else strategy, dishonest)
    if method == "auto":
        method = "exact" if n <= MAX_EXACT_QUBITS else ("stabilizer" if is_clifford(source) else "sampled")
    rng = np.random.default_rng(seed)
    # Challenges drawn uniformly among even-parity vectors: n − 1 free bits, the last fixes parity.
    free = rng.integers(0, 2, size=(rounds, n - 1))
    drawn = np.concatenate([free, free.sum(axis=1, keepdims=True) % 2], axis=1)
    codes = drawn @ (1 << np.arange(n))
    uniq, counts = np.unique(codes, return_counts=True)
    exact_p = exact_f = None
    if method == "exact":
        if optimal:
            thetas, probs, exact_f = _optimal_cheater_probabilities(n, strategy, dishonest, coalition or 1, seed)
        else:
            thetas, probs, exact_f = exact_pass_probabilities(n, strategy, dishonest, p_depol, state, noise)
        table = dict(zip((thetas @ (1 << np.arange(n))).tolist(), probs.tolist(), strict=True))
        passes = int(sum(rng.binomial(int(c), table[int(u)]) for u, c in zip(uniq, counts, strict=True)))
        exact_p = float(probs.mean())
    elif method == "stabilizer":
        parities = sample_xy_parities(
            to_stim(source, p_depol if noise == "local" else 0.0), n, measured_y(drawn, strategy, dishonest),
            int(rng.integers(2**63)),
        )  # fmt: skip
        ok = parities == (drawn.sum(axis=1) // 2) % 2
        if noise == "global":
            # Each round independently meets the maximally mixed state with probability p (passes ½).
            in_mixed = rng.random(rounds) < p_depol
            ok[in_mixed] = rng.random(int(in_mixed.sum())) < 0.5
        passes = int(ok.sum())
    else:
        passes = 0
        for u, c in zip(uniq, counts, strict=True):
            theta = [int(u) >> i & 1 for i in range(n)]
            qc = test_circuit(n, theta, strategy, dishonest, state)
            shots = int(c)
            if noise == "global":
                # Each round independently meets the maximally mixed state with probability p,
                # which passes with probability 1/2; the others run the noiseless circuit.
                mixed = int(rng.binomial(shots, p_depol))
                passes += int(rng.binomial(mixed, 0.5))
                shots -= mixed
                if shots == 0:
                    continue
            model = depolarising_channel(p_depol if noise == "local" else 0.0)
            res = sample_counts([qc], shots, rng, model, method="sampled")
            outcomes = np.arange(res.counts.shape[1])
            parity = np.array([bin(o).count("1") % 2 for o in outcomes])
            target = (sum(theta) // 2) % 2
            passes += int(res.counts[0][parity == target].sum())
    est = Estimate.binomial(passes, rounds, confidence, method, exact_p)
    honest = honest_bound_estimate(Estimate(est.value, est.low, est.high, confidence, rounds, method,
                                            "clopper-pearson", exact_p))  # fmt: skip
    dis_bound = dishonest_bound_estimate(est, n, coalition)
    bound = dis_bound if trust == "dishonest" else honest
    params = {"parties": n, "p_depol": p_depol, "noise": noise, "strategy": strategy, "dishonest": dishonest, "rounds": rounds,
              "seed": seed, "confidence": confidence, "threshold": threshold, "trust": trust, "coalition": coalition}  # fmt: skip
    return GHZResult(est, bound, exact_f, bound.low >= threshold, threshold, params,
                     DISHONEST_BOUND if trust == "dishonest" else HONEST_BOUND, honest, dis_bound)  # fmt: skip
