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


def split(secret: int, n: int, t: int, rng: np.random.Generator, prime: int = PRIME) -> list[tuple[int, int]]:
    """``n`` shares ``(x, y)`` of ``secret`` over GF(``prime``); any ``t`` reconstruct it, ``t − 1``
    reveal nothing."""
    return shares_of(polynomial(secret, t, rng, prime), n, prime)


def polynomial(secret: int, t: int, rng: np.random.Generator, prime: int = PRIME) -> list[int]:
    """Coefficients ``[secret, a_1, …, a_{t−1}]`` of a uniformly random degree-(t − 1) sharing polynomial."""
    if t < 1:
        raise ParameterError("t", t, "[1, n]")
    if not 0 <= secret < prime:
        raise ParameterError("secret", secret, f"[0, {prime})")
    if prime < 2**63:
        return [secret] + [int(rng.integers(0, prime)) for _ in range(t - 1)]
    # Larger fields (verifiable sharing in a 256-bit group): 63-bit words, 64 more bits than the
    # prime, reduced mod prime (bias below 2^-63).
    words = (prime.bit_length() + 64) // 63 + 1
    coeffs = [secret]
    for _ in range(t - 1):
        x = 0
        for w in rng.integers(0, 2**63, size=words, dtype=np.int64).tolist():
            x = (x << 63) | int(w)
        coeffs.append(x % prime)
    return coeffs


def shares_of(coeffs: list[int], n: int, prime: int = PRIME) -> list[tuple[int, int]]:
    """The shares ``(x, f(x))``, x = 1 … n, of the polynomial with coefficients ``coeffs``."""
    if not len(coeffs) <= n:
        raise ParameterError("t", len(coeffs), f"[1, n = {n}]")
    return [(x, sum(c * pow(x, k, prime) for k, c in enumerate(coeffs)) % prime) for x in range(1, n + 1)]


def combine(shares: list[tuple[int, int]], prime: int = PRIME) -> int:
    """Lagrange interpolation at 0 of the given shares over GF(``prime``)."""
    total = 0
    for i, (xi, yi) in enumerate(shares):
        num, den = 1, 1
        for j, (xj, _yj) in enumerate(shares):
            if i != j:
                num = num * (-xj) % prime
                den = den * (xi - xj) % prime
        total = (total + yi * num * pow(den, prime - 2, prime)) % prime
    return total


def commit(value: bytes, nonce: bytes | None = None) -> tuple[bytes, bytes]:
    """SHA-256 commitment ``(digest, nonce)`` to ``value`` (hiding with a 32-byte random nonce)."""
    nonce = nonce if nonce is not None else _secrets.token_bytes(32)
    return hashlib.sha256(nonce + value).digest(), nonce


def opens(digest: bytes, value: bytes, nonce: bytes) -> bool:
    """Whether ``(value, nonce)`` opens the commitment ``digest``."""
    return hashlib.sha256(nonce + value).digest() == digest
