"""A commit–reveal beacon that seeds each consensus instance's committee draw.

The committee of instance e is drawn (:func:`~qverify.consensus.committee.sortition`) from a seed
``s_e`` that nobody knows before instance e − 1's decision is fixed:

1. every member i of instance e − 1's committee draws a fresh 32-byte secret ``x_i`` and puts the
   commitment ``c_i = SHA-256(encode(("beacon-commit", e, i, x_i)))`` into the batch it proposes;
   instance e − 1's committed decision fixes the set ``C`` of commitments (signed, ordered, one per
   member, by the consensus itself);
2. after that decision, each member of ``C`` reveals ``x_i``; anyone checks ``x_i`` against ``c_i``
   (:func:`beacon_seed` refuses a reveal that does not match, naming the member);
3. ``s_e = SHA-256(encode(("beacon", e, s_{e−1}, ((i, x_i) for i in C in order))))``.

Assumption, exactly: (a) SHA-256 is a random oracle, so a commitment hides its secret and binds
its author to it; (b) at least one member of ``C`` is correct and its secret is drawn uniformly and
kept until ``C`` is fixed; (c) every member of ``C`` reveals (a withheld reveal stalls the draw —
a liveness fault this module does not repair; a rule that drew without the missing reveal would let
the withholding member choose between two seeds, the last-revealer bias). Under (a)–(c) the seed
is uniform and independent of everything public before ``C`` was fixed: an adversary that picks
the Byzantine nodes after reading every earlier seed, commitment and committee captures an
instance with exactly the hypergeometric probability
(:func:`~qverify.consensus.committee.capture_probability`). The seed the draw used before, the
public pair (slot, epoch), gave no such guarantee: an adversary reading it in advance could place
its nodes in the committee with certainty.

>>> rng = np.random.default_rng(0)
>>> chain = BeaconChain(n=100, size=10, genesis=b"g", rng=rng)
>>> first = chain.committee()
>>> chain.advance()
>>> len(chain.committee()), chain.instance
(10, 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from qverify.consensus.committee import sortition
from qverify.consensus.encoding import encode
from qverify.errors import ParameterError

SECRET_BYTES = 32


def commitment(instance: int, member: int, secret: bytes) -> str:
    """The commitment (SHA-256 hex) of ``member``'s beacon secret for ``instance``."""
    return hashlib.sha256(encode(("beacon-commit", instance, member, secret))).hexdigest()


def beacon_seed(instance: int, previous: bytes, commitments: Mapping[int, str], reveals: Mapping[int, bytes]) -> bytes:
    """The seed of ``instance`` from the previous seed, the commitments a committed decision fixed,
    and their reveals (see the module docstring). Raises :class:`ParameterError` naming the member
    whose reveal is missing, not bytes of the right length, or does not match its commitment."""
    parts = []
    for i in sorted(commitments):
        x = reveals.get(i)
        if x is None:
            raise ParameterError(
                f"beacon.reveals[{i}]", None, "the secret member committed to (every committed member reveals)"
            )
        if not isinstance(x, bytes) or len(x) != SECRET_BYTES:
            raise ParameterError(f"beacon.reveals[{i}]", type(x).__name__, f"{SECRET_BYTES} bytes")
        if commitment(instance, i, x) != commitments[i]:
            raise ParameterError(
                f"beacon.reveals[{i}]", x.hex()[:16] + "…", f"a secret matching commitment {commitments[i][:16]}…"
            )
        parts.append((i, x))
    if not parts:
        raise ParameterError("beacon.commitments", "{}", "at least one committed member")
    return hashlib.sha256(encode(("beacon", instance, previous, tuple(parts)))).digest()


def seed_int(seed: bytes) -> int:
    """A beacon seed as the integer that seeds the committee draw."""
    return int.from_bytes(seed, "big")


class BeaconChain:
    """Committees of successive instances, each drawn from the beacon seed of the instance before.

    ``rng`` stands for the members' private randomness (each correct member's secret); everything
    else — commitments, seeds, committees — is public once its instance is decided
    (:attr:`public`). ``genesis`` seeds instance 0.
    """

    def __init__(self, n: int, size: int, genesis: bytes, rng: np.random.Generator) -> None:
        if not 1 <= size <= n:
            raise ParameterError("size", size, f"[1, n = {n}]")
        self.n, self.size, self.rng = n, size, rng
        self.instance = 0
        self.seed = hashlib.sha256(encode(("beacon-genesis", genesis))).digest()
        self.public: list[tuple[bytes, tuple[int, ...], dict[int, str]]] = []
        self._secrets: dict[int, bytes] = {}
        self._commitments: dict[int, str] = {}
        self._commit()

    def committee(self) -> np.ndarray:
        """The current instance's committee (sorted node indices)."""
        return sortition(self.n, self.size, seed_int(self.seed))

    def _commit(self) -> None:
        """The current committee's members commit to secrets for the next instance (carried by
        the current instance's decision)."""
        nxt = self.instance + 1
        self._secrets = {int(i): self.rng.bytes(SECRET_BYTES) for i in self.committee()}
        self._commitments = {i: commitment(nxt, i, x) for i, x in self._secrets.items()}

    def commitments(self) -> dict[int, str]:
        """The commitments the current instance's decision carries (public once it is decided)."""
        return dict(self._commitments)

    def advance(self) -> None:
        """The current instance is decided: its members reveal, the next seed is derived and the
        next committee commits."""
        self.public.append((self.seed, tuple(int(i) for i in self.committee()), dict(self._commitments)))
        self.instance += 1
        self.seed = beacon_seed(self.instance, self.seed, self._commitments, self._secrets)
        self._commit()
