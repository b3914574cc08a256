"""Threshold quantum digital signatures: BB84-state QDS with a t-of-n signing rule, measured.

Scheme (Amiri, Wallden, Kent, Andersson, PRA 93, 032325, 2016: QDS over *insecure* quantum
channels), for one message bit:

1. *Distribution.* The signer's private key is two random BB84 strings (basis, bit) of length
   ``length``, one per recipient (Bob, Charlie). Each recipient measures every position in a random
   basis. *Parameter estimation*: the signer reveals a random ``test_fraction`` of each string; a
   recipient whose error rate on those (positions measured in the right basis) exceeds ``e_abort``
   aborts the distribution. The tested positions are discarded. *Symmetrisation*: Bob and Charlie
   swap the records of a random half of their remaining positions.
2. *Threshold layer.* The private key is encrypted (AES-256-GCM) under a 256-bit key K, and K is
   shared among ``n`` holders with Feldman verifiable secret sharing (:mod:`qverify.protocols.vss`):
   the combiner checks every share against the dealer's public commitments, so a corrupted share is
   rejected rather than silently combined into a wrong key. ``t`` valid shares rebuild K and the
   signature (the key) is published; t − 1 shares carry no information on K (Shamir), so t − 1
   holders can only guess the key. Secrecy against the public commitments and the ciphertext is
   computational (discrete logarithm in a 256-bit subgroup; AES).
3. *Verification.* A recipient checks, separately for the positions he kept and those he received,
   the fraction of mismatches on positions measured in the declared basis; he accepts when both are
   below ``s_a`` (authentication), and a forwarded signature when both are below ``s_v > s_a``.

Every position's outcome probabilities come from the Aer circuits of
:mod:`qverify.protocols.signatures` (exact), then are sampled. Measured with Clopper–Pearson
intervals over ``trials`` runs each:

* honest acceptance (distribution not aborted and Bob accepts);
* forgery by guessing: Bob, knowing his own string, fabricates Charlie's;
* forgery by **intercept-resend** on the insecure channel: Bob intercepts a fraction r of
  Charlie's states, measures each in a random basis and resends what he found, then declares his
  results for the intercepted positions and guesses the rest; every r of
  :data:`INTERCEPT_FRACTIONS` is run and the attacker's best is reported (the distribution test
  sees r/4 extra errors, the forged declaration misses about (1 − r)/2 of Charlie's checks);
* repudiation: the signer corrupts a fraction of Charlie's states so that Bob accepts while Charlie
  rejects a forward;
* signing by t holders, by t − 1 holders, and by t + 1 holders one of whom submits a corrupted
  share (it must be detected, and the signature still made from the t valid ones).

**Length from bounds.** :func:`run_qds` chooses the number of positions for a target ``epsilon``
(default :data:`DEFAULT_EPSILON` = 1e-4) from Hoeffding bounds of the Wallden et al. family
(PRA 91, 042304, 2015; the form used in the Quantum Protocol Zoo's parameter estimator,
``QuantumDigitalSignatures/Estimate_Parameters/run.py``; Amiri et al.'s own equations could not be
read, see ``refs/verification.md``), in terms of the paper's signature length ``L``:

    P(honest abort at the signature check) ≤ 2 exp(−(s_a − p_h)² L),
    P(repudiation) ≤ 2 exp(−(s_v − s_a)² L),   P(forgery) ≤ exp(−(C_min − s_v)² L).

Each is Hoeffding's ``exp(−2 m δ²)`` over a half of ``m = L/2`` tested positions. In qverify a
recipient's half holds the matched-basis positions of half of the untested positions of a string,
``m = length (1 − test_fraction) / 4``, so ``L = length (1 − test_fraction) / 2`` and
``length = 2L / (1 − test_fraction)`` (:func:`length_for`). Rates are per matched-basis position:
the honest rate ``p_h = p_depol / 2`` (a depolarising channel flips a BB84 state with probability
p/2), and ``C_min = (e_abort + ½)/2`` — the Zoo's analytic model ``C_min = T²(QBER + ½)/4 +
T(1 − T)/4`` at ``T = 1`` with the largest error the parameter estimation lets through
(``QBER = e_abort``), doubled from its all-positions to matched-positions normalisation. For the
intercept-resend forger of this module the true minimum is higher (``½ − e_abort``), so this
``C_min`` is conservative there; for general coherent attacks it is the Zoo's model, not a proof.
The measured probabilities bound nothing below about 1/trials; the bounds are reported beside them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from qverify.backends import exact_distributions
from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.protocols.noise import depolarising_channel
from qverify.protocols.signatures import all_position_circuits
from qverify.protocols.vss import ShareRejected, deal, group, rebuild
from qverify.verify.stats import Estimate

DEFAULT_EPSILON = 1e-4
"""Target failure probability for honest abort, repudiation and forgery when ``run_qds`` picks the length."""

INTERCEPT_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)
"""Fractions of Charlie's states the intercept-resend forger attacks; the best one is reported."""

Key = dict[str, tuple[np.ndarray, np.ndarray]]  # recipient -> (bases, bits)


@cache
def outcome_table(p_depol: float) -> np.ndarray:
    """P(outcome = 1) indexed [state_basis, bit, measure_basis] (0 = Z, 1 = X), exact from Aer."""
    probs = exact_distributions(all_position_circuits(), depolarising_channel(p_depol))
    return probs[:, 1].reshape(2, 2, 2)


def _measure(
    rng: np.random.Generator, bases: np.ndarray, bits: np.ndarray, p_depol: float
) -> tuple[np.ndarray, np.ndarray]:
    table = outcome_table(p_depol)
    meas = rng.integers(0, 2, size=bases.shape)
    out = (rng.random(bases.shape) < table[bases, bits, meas]).astype(np.int64)
    return meas, out


@dataclass(frozen=True)
class QDSBounds:
    """Hoeffding bounds (module docstring) at a given length; ``paper_length`` is the paper's ``L``.

    Attributes:
        honest_abort, repudiation, forgery: the three failure bounds (probabilities, ≤ 1).
        paper_length: ``L = length (1 − test_fraction) / 2``.
        p_h, c_min: honest and forger mismatch rates (per matched-basis position) used.
    """

    honest_abort: float
    repudiation: float
    forgery: float
    paper_length: float
    p_h: float
    c_min: float


def _rates(p_depol: float, e_abort: float) -> tuple[float, float]:
    return p_depol / 2, (e_abort + 0.5) / 2


def bounds_at(length: int, s_a: float, s_v: float, p_depol: float, e_abort: float, test_fraction: float) -> QDSBounds:
    """The three bounds at ``length`` positions (module docstring; refs: Zoo run.py, Wallden et al. 2015).

    >>> b = bounds_at(5053, 0.08, 0.16, 0.02, 0.08, 0.2)
    >>> b.paper_length, round(b.honest_abort, 6) <= 1e-4
    (2021.2, True)
    """
    p_h, c_min = _rates(p_depol, e_abort)
    big_l = length * (1 - test_fraction) / 2
    h = min(1.0, 2 * np.exp(-((s_a - p_h) ** 2) * big_l)) if s_a > p_h else 1.0
    r = min(1.0, 2 * np.exp(-((s_v - s_a) ** 2) * big_l))
    f = min(1.0, float(np.exp(-((c_min - s_v) ** 2) * big_l))) if c_min > s_v else 1.0
    return QDSBounds(float(h), float(r), float(f), float(big_l), p_h, c_min)


def length_for(epsilon: float, s_a: float, s_v: float, p_depol: float, e_abort: float, test_fraction: float) -> int:
    """Smallest number of positions whose three bounds are all ≤ ``epsilon``:
    ``L = max(ln(2/ε)/(s_a − p_h)², ln(2/ε)/(s_v − s_a)², ln(1/ε)/(C_min − s_v)²)``, ``length = ⌈2L/(1 − f)⌉``.

    >>> length_for(1e-4, 0.08, 0.16, 0.02, 0.08, 0.2), length_for(1e-10, 0.08, 0.16, 0.02, 0.08, 0.2)
    (5053, 12102)
    """
    check_range("epsilon", epsilon, 0.0, 1.0, low_open=True, high_open=True)
    p_h, c_min = _rates(p_depol, e_abort)
    if not p_h < s_a:
        raise ParameterError("s_a", s_a, f"(p_h = p_depol/2 = {p_h:g}, s_v): no length makes honest signatures pass")
    if not s_v < c_min:
        raise ParameterError("s_v", s_v, f"(s_a, C_min = (e_abort + 1/2)/2 = {c_min:g}): no length stops forgery")
    big_l = max(np.log(2 / epsilon) / (s_a - p_h) ** 2, np.log(2 / epsilon) / (s_v - s_a) ** 2,
                np.log(1 / epsilon) / (c_min - s_v) ** 2)  # fmt: skip
    length = int(np.ceil(2 * big_l / (1 - test_fraction)))
    while bounds_at(length, s_a, s_v, p_depol, e_abort, test_fraction).honest_abort > epsilon:  # rounding guard
        length += 1
    return length


@dataclass
class _Run:
    key: Key
    records: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]  # (origin, idx, basis, outcome)
    aborted: bool  # a recipient's parameter estimation exceeded e_abort
    stolen: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # interceptor: (hit, basis, outcome) on Charlie's


@dataclass(frozen=True)
class _Protocol:
    length: int
    p_depol: float
    test_fraction: float
    e_abort: float


def _distribute(rng: np.random.Generator, pr: _Protocol, corrupt_charlie: float = 0.0, intercept: float = 0.0) -> _Run:
    length = pr.length
    key = {r: (rng.integers(0, 2, length), rng.integers(0, 2, length)) for r in ("bob", "charlie")}
    aborted = False
    stolen = None
    kept: dict[str, np.ndarray] = {}
    obs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for r, (bases, bits) in key.items():
        sent_bases, sent_bits = bases, bits
        if r == "charlie" and corrupt_charlie > 0:
            sent_bits = bits ^ (rng.random(length) < corrupt_charlie)  # a repudiating signer sends wrong states
        if r == "charlie" and intercept > 0:
            # Bob, on the insecure channel next to the signer, measures a fraction of Charlie's
            # states in random bases and resends the state he found.
            hit = rng.random(length) < intercept
            eve_basis, eve_out = _measure(rng, sent_bases, sent_bits, 0.0)
            sent_bases, sent_bits = np.where(hit, eve_basis, sent_bases), np.where(hit, eve_out, sent_bits)
            stolen = (hit, eve_basis, eve_out)
        meas, out = _measure(rng, sent_bases, sent_bits, pr.p_depol)
        test = rng.random(length) < pr.test_fraction
        checked = test & (meas == bases)
        err = float((out[checked] != bits[checked]).mean()) if checked.any() else 0.0
        aborted |= err > pr.e_abort
        kept[r] = np.flatnonzero(~test)
        obs[r] = (meas, out)
    records: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {"bob": [], "charlie": []}
    for r, other in (("bob", "charlie"), ("charlie", "bob")):
        idx = rng.permutation(kept[r])
        keep, give = idx[: idx.size // 2], idx[idx.size // 2 :]
        meas, out = obs[r]
        records[r].append((r, keep, meas[keep], out[keep]))
        records[other].append((r, give, meas[give], out[give]))
    return _Run(key, records, aborted, stolen)


def _mismatch(run: _Run, recipient: str, signature: Key) -> list[float]:
    rates = []
    for origin, idx, meas, out in run.records[recipient]:
        bases, bits = signature[origin]
        match = meas == bases[idx]
        n = int(match.sum())
        rates.append(float((out[match] != bits[idx][match]).sum() / n) if n else 1.0)
    return rates


def _accepts(run: _Run, recipient: str, signature: Key, threshold: float) -> bool:
    return not run.aborted and all(m < threshold for m in _mismatch(run, recipient, signature))


def _guess(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 2, length), rng.integers(0, 2, length)


def _intercept_forgery(rng: np.random.Generator, pr: _Protocol, r: float, s_v: float) -> bool:
    """One intercept-resend forgery attempt at fraction ``r``: does Charlie accept Bob's forward?"""
    run = _distribute(rng, pr, intercept=r)
    assert run.stolen is not None
    hit, eve_basis, eve_out = run.stolen
    g_bases, g_bits = _guess(rng, pr.length)
    forged = {"bob": run.key["bob"], "charlie": (np.where(hit, eve_basis, g_bases), np.where(hit, eve_out, g_bits))}
    return _accepts(run, "charlie", forged, s_v)


def _encode(key: Key) -> bytes:
    flat = np.concatenate([key["bob"][0], key["bob"][1], key["charlie"][0], key["charlie"][1]]).astype(np.uint8)
    return np.packbits(flat).tobytes()


def _decode(blob: bytes, length: int) -> Key:
    flat = np.unpackbits(np.frombuffer(blob, dtype=np.uint8))[: 4 * length].astype(np.int64)
    return {"bob": (flat[:length], flat[length : 2 * length]),
            "charlie": (flat[2 * length : 3 * length], flat[3 * length :])}  # fmt: skip


def _threshold_sign(
    rng: np.random.Generator, run: _Run, n: int, t: int, length: int
) -> tuple[Key | None, Key | None, bool]:
    """The threshold layer for one key: (signature from t valid shares, signature from t + 1 shares
    one of which is corrupted — or t when t = n, None if refused —, whether the corrupted share was
    detected)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    grp = group()
    k = int.from_bytes(os.urandom(32), "big") % grp.q
    nonce = os.urandom(12)
    box = AESGCM(k.to_bytes(32, "big")).encrypt(nonce, _encode(run.key), None)
    shares, commitments = deal(k, n, t, rng, grp)

    def sign(submitted: list[tuple[int, int]]) -> tuple[Key, tuple[int, ...]]:
        secret, rejected = rebuild(submitted, commitments, t, grp)
        return _decode(AESGCM(secret.to_bytes(32, "big")).decrypt(nonce, box, None), length), rejected

    honest, _ = sign(shares[:t])
    submitted = list(shares[: min(t + 1, n)])
    bad = int(rng.integers(len(submitted)))
    x, y = submitted[bad]
    submitted[bad] = (x, (y + 1 + int(rng.integers(0, 2**62))) % grp.q)  # any other value
    try:
        with_bad, rejected = sign(submitted)
    except ShareRejected:
        return honest, None, True
    return honest, with_bad, rejected == (x,)


@dataclass(frozen=True)
class QDSResult:
    """Measured probabilities (each an :class:`Estimate` over ``trials`` protocol runs).

    ``intercept_forgery_success`` is the attacker's best over :data:`INTERCEPT_FRACTIONS`;
    ``intercept_forgery_by_fraction`` lists every fraction's estimate. ``bounds`` are the bounds at
    the length used (for ``epsilon``, the target it was chosen for). Repudiation is split:
    ``repudiation_success`` (the signer wins: distribution not aborted, Bob accepts, Charlie rejects),
    ``repudiation_parameter_estimation_abort`` (the same runs aborted by parameter estimation) and
    ``repudiation_past_parameter_estimation`` (Bob accepts and Charlie rejects when parameter
    estimation is ignored: what symmetrisation alone stops, compared with ``bounds.repudiation``).
    ``honest_parameter_estimation_abort``: honest distributions aborted by parameter estimation.
    """

    honest_acceptance: Estimate
    forgery_success: Estimate
    intercept_forgery_success: Estimate
    repudiation_success: Estimate
    threshold_t_accepts: Estimate
    threshold_t_minus_1_accepts: Estimate
    corrupted_share_detected: Estimate
    threshold_with_corrupted_share_accepts: Estimate
    intercept_forgery_by_fraction: tuple[tuple[float, Estimate], ...]
    params: dict[str, Any]
    bounds: QDSBounds | None = None
    epsilon: float | None = None
    honest_parameter_estimation_abort: Estimate | None = None
    repudiation_parameter_estimation_abort: Estimate | None = None
    repudiation_past_parameter_estimation: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_qds(
    holders: int = 5,
    t: int = 3,
    length: int | None = None,
    p_depol: float = 0.02,
    s_a: float = 0.08,
    s_v: float = 0.16,
    trials: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    test_fraction: float = 0.2,
    e_abort: float = 0.08,
    epsilon: float | None = DEFAULT_EPSILON,
) -> QDSResult:
    """Run ``trials`` independent signings of each kind and measure the probabilities.

    Args:
        holders: key holders of the threshold signer (≥ 1).
        t: signing threshold, 1 ≤ t ≤ holders.
        length: signature positions per recipient string (≥ 8), before parameter estimation;
            ``None`` (default): :func:`length_for` ``(epsilon, …)`` — 5053 at the defaults. A length
            below what ``epsilon`` needs is refused (the message says the length needed); pass
            ``epsilon=None`` to measure a deliberately short key (at 400 positions the
            intercept-resend forger wins a few per cent of runs).
        p_depol: depolarising probability of each state's channel, in [0, 1].
        s_a: authentication threshold, 0 ≤ s_a < s_v.
        s_v: verification threshold, s_a < s_v ≤ 0.5.
        trials: runs per measured probability (≥ 1).
        confidence: Clopper–Pearson confidence, in (0, 1).
        seed: seed of every classical and sampling choice.
        test_fraction: fraction of each string revealed for parameter estimation, in (0, 1).
        e_abort: error rate on the revealed positions above which the distribution aborts, in [0, 0.5].
        epsilon: target for the three bounds, in (0, 1), or ``None`` (no length check; ``length`` required).

    >>> r = run_qds(trials=30, seed=2)
    >>> r.honest_acceptance.value, r.forgery_success.value, r.intercept_forgery_success.value
    (1.0, 0.0, 0.0)
    >>> r.threshold_t_minus_1_accepts.value, r.corrupted_share_detected.value
    (0.0, 1.0)
    """
    if holders < 1:
        raise ParameterError("holders", holders, "[1, inf)")
    if not 1 <= t <= holders:
        raise ParameterError("t", t, f"[1, holders = {holders}]")
    check_range("p_depol", p_depol, 0.0, 1.0)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    check_range("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    check_range("e_abort", e_abort, 0.0, 0.5)
    if not 0 <= s_a < s_v <= 0.5:
        raise ParameterError("s_a, s_v", (s_a, s_v), "0 ≤ s_a < s_v ≤ 0.5")
    if epsilon is None and length is None:
        raise ParameterError("length", None, "[8, inf) (required when epsilon is None)")
    if epsilon is not None:
        needed = length_for(epsilon, s_a, s_v, p_depol, e_abort, test_fraction)
        if length is None:
            length = needed
        elif length < needed:
            raise ParameterError(
                "length", length, f"[{needed}, inf) for epsilon = {epsilon:g} (the bounds need {needed})"
            )
    assert length is not None
    if length < 8:
        raise ParameterError("length", length, "[8, inf)")
    if trials < 1:
        raise ParameterError("trials", trials, "[1, inf)")
    pr = _Protocol(length, p_depol, test_fraction, e_abort)
    rng = np.random.default_rng(seed)
    keys = ("honest", "forge", "repudiate", "t", "t1", "detected", "t_bad", "pe_honest", "pe_rep", "rep_past_pe")
    counts = dict.fromkeys(keys, 0)
    intercepts = dict.fromkeys(INTERCEPT_FRACTIONS, 0)
    for _ in range(trials):
        run = _distribute(rng, pr)
        counts["honest"] += _accepts(run, "bob", run.key, s_a)
        counts["pe_honest"] += run.aborted
        sig_t, sig_bad, detected = _threshold_sign(rng, run, holders, t, length)
        counts["t"] += sig_t is not None and _accepts(run, "charlie", sig_t, s_a)
        counts["t_bad"] += sig_bad is not None and _accepts(run, "charlie", sig_bad, s_a)
        counts["detected"] += detected
        # t − 1 holders: their shares are independent of K, so they can only guess the key.
        counts["t1"] += _accepts(run, "charlie", {r: _guess(rng, length) for r in ("bob", "charlie")}, s_a)
        # forgery by guessing: Bob knows his own string (generously) and fabricates Charlie's
        counts["forge"] += _accepts(run, "charlie", {"bob": run.key["bob"], "charlie": _guess(rng, length)}, s_v)
        for r in INTERCEPT_FRACTIONS:
            intercepts[r] += _intercept_forgery(rng, pr, r, s_v)
        # repudiation: the signer corrupts a fraction of Charlie's states, aiming between s_a and s_v
        bad = _distribute(rng, pr, corrupt_charlie=(s_a + s_v) / 2)
        counts["repudiate"] += _accepts(bad, "bob", bad.key, s_a) and not _accepts(bad, "charlie", bad.key, s_v)
        counts["pe_rep"] += bad.aborted
        past = _Run(bad.key, bad.records, False, bad.stolen)  # parameter estimation ignored
        counts["rep_past_pe"] += _accepts(past, "bob", bad.key, s_a) and not _accepts(past, "charlie", bad.key, s_v)

    def est(k: int) -> Estimate:
        return Estimate.binomial(k, trials, confidence, "exact")

    by_fraction = tuple((r, est(c)) for r, c in intercepts.items())
    best = max(by_fraction, key=lambda rc: rc[1].value)[1]
    params = {"holders": holders, "t": t, "length": length, "p_depol": p_depol, "s_a": s_a, "s_v": s_v,
              "trials": trials, "confidence": confidence, "seed": seed, "test_fraction": test_fraction,
              "e_abort": e_abort, "epsilon": epsilon}  # fmt: skip
    return QDSResult(
        honest_acceptance=est(counts["honest"]),
        forgery_success=est(counts["forge"]),
        intercept_forgery_success=best,
        repudiation_success=est(counts["repudiate"]),
        threshold_t_accepts=est(counts["t"]),
        threshold_t_minus_1_accepts=est(counts["t1"]),
        corrupted_share_detected=est(counts["detected"]),
        threshold_with_corrupted_share_accepts=est(counts["t_bad"]),
        intercept_forgery_by_fraction=by_fraction,
        params=params,
        bounds=bounds_at(length, s_a, s_v, p_depol, e_abort, test_fraction),
        epsilon=epsilon,
        honest_parameter_estimation_abort=est(counts["pe_honest"]),
        repudiation_parameter_estimation_abort=est(counts["pe_rep"]),
        repudiation_past_parameter_estimation=est(counts["rep_past_pe"]),
    )
