"""Threshold quantum digital signatures: BB84-state QDS with a t-of-n signing rule, measured.

Scheme (Amiri, Wallden, Kent, Andersson, PRA 93, 032325, 2016), for one message bit:

1. *Distribution.* The signer's private key is two random BB84 strings (basis, bit) of length
   ``length``, one per recipient (Bob, Charlie). It is Shamir-shared among ``n`` key holders
   (:mod:`qverify.protocols.shamir`, in 60-bit chunks); each recipient receives his string's
   states through a depolarising channel and measures every position in a random basis.
   *Symmetrisation*: Bob and Charlie swap the records of a random half of their positions.
2. *Signing.* ``t`` holders pool their shares, rebuild the key and publish it as the signature;
   fewer than ``t`` holders learn nothing of the key and can only guess it.
3. *Verification.* A recipient checks, separately for the positions he kept and those he received,
   the fraction of mismatches on positions measured in the declared basis; he accepts when both are
   below ``s_a`` (authentication), and a forwarded signature when both are below ``s_v > s_a``.

Every position's outcome probabilities come from the Aer circuits of
:mod:`qverify.protocols.signatures` (exact), then are sampled. Measured with Clopper–Pearson
intervals: honest acceptance, forgery success (a recipient fabricating the other's key half),
repudiation success (the signer corrupting one recipient's states so that Bob accepts while
Charlie rejects a forward), and signing by t and by t − 1 holders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from qverify.backends import exact_distributions
from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.protocols.noise import depolarising_channel
from qverify.protocols.shamir import combine, split
from qverify.protocols.signatures import all_position_circuits
from qverify.verify.stats import Estimate

CHUNK_BITS = 60


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


def _pack(arr: np.ndarray) -> list[int]:
    bits = "".join(map(str, arr.tolist()))
    return [int(bits[i : i + CHUNK_BITS] or "0", 2) for i in range(0, len(bits), CHUNK_BITS)]


def _unpack(chunks: list[int], length: int) -> np.ndarray:
    bits = "".join(format(c, f"0{min(CHUNK_BITS, length - i * CHUNK_BITS)}b") for i, c in enumerate(chunks))
    return np.array([int(b) for b in bits[:length]], dtype=np.int64)


@dataclass
class _Run:
    key: dict[str, tuple[np.ndarray, np.ndarray]]  # recipient -> (bases, bits)
    records: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]  # (origin, idx, basis, outcome)


def _distribute(rng: np.random.Generator, length: int, p_depol: float, corrupt_charlie: float = 0.0) -> _Run:
    key = {r: (rng.integers(0, 2, length), rng.integers(0, 2, length)) for r in ("bob", "charlie")}
    obs = {}
    for r, (bases, bits) in key.items():
        sent = bits.copy()
        if r == "charlie" and corrupt_charlie > 0:
            flip = rng.random(length) < corrupt_charlie  # a repudiating signer sends wrong states
            sent = sent ^ flip
        obs[r] = _measure(rng, bases, sent, p_depol)
    records: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {"bob": [], "charlie": []}
    for r, other in (("bob", "charlie"), ("charlie", "bob")):
        idx = rng.permutation(length)
        keep, give = idx[: length // 2], idx[length // 2 :]
        meas, out = obs[r]
        records[r].append((r, keep, meas[keep], out[keep]))
        records[other].append((r, give, meas[give], out[give]))
    return _Run(key, records)


def _mismatch(run: _Run, recipient: str, signature: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[float]:
    rates = []
    for origin, idx, meas, out in run.records[recipient]:
        bases, bits = signature[origin]
        match = meas == bases[idx]
        n = int(match.sum())
        rates.append(float((out[match] != bits[idx][match]).sum() / n) if n else 1.0)
    return rates


@dataclass(frozen=True)
class QDSResult:
    """Measured probabilities (each an :class:`Estimate` over ``trials`` protocol runs)."""

    honest_acceptance: Estimate
    forgery_success: Estimate
    repudiation_success: Estimate
    threshold_t_accepts: Estimate
    threshold_t_minus_1_accepts: Estimate
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_qds(
    n_holders: int = 5,
    t: int = 3,
    length: int = 400,
    p_depol: float = 0.02,
    s_a: float = 0.08,
    s_v: float = 0.16,
    trials: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> QDSResult:
    """Run ``trials`` independent signings of each kind and measure the probabilities.

    >>> r = run_qds(trials=40, seed=2)
    >>> r.honest_acceptance.value, r.forgery_success.value, r.threshold_t_minus_1_accepts.value
    (1.0, 0.0, 0.0)
    """
    if not 1 <= t <= n_holders:
        raise ParameterError("t", t, f"[1, n = {n_holders}]")
    check_range("p_depol", p_depol, 0.0, 1.0)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if not 0 <= s_a < s_v <= 0.5:
        raise ParameterError("s_a, s_v", (s_a, s_v), "0 ≤ s_a < s_v ≤ 0.5")
    if length < 8 or trials < 1:
        raise ParameterError("length, trials", (length, trials), "length ≥ 8, trials ≥ 1")
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(("honest", "forge", "repudiate", "t", "t1"), 0)
    for _ in range(trials):
        run = _distribute(rng, length, p_depol)
        # key holders: Shamir shares of every 60-bit chunk of the private key
        flat = np.concatenate([run.key["bob"][0], run.key["bob"][1], run.key["charlie"][0], run.key["charlie"][1]])
        shares = [split(c, n_holders, t, rng) for c in _pack(flat)]
        rebuilt = _unpack([combine(s[:t]) for s in shares], flat.size)
        sig_t = {"bob": (rebuilt[:length], rebuilt[length : 2 * length]),
                 "charlie": (rebuilt[2 * length : 3 * length], rebuilt[3 * length :])}  # fmt: skip
        honest_ok = all(m < s_a for m in _mismatch(run, "bob", run.key))
        counts["honest"] += honest_ok
        counts["t"] += all(m < s_a for m in _mismatch(run, "charlie", sig_t))
        # t − 1 holders: their shares are independent of the key, so they can only guess it.
        guess = {r: (rng.integers(0, 2, length), rng.integers(0, 2, length)) for r in ("bob", "charlie")}
        counts["t1"] += all(m < s_a for m in _mismatch(run, "charlie", guess))
        # forgery: Bob knows his own key half (he can infer it) but must fabricate Charlie's
        forged = {"bob": run.key["bob"], "charlie": (rng.integers(0, 2, length), rng.integers(0, 2, length))}
        counts["forge"] += all(m < s_v for m in _mismatch(run, "charlie", forged))
        # repudiation: the signer corrupts a fraction of Charlie's states, aiming between s_a and s_v
        bad = _distribute(rng, length, p_depol, corrupt_charlie=(s_a + s_v) / 2)
        bob_accepts = all(m < s_a for m in _mismatch(bad, "bob", bad.key))
        charlie_rejects = not all(m < s_v for m in _mismatch(bad, "charlie", bad.key))
        counts["repudiate"] += bob_accepts and charlie_rejects

    def est(k: str) -> Estimate:
        return Estimate.binomial(counts[k], trials, confidence, "exact")

    params = {"n_holders": n_holders, "t": t, "length": length, "p_depol": p_depol, "s_a": s_a, "s_v": s_v,
              "trials": trials, "confidence": confidence, "seed": seed}  # fmt: skip
    return QDSResult(est("honest"), est("forge"), est("repudiate"), est("t"), est("t1"), params)
