"""The one canonical, injective encoding of everything a digest, signature or certificate covers.

Every structured value that a weighted-PBFT digest or signature binds — a protocol message's
fields, an executed log (the state a checkpoint certifies), a batch, a weight vector, a beacon
input — is turned into bytes by :func:`encode` and nothing else. The encoding is a tagged,
length-prefixed tree (a type tag, a 4-byte big-endian length, the content; containers list their
items' encodings after their item count), so it is *injective*: two different values never share
an encoding, whatever bytes their strings hold (a separator-joined encoding such as
``"\\x1f".join(log)`` is not: ``["a\\x1fb", "c"]`` and ``["a", "b\\x1fc"]`` collide). Digests are
full SHA-256 (256 bits, hex): a truncated digest would let a faulty replica search for collisions.

Strings are encoded as UTF-8 with ``surrogateescape`` (a client payload given as arbitrary bytes is
carried as the string those bytes decode to, :func:`request_value`, and encodes back to them).

>>> encode(["a\\x1fb", "c"]) == encode(["a", "b\\x1fc"])
False
>>> digest(("log", ("a", "b"))) == digest(("log", ("a", "b")))
True
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from typing import Any

from qverify.consensus.checker import NOOP
from qverify.errors import ParameterError

MAX_REQUEST_BYTES = 65_536
"""Largest client payload accepted, in bytes (UTF-8 for a string)."""

_LEN = struct.Struct(">I")


def _len(n: int) -> bytes:
    return _LEN.pack(n)


def _text(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def encode_into(obj: Any, out: list[bytes], nested: Callable[[Any], bytes] | None = None) -> None:
    """Append the encoding of ``obj`` to ``out``. ``nested(obj)``, when given, encodes objects of
    types the tree does not know (a signed message inside a payload is encoded by its digest); it
    must itself be injective up to collisions of SHA-256."""
    if obj is None:
        out.append(b"N")
    elif isinstance(obj, bool):
        out.append(b"T" if obj else b"F")
    elif isinstance(obj, int):
        data = str(obj).encode()
        out.append(b"I" + _len(len(data)) + data)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise TypeError(f"cannot encode the float {obj!r}")
        data = obj.hex().encode()
        out.append(b"R" + _len(len(data)) + data)
    elif isinstance(obj, str):
        data = _text(obj)
        out.append(b"S" + _len(len(data)) + data)
    elif isinstance(obj, bytes):
        out.append(b"B" + _len(len(obj)) + obj)
    elif isinstance(obj, (tuple, list)):
        out.append(b"L" + _len(len(obj)))
        for x in obj:
            encode_into(x, out, nested)
    elif isinstance(obj, dict):
        # Items in the order of their keys' encodings: equal dicts encode alike.
        items = sorted((encode(k, nested), k) for k in obj)
        out.append(b"D" + _len(len(items)))
        for data, k in items:
            out.append(data)
            encode_into(obj[k], out, nested)
    elif nested is not None:
        out.append(b"H" + nested(obj))
    else:
        raise TypeError(f"cannot encode a {type(obj).__name__}")


def encode(obj: Any, nested: Callable[[Any], bytes] | None = None) -> bytes:
    """The canonical encoding of ``obj`` (None, bool, int, finite float, str, bytes, and tuples,
    lists and dicts of them)."""
    out: list[bytes] = []
    encode_into(obj, out, nested)
    return b"".join(out)


def digest(obj: Any) -> str:
    """SHA-256 (hex) of :func:`encode` ``(obj)``: the digest every certificate in the package uses."""
    return hashlib.sha256(encode(obj)).hexdigest()


def log_digest(values: Any) -> str:
    """Digest of an executed log (the state a checkpoint certifies), domain-separated from any other
    digest: ``digest(("log", tuple(values)))``."""
    return digest(("log", tuple(values)))


def request_value(request: Any, field: str = "request") -> str:
    """A client payload (``str`` or arbitrary ``bytes``) as the string the replicas order.

    Bytes are decoded as UTF-8 with ``surrogateescape`` (injective: every byte string maps to its
    own string, and :func:`encode` gives the bytes back). Raises :class:`ParameterError` naming
    ``field`` for a payload that is not str/bytes, is empty, exceeds :data:`MAX_REQUEST_BYTES`,
    holds a lone surrogate that no byte string decodes to, or is the reserved no-op value.
    """
    if isinstance(request, bytes | bytearray):
        data = bytes(request)
        value = data.decode("utf-8", "surrogateescape")
    elif isinstance(request, str):
        value = request
        try:
            data = _text(value)
        except UnicodeEncodeError:
            raise ParameterError(field, request[:40], "str encodable as UTF-8 (no lone surrogates)") from None
    else:
        raise ParameterError(field, type(request).__name__, "str or bytes")
    if not 1 <= len(data) <= MAX_REQUEST_BYTES:
        raise ParameterError(f"len({field})", len(data), f"[1, {MAX_REQUEST_BYTES}] bytes")
    if value == NOOP:
        raise ParameterError(field, value, f"any payload but the reserved no-op {NOOP!r}")
    return value
