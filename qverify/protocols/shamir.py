"""Shamir secret sharing over GF(2^61 − 1) and hash commitments (classical building blocks).

>>> import numpy as np
>>> shares = split(123456789, n=5, t=3, rng=np.random.default_rng(0))
>>> combine(shares[:3]) == combine(shares[2:]) == 123456789
True
"""

from __future__ import annotations

import hashlib
import secrets as _secrets

import numpy as np

from qverify.errors import ParameterError

PRIME = 2**61 - 1
"""Field modulus (a Mersenne prime); secrets are integers in [0, PRIME)."""


def split(secret: int, n: int, t: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` shares ``(x, y)`` of ``secret``; any ``t`` reconstruct it, ``t − 1`` reveal nothing."""
    if not 1 <= t <= n:
        raise ParameterError("t", t, f"[1, n = {n}]")
    if not 0 <= secret < PRIME:
        raise ParameterError("secret", secret, f"[0, {PRIME})")
    coeffs = [secret] + [int(rng.integers(0, PRIME)) for _ in range(t - 1)]
    return [(x, sum(c * pow(x, k, PRIME) for k, c in enumerate(coeffs)) % PRIME) for x in range(1, n + 1)]


def combine(shares: list[tuple[int, int]]) -> int:
    """Lagrange interpolation at 0 of the given shares."""
    total = 0
    for i, (xi, yi) in enumerate(shares):
        num, den = 1, 1
        for j, (xj, _yj) in enumerate(shares):
            if i != j:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, PRIME - 2, PRIME)) % PRIME
    return total


def commit(value: bytes, nonce: bytes | None = None) -> tuple[bytes, bytes]:
    """SHA-256 commitment ``(digest, nonce)`` to ``value`` (hiding with a 32-byte random nonce)."""
    nonce = nonce if nonce is not None else _secrets.token_bytes(32)
    return hashlib.sha256(nonce + value).digest(), nonce


def opens(digest: bytes, value: bytes, nonce: bytes) -> bool:
    """Whether ``(value, nonce)`` opens the commitment ``digest``."""
    return hashlib.sha256(nonce + value).digest() == digest
