"""Secret-shared verification: challenges opened only after every party has committed.

The verifier draws the GHZ-test challenges ``θ`` and Shamir-shares each round's challenge vector
among the nodes (:mod:`qverify.protocols.shamir`); each party learns only its own ``θ_i``, measures,
and publishes a SHA-256 commitment to its outcome. Only then are the challenges reconstructed from
the shares and the commitments opened. A cheating party that could see the other parties'
challenges and outcomes in advance would announce last and always satisfy the parity; bound by its
commitment it cannot, and a bad state is caught at its true pass rate.

:func:`run` simulates both protocols against one adaptive cheater holding a bad state.
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


@dataclass(frozen=True)
class SecretSharedResult:
    """Pass rates (with intervals) of the same bad state without and with committed challenges."""

    uncommitted: Estimate
    committed: Estimate
    accepted_uncommitted: bool
    accepted_committed: bool
    threshold: float
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _outcomes(rng: np.random.Generator, n: int, theta: np.ndarray, p_pass: float) -> np.ndarray:
    """Honest outcomes for one round: uniform bits whose parity passes with ``p_pass``."""
    y = rng.integers(0, 2, size=n)
    target = (int(theta.sum()) // 2) % 2
    want = target if rng.random() < p_pass else 1 - target
    if y.sum() % 2 != want:
        y[0] ^= 1
    return y


def run(
    n: int = 5,
    rounds: int = 2000,
    state: str = "product_source",
    cheater: int = 0,
    threshold: float = 0.9,
    confidence: float = 0.99,
    seed: int = 0,
) -> SecretSharedResult:
    """Verify a bad ``state`` (a :data:`~qverify.protocols.ghz.STRATEGIES` source) with an adaptive
    cheater, first with public challenges and no commitment, then with the secret-shared protocol.

    >>> r = run(n=4, rounds=400, seed=1)
    >>> r.accepted_uncommitted, r.accepted_committed
    (True, False)
    """
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if not 0 <= cheater < n:
        raise ParameterError("cheater", cheater, f"[0, {n - 1}]")
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    rng = np.random.default_rng(seed)
    thetas, probs, _f = exact_pass_probabilities(n, state)
    table = dict(zip((thetas @ (1 << np.arange(n))).tolist(), probs.tolist(), strict=True))
    pass_open = pass_committed = 0
    for _ in range(rounds):
        free = rng.integers(0, 2, size=n - 1)
        theta = np.concatenate([free, [free.sum() % 2]])
        p = table[int(theta @ (1 << np.arange(n)))]
        y = _outcomes(rng, n, theta, p)
        target = (int(theta.sum()) // 2) % 2
        # Without commitment: the cheater sees θ and the others' outcomes, and announces last.
        y_open = y.copy()
        y_open[cheater] = (target - int(np.delete(y, cheater).sum())) % 2
        pass_open += int(y_open.sum() % 2 == target)
        # With the secret-shared protocol: challenge vector shared, commitments first.
        code = int(theta @ (1 << np.arange(n)))
        shares = split(code, n, (n + 1) // 2, rng)
        commitments = [commit(bytes([int(b)])) for b in y]  # the cheater commits to its honest outcome
        opened = combine(shares[: (n + 1) // 2])
        theta_open = np.array([(opened >> i) & 1 for i in range(n)])
        assert all(opens(d, bytes([int(b)]), nonce) for (d, nonce), b in zip(commitments, y, strict=True))
        pass_committed += int(y.sum() % 2 == (int(theta_open.sum()) // 2) % 2)
    e_open = Estimate.binomial(pass_open, rounds, confidence, "exact")
    e_com = Estimate.binomial(pass_committed, rounds, confidence, "exact", exact=float(probs.mean()))
    params = {"parties": n, "rounds": rounds, "state": state, "cheater": cheater, "threshold": threshold,
              "confidence": confidence, "seed": seed}  # fmt: skip
    return SecretSharedResult(e_open, e_com, e_open.low >= threshold, e_com.low >= threshold, threshold, params)
