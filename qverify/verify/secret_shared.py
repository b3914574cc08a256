"""Secret-shared GHZ verification: a challenge no small coalition can learn early, and outcomes bound by commitments.

**Broken by an entangling source** (:func:`run`'s ordering): θ becomes public after distribution but
before anyone measures, so a source that pairs every honest qubit with a qubit the coalition keeps
lets the coalition measure its halves in the honest bases, learn the honest outcomes and fix the
parity — every round passes at fidelity ``2^{1−|H|}``, commitments or not. :func:`run_private` is the
protocol that resists it: private per-party challenges delivered after distribution, outcomes
committed before any challenge or outcome is revealed, a rational coalition that opens what it
committed; there the same source passes only ``½ + 2^{−|H|}`` (0.75, 0.625 for two, three honest
parties). The old scenarios below are kept to show what each step buys against *unknowing* sources.

The protocol (one round, n parties, verifier V, a coalition of at most ``coalition`` parties that
may collude with the source):

1. V draws the GHZ-test challenge ``θ ∈ {0,1}ⁿ`` with even weight (Pappa et al., PRL 108, 260502,
   2012: party i measures X if θ_i = 0, Y if θ_i = 1; the round passes when the outcomes' parity is
   (Σθ/2) mod 2) and Shamir-shares its code among the n parties with threshold
   ``k = coalition + 1`` over GF(2⁶¹ − 1) (:mod:`qverify.protocols.shamir`): any k shares
   reconstruct θ, any k − 1 reveal nothing about it (information-theoretically).
2. The source distributes the n qubits. Only then are the shares published and θ reconstructed.
3. Each party measures and publishes a commitment ``SHA-256(outcome ‖ 32-byte nonce)`` (hiding and
   binding under the usual assumptions on SHA-256: computationally, not information-theoretically).
4. When every commitment is in, the commitments are opened and *checked*; a commitment that does not
   open makes the round fail. Then the parity is tested.

:func:`run` measures, side by side and with the same bad source, what each step buys:

* ``public``: θ is public before the state is sent (no sharing): the source prepares, qubit by
  qubit, an eigenstate of the basis each party will measure with the parity that passes — it passes
  every round;
* ``below``: the coalition pools its ``k − 1`` shares, interpolates a challenge from them (the
  best it can do) and the source prepares eigenstates for that guess — it passes only as often as
  the guess happens to be right, so the bad state is caught;
* ``at``: a coalition of ``k`` parties (one more than the threshold was chosen against) reconstructs
  θ exactly — it passes every round: the threshold, not a flag, is what protects;
* ``uncommitted``: θ opened, no commitments: a dishonest party announces last, after seeing the
  others' outcomes, and always fixes the parity;
* ``committed``: the same party must commit before any opening; when its committed bit would fail
  the parity it opens the other value instead, and the check catches it: the round fails.

Honest measurements of the unknowing source use the exact per-challenge pass probabilities of the
state's GHZ circuit (:func:`qverify.verify.ghz.exact_pass_probabilities`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.protocols.shamir import combine, commit, opens, split
from qverify.verify.ghz import exact_pass_probabilities
from qverify.verify.stats import Estimate

SCENARIOS = ("public", "below", "at", "uncommitted", "committed")


@dataclass(frozen=True)
class SecretSharedResult:
    """Pass rates (with intervals) of one bad source under each scenario of the module docstring.

    ``accepted[s]``: the verifier would accept (the interval's lower end ≥ ``threshold``).
    ``sharing_threshold``: shares needed to reconstruct a challenge (coalition + 1).
    """

    public: Estimate
    below: Estimate
    at: Estimate
    uncommitted: Estimate
    committed: Estimate
    accepted: dict[str, bool]
    threshold: float
    sharing_threshold: int
    commitment_failures: int
    params: dict[str, Any]

    @property
    def accepted_uncommitted(self) -> bool:
        return self.accepted["uncommitted"]

    @property
    def accepted_committed(self) -> bool:
        return self.accepted["committed"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _code(theta: np.ndarray) -> int:
    return int(theta @ (1 << np.arange(len(theta))))


def _decode(code: int, n: int) -> np.ndarray:
    return np.array([(code >> i) & 1 for i in range(n)])


def _target(theta: np.ndarray) -> int:
    return (int(theta.sum()) // 2) % 2


def _honest_outcomes(rng: np.random.Generator, theta: np.ndarray, p_pass: float) -> np.ndarray:
    """Outcomes of the measured bad state: uniform bits whose parity passes with ``p_pass``."""
    y = rng.integers(0, 2, size=len(theta))
    want = _target(theta) if rng.random() < p_pass else 1 - _target(theta)
    if y.sum() % 2 != want:
        y[0] ^= 1
    return y


def _prepared_for(rng: np.random.Generator, guess: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Outcomes when the source sends eigenstates of the bases of ``guess`` (parity set to pass for it).

    A qubit measured in the basis it was prepared in gives its prepared bit; in the other basis
    (X vs Y) a uniformly random bit.
    """
    bits = rng.integers(0, 2, size=len(guess))
    if bits.sum() % 2 != _target(guess):
        bits[0] ^= 1
    same = guess == theta
    return np.where(same, bits, rng.integers(0, 2, size=len(theta)))


def run(
    n: int = 5,
    rounds: int = 2000,
    state: str = "product_source",
    coalition: int = 2,
    cheater: int = 0,
    threshold: float = 0.9,
    confidence: float = 0.99,
    seed: int = 0,
) -> SecretSharedResult:
    """Verify a bad ``state`` (a :data:`~qverify.protocols.ghz.STRATEGIES` source) under every scenario.

    Args:
        n: parties (≥ 3).
        rounds: verification rounds per scenario (≥ 1).
        state: the source's bad state when it does not know the challenge.
        coalition: largest coalition the sharing threshold is chosen against, in [1, n − 1]; the
            ``at`` scenario uses one party more (needs coalition + 1 ≤ n).
        cheater: the dishonest party of the commitment scenarios, in [0, n − 1].
        threshold: acceptance threshold on the pass rate, in (0, 1].
        confidence: confidence of the Clopper–Pearson intervals.
        seed: all randomness.

    >>> r = run(n=4, rounds=400, coalition=1, seed=1)
    >>> r.accepted["public"], r.accepted["below"], r.accepted["at"], r.accepted_uncommitted, r.accepted_committed
    (True, False, True, True, False)
    """
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    check_range("threshold", threshold, 0.0, 1.0, low_open=True)
    if n < 3:
        raise ParameterError("n", n, "[3, inf) parties")
    if not 1 <= coalition <= n - 1:
        raise ParameterError("coalition", coalition, f"[1, {n - 1}] (at most n − 1 parties)")
    if not 0 <= cheater < n:
        raise ParameterError("cheater", cheater, f"[0, {n - 1}]")
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    k = coalition + 1
    rng = np.random.default_rng(seed)
    thetas, probs, _f = exact_pass_probabilities(n, state)
    table = dict(zip((thetas @ (1 << np.arange(n))).tolist(), probs.tolist(), strict=True))
    passes = dict.fromkeys(SCENARIOS, 0)
    commitment_failures = 0
    for _ in range(rounds):
        free = rng.integers(0, 2, size=n - 1)
        theta = np.concatenate([free, [free.sum() % 2]])
        target = _target(theta)
        shares = split(_code(theta), n, k, rng)
        # public: the source knows θ before sending.
        passes["public"] += int(_prepared_for(rng, theta, theta).sum() % 2 == target)
        # below / at: the coalition interpolates from the shares it holds, the source prepares for that.
        for name, held in (("below", coalition), ("at", coalition + 1)):  # coalition + 1 ≤ n
            guess = _decode(combine(shares[:held]) % (1 << n), n)
            outcome = _prepared_for(rng, guess, theta) if guess.sum() % 2 == 0 else _honest_outcomes(
                rng, theta, table[_code(theta)]
            )  # fmt: skip
            passes[name] += int(outcome.sum() % 2 == target)
        # The state the source sends without knowing θ, measured honestly by everybody.
        y = _honest_outcomes(rng, theta, table[_code(theta)])
        # uncommitted: the cheater announces last, after the others' outcomes.
        y_open = y.copy()
        y_open[cheater] = (target - int(np.delete(y, cheater).sum())) % 2
        passes["uncommitted"] += int(y_open.sum() % 2 == target)
        # committed: everyone commits first; the cheater then opens whatever value would pass.
        commitments = [commit(bytes([int(b)])) for b in y]
        claimed = y_open  # the values the parties try to open
        ok = all(opens(d, bytes([int(b)]), nonce) for (d, nonce), b in zip(commitments, claimed, strict=True))
        commitment_failures += int(not ok)
        passes["committed"] += int(ok and claimed.sum() % 2 == target)
    est = {s: Estimate.binomial(passes[s], rounds, confidence, "exact") for s in SCENARIOS}
    est["committed"] = Estimate.binomial(passes["committed"], rounds, confidence, "exact", exact=float(probs.mean()))
    accepted = {s: bool(e.low >= threshold) for s, e in est.items()}
    params = {"parties": n, "rounds": rounds, "state": state, "coalition": coalition, "cheater": cheater,
              "threshold": threshold, "confidence": confidence, "seed": seed}  # fmt: skip
    return SecretSharedResult(**est, accepted=accepted, threshold=threshold, sharing_threshold=k,
                              commitment_failures=commitment_failures, params=params)  # fmt: skip


# --------------------------------------------------------------------------- private challenges

PRIVATE_SCENARIOS = ("old_order", "private_uncommitted", "private_committed", "private_committed_liar")
"""Orderings compared by :func:`run_private` with the same source and coalition:

* ``old_order`` — :func:`run`'s ordering: θ becomes public after distribution but before anyone
  measures, so the coalition knows every basis; it answers with the best response to the whole θ;
* ``private_uncommitted`` — each party gets its own θ_i privately after distribution, but outcomes
  and challenges are announced in the open and the coalition announces last (rushing): it fixes the
  parity, every round passes;
* ``private_committed`` — private θ_i after distribution; every party commits (SHA-256) to its
  outcome before any challenge or outcome is revealed; a *rational* coalition opens what it committed,
  so its best is the optimal answer to its own θ_D (Pappa et al.'s setting,
  :func:`qverify.verify.dishonest.optimal_strategy`);
* ``private_committed_liar`` — as above, but the coalition opens the other value whenever its
  committed one fails the parity: every such opening fails the commitment check and the round fails.
"""
SOURCES = ("entangling", "product_source")
"""``entangling``: every honest party's qubit is half of a Bell pair whose other half the coalition
keeps (memory qubits), the coalition's own qubits |0⟩ — fidelity ``2^{1−|H|}`` up to coalition
operations; ``product_source``: |+⟩ⁿ."""


@dataclass(frozen=True)
class PrivateChallengeResult:
    """Side-by-side pass rates of one source and coalition under :data:`PRIVATE_SCENARIOS`.

    Attributes:
        estimates: pass rate per scenario (Clopper–Pearson; ``exact`` the exact value).
        fidelity_bounds: dishonest-party fidelity bound per scenario (interval mapped from the pass rate).
        accepted: per scenario, whether the lower end of the fidelity bound reaches ``fidelity_threshold``.
        fidelity: the source's GHZ fidelity up to operations on the coalition (certified SDP value;
            NaN when not computed).
        commitment_failures: rounds whose openings failed the check (``private_committed_liar``).
        bound: the name of the bound used.
    """

    estimates: dict[str, Estimate]
    fidelity_bounds: dict[str, Estimate]
    accepted: dict[str, bool]
    fidelity: float
    fidelity_threshold: float
    commitment_failures: int
    bound: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_state(n: int, coalition: int, source: str) -> tuple[np.ndarray, int, tuple[int, ...], tuple[int, ...]]:
    """(density matrix, total qubits, coalition's party qubits, coalition's memory qubits) of ``source``.

    Parties 0 … n − k − 1 are honest (party 0 the verifier), n − k … n − 1 the coalition; memory qubits
    follow the parties (Qiskit order, qubit 0 least significant).
    """
    from qverify.errors import ChoiceError

    if source not in SOURCES:
        raise ChoiceError("source", source, SOURCES)
    honest = n - coalition
    dishonest = tuple(range(honest, n))
    if source == "product_source":
        v = np.ones(2**n, dtype=complex) / np.sqrt(2**n)
        return np.outer(v, v.conj()), n, dishonest, ()
    total = n + honest
    memory = tuple(range(n, total))
    v = np.zeros(2**total, dtype=complex)
    for bits in range(2**honest):  # Σ_x |x⟩_H |x⟩_M / √(2^|H|)
        v[bits | (bits << n)] = 1.0
    v /= np.linalg.norm(v)
    return np.outer(v, v.conj()), total, dishonest, memory


def run_private(
    n: int = 4,
    rounds: int = 2000,
    coalition: int = 2,
    source: str = "entangling",
    fidelity_threshold: float = 0.9,
    confidence: float = 0.99,
    seed: int = 0,
    compute_fidelity: bool = True,
) -> PrivateChallengeResult:
    """Verify ``source`` with a coalition of ``coalition`` parties under every ordering of
    :data:`PRIVATE_SCENARIOS`, with real SHA-256 commitments (:func:`qverify.protocols.shamir.commit`).

    Per round the challenge θ is drawn, the round's pass probability under each scenario is the exact
    one of the quantum model (coalition's best response; :mod:`qverify.verify.dishonest`), the outcomes
    are drawn with that parity, committed, opened and checked. ``compute_fidelity=False`` skips the
    source's fidelity SDP (its size grows as 4^(coalition + memory); ``fidelity`` is then NaN).

    >>> r = run_private(n=3, rounds=300, coalition=1, seed=1)
    >>> r.accepted["old_order"], r.accepted["private_uncommitted"], r.accepted["private_committed"]
    (True, True, False)
    """
    from qverify.verify.dishonest import (
        DISHONEST_BOUND,
        _challenge_terms,
        challenge_pass_probabilities,
        check_coalition,
        fidelity_up_to_coalition,
        optimal_strategy,
    )
    from qverify.verify.ghz import dishonest_bound_estimate

    if not 3 <= n <= 5:
        raise ParameterError("n", n, "[3, 5] parties (exact model with coalition memory)")
    check_coalition(n, coalition)
    check_range("fidelity_threshold", fidelity_threshold, 0.0, 1.0)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    rho, total, dishonest, memory = source_state(n, coalition, source)
    # old order: the coalition knows the whole θ, so its best answer per θ is worth ‖o_θ‖₁.
    p_old = {bits: float(min(1.0, 0.5 + 0.5 * np.abs(np.linalg.eigvalsh(o)).sum()))
             for bits, _, o in _challenge_terms(rho, total, dishonest, memory)}  # fmt: skip
    _, strat = optimal_strategy(rho, total, dishonest, memory)
    p_private = challenge_pass_probabilities(rho, total, dishonest, strat, memory)
    rng = np.random.default_rng(seed)
    passes = dict.fromkeys(PRIVATE_SCENARIOS, 0)
    failures = 0
    coal = list(range(n - coalition, n))
    for _ in range(rounds):
        free = rng.integers(0, 2, size=n - 1)
        theta = np.concatenate([free, [free.sum() % 2]])
        key = tuple(int(t) for t in theta)
        target = _target(theta)
        passes["old_order"] += int(rng.random() < p_old[key])
        # Private challenges: the committed outcomes (honest ones measured, the coalition's chosen).
        ok_parity = rng.random() < p_private[key]
        y = rng.integers(0, 2, size=n)
        if (y.sum() % 2 == target) != ok_parity:
            y[coal[0]] ^= 1
        commitments = [commit(bytes([int(b)])) for b in y]
        # rational: opens what it committed
        opened = all(opens(d, bytes([int(b)]), nonce) for (d, nonce), b in zip(commitments, y, strict=True))
        passes["private_committed"] += int(opened and y.sum() % 2 == target)
        # liar: opens the other value when its committed one fails
        claimed = y.copy()
        if claimed.sum() % 2 != target:
            claimed[coal[0]] ^= 1
        ok = all(opens(d, bytes([int(b)]), nonce) for (d, nonce), b in zip(commitments, claimed, strict=True))
        failures += int(not ok)
        passes["private_committed_liar"] += int(ok and claimed.sum() % 2 == target)
        # uncommitted, rushing: the coalition announces after everything else is public.
        rushed = y.copy()
        rushed[coal[0]] = (target - int(np.delete(y, coal[0]).sum())) % 2
        passes["private_uncommitted"] += int(rushed.sum() % 2 == target)
    exact = {
        "old_order": float(np.mean(list(p_old.values()))),
        "private_uncommitted": 1.0,
        "private_committed": float(np.mean(list(p_private.values()))),
        "private_committed_liar": float(np.mean(list(p_private.values()))),
    }
    est = {s: Estimate.binomial(passes[s], rounds, confidence, "exact", exact[s]) for s in PRIVATE_SCENARIOS}
    fb = {s: dishonest_bound_estimate(e, n, coalition) for s, e in est.items()}
    accepted = {s: bool(fb[s].low >= fidelity_threshold) for s in PRIVATE_SCENARIOS}
    fid = fidelity_up_to_coalition(rho, total, dishonest + memory) if compute_fidelity else float("nan")
    params = {"parties": n, "rounds": rounds, "coalition": coalition, "source": source,
              "fidelity_threshold": fidelity_threshold, "confidence": confidence, "seed": seed}  # fmt: skip
    return PrivateChallengeResult(est, fb, accepted, fid, fidelity_threshold, failures, DISHONEST_BOUND, params)
