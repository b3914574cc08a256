"""Ed25519 signatures on weighted-PBFT protocol messages (RFC 8032, through ``cryptography``).

Every message a replica sends is signed with its identity's private key over a canonical encoding
of its fields (:func:`signing_bytes`; certificates nested in a payload are encoded with their own
signatures, so a signature binds them too). Receivers verify against the claimed sender's public
key and drop anything that fails; certificates (prepared, committed, checkpoint proofs, the
ViewChanges inside a NewView) are checked message by message. Keys are fresh per run unless the
caller supplies them; none is derived from a name.

Verification is deterministic, so the simulator verifies each distinct message object once and
remembers the verdict (a broadcast to n replicas costs one verification, not n); what is accepted
is exactly what n independent verifications would accept.

>>> from qverify.consensus.netmodel import Msg
>>> keys = Keyring.generate(2)
>>> m = keys.sign(0, Msg("prepare", 0, 0, 1, "a"))
>>> keys.verify(m), keys.verify(Msg("prepare", 0, 0, 1, "b", sig=m.sig)), keys.verify(keys.sign(1, Msg("prepare", 0)))
(True, False, False)
>>> ideal = Keyring.generate(2, "ideal")
>>> ideal.verify(ideal.sign(0, Msg("prepare", 0))), ideal.verify(ideal.sign(1, Msg("prepare", 0)))
(True, False)
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qverify.consensus.encoding import encode_into
from qverify.consensus.netmodel import Msg
from qverify.errors import ChoiceError, ParameterError

SELF_AUTHENTICATING: frozenset[str] = frozenset({"commit-cert", "state"})
"""Kinds whose wrapper is not signed: what they carry is checked signature by signature (a quorum
of signed commits; a log against a quorum of signed checkpoints), so the forwarder adds nothing a
receiver relies on."""


def _message(msg: Msg, sig: bytes, nested: Callable[[Msg], bytes]) -> bytes:
    """The encoding of a message's fields with ``sig`` in place of its signature (the package's one
    canonical encoder, :mod:`qverify.consensus.encoding`)."""
    out: list[bytes] = [b"M"]
    for part in (msg.kind, msg.sender, msg.view, msg.seq, msg.value, msg.payload, sig):
        encode_into(part, out, _only_messages(nested))
    return b"".join(out)


def _only_messages(nested: Callable[[Msg], bytes]) -> Callable[[Any], bytes]:
    """A message nested in a payload is encoded by its digest; any other unknown type cannot be signed."""

    def enc(obj: Any) -> bytes:
        if isinstance(obj, Msg):
            return nested(obj)
        raise TypeError(f"cannot sign a {type(obj).__name__}")

    return enc


def _digest_of(m: Msg, nested: Callable[[Msg], bytes] | None = None) -> bytes:
    """SHA-256 of a message's full encoding (signature included): how it is encoded when nested."""
    return hashlib.sha256(_message(m, m.sig, nested or _digest_of)).digest()


def signing_bytes(msg: Msg, nested: Callable[[Msg], bytes] = _digest_of) -> bytes:
    """The bytes a message's signature covers: every field but the signature itself."""
    return _message(msg, b"", nested)


SCHEMES: tuple[str, ...] = ("ed25519", "ideal")
"""Signature schemes: real Ed25519, or *ideal* signatures — a keyed BLAKE2b tag under a secret only
the simulator holds, verified by the simulator. Both are unforgeable by the replicas (the adversary
of the fault model) and run the same protocol code; ``ideal`` is ~100× cheaper, for large
experiment grids where the cryptography is not what is under test."""


class Keyring:
    """The signing keys of one run's replica identities, and a memo of verified messages.

    Args:
        private: identity → Ed25519 private key (``scheme="ed25519"``) or 32-byte secret (``"ideal"``).
        scheme: one of :data:`SCHEMES`.
    """

    def __init__(self, private: Mapping[int, Any], scheme: str = "ed25519") -> None:
        if scheme not in SCHEMES:
            raise ChoiceError("signatures", scheme, SCHEMES)
        for i, k in private.items():
            if scheme == "ed25519" and not isinstance(k, Ed25519PrivateKey):
                raise ParameterError(f"keys[{i}]", type(k).__name__, "an Ed25519PrivateKey")
            if scheme == "ideal" and not (isinstance(k, bytes) and len(k) == 32):
                raise ParameterError(f"keys[{i}]", type(k).__name__, "32 secret bytes")
        self.scheme = scheme
        self._private = dict(private)
        self._public: dict[int, Any] = (
            {i: k.public_key() for i, k in private.items()} if scheme == "ed25519" else dict(private)
        )
        self._verified: dict[int, tuple[Msg, bool]] = {}  # id(msg) → (msg kept alive, verdict)
        self._digests: dict[int, tuple[Msg, bytes]] = {}  # id(msg) → (msg kept alive, digest)

    def _digest(self, m: Msg) -> bytes:
        """SHA-256 of a nested message's full encoding, computed once per message object."""
        hit = self._digests.get(id(m))
        if hit is not None and hit[0] is m:
            return hit[1]
        d = _digest_of(m, self._digest)
        self._digests[id(m)] = (m, d)
        return d

    @classmethod
    def generate(cls, n: int, scheme: str = "ed25519") -> Keyring:
        """Fresh random keys for identities 0 … n − 1."""
        if scheme == "ideal":
            return cls({i: os.urandom(32) for i in range(n)}, scheme)
        return cls({i: Ed25519PrivateKey.generate() for i in range(n)}, scheme)

    def _tag(self, key: bytes, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=key, digest_size=64).digest()

    def sign(self, ident: int, msg: Msg) -> Msg:
        """``msg`` signed with ``ident``'s key (a signature by another key than the sender's fails)."""
        data = signing_bytes(msg, self._digest)
        k = self._private[ident]
        return dataclasses.replace(msg, sig=self._tag(k, data) if self.scheme == "ideal" else k.sign(data))

    def verify(self, msg: Msg) -> bool:
        """Whether ``msg`` carries its sender's valid signature."""
        hit = self._verified.get(id(msg))
        if hit is not None and hit[0] is msg:
            return hit[1]
        key = self._public.get(msg.sender)
        ok = False
        if key is not None and len(msg.sig) == 64:
            try:
                data = signing_bytes(msg, self._digest)
                if self.scheme == "ideal":
                    ok = hmac.compare_digest(self._tag(key, data), msg.sig)
                else:
                    key.verify(msg.sig, data)
                    ok = True
            except (InvalidSignature, TypeError, ValueError, RecursionError):
                ok = False
        self._verified[id(msg)] = (msg, ok)
        return ok
