"""Key management entities (KMEs), one per node, serving ETSI GS QKD 014 V1.1.1 from pair stores.

:class:`KeyNetwork` holds the network's KMEs: one :class:`~qverify.kms.store.PairStore` per node
pair that the feed delivers key to, filled slot by slot (:meth:`KeyNetwork.advance`), and the three
014 methods (clause 5) as plain Python calls that take the request as parsed JSON and the calling
SAE's ID (from its TLS certificate when served) and return the response body, or raise
:class:`~qverify.errors.KeyDeliveryError` with the status code and message of the standard:

* :meth:`KeyNetwork.status`: Get status (Table 9);
* :meth:`KeyNetwork.enc_keys`: Get key (Tables 10, 11), at the master SAE's KME;
* :meth:`KeyNetwork.dec_keys`: Get key with key IDs (Tables 11, 12), at the slave SAE's KME.

Every check runs before any key is touched, and each delivery is one store transaction, so a
refused request consumes nothing. Multicast (Annex B) is not supported: ``max_SAE_ID_count = 0``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qverify.errors import KeyDeliveryError, ParameterError
from qverify.kms.feed import Feed
from qverify.kms.store import KeyBlock, PairStore

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
"""A key ID: a UUID in its 8-4-4-4-12 hexadecimal text form (ETSI GS QKD 014 Table 11)."""

ENC_FIELDS = ("number", "size", "additional_slave_SAE_IDs", "extension_mandatory", "extension_optional")
DEC_FIELDS = ("key_IDs", "key_IDs_extension")


@dataclass(frozen=True)
class KmeLimits:
    """What every KME reports in its Status (ETSI GS QKD 014 Table 9) and enforces.

    Attributes:
        key_size_bits: default key size, bits (a multiple of 8); also the pool's block size.
        min_key_size_bits: smallest key size, bits (multiple of 8, ≥ 8).
        max_key_size_bits: largest key size, bits (multiple of 8).
        max_key_per_request: most keys (or key IDs) per request (≥ 1).
        max_key_count: most default-size keys a pair's store holds (≥ 1).
    """

    key_size_bits: int = 256
    min_key_size_bits: int = 64
    max_key_size_bits: int = 1024
    max_key_per_request: int = 128
    max_key_count: int = 100_000

    def __post_init__(self) -> None:
        for name in ("key_size_bits", "min_key_size_bits", "max_key_size_bits"):
            v = getattr(self, name)
            if v < 8 or v % 8:
                raise ParameterError(name, v, "a positive multiple of 8")
        if not self.min_key_size_bits <= self.key_size_bits <= self.max_key_size_bits:
            raise ParameterError(
                "key_size_bits", self.key_size_bits, f"[{self.min_key_size_bits}, {self.max_key_size_bits}]"
            )
        if self.max_key_per_request < 1:
            raise ParameterError("max_key_per_request", self.max_key_per_request, "[1, inf)")
        if self.max_key_count < 1:
            raise ParameterError("max_key_count", self.max_key_count, "[1, inf)")


def kme_id(node: str) -> str:
    """The KME ID of ``node``."""
    return f"KME_{node}"


def default_saes(nodes: tuple[str, ...]) -> dict[str, str]:
    """One SAE per node, ``SAE_<node>``, attached to the node's KME."""
    return {f"SAE_{n}": n for n in nodes}


def _bad(message: str, details: list[dict[str, Any]] | None = None) -> KeyDeliveryError:
    return KeyDeliveryError(400, message, details)


def _int_field(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} = {value!r} is not an integer; allowed: an integer in [{low}, {high}]")
    if not low <= value <= high:
        raise _bad(f"{name} = {value} is outside the allowed range [{low}, {high}]")
    return value


def _objects(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise _bad(f"{name} = {_short(value)} is not a list of objects")
    return value


def _short(value: Any) -> str:
    """``repr`` of a request value, cut to 60 characters (messages stay one line)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class KeyNetwork:
    """The KMEs of a network, their pair stores and the ETSI GS QKD 014 methods.

    Args:
        feed: per-slot key per node pair (:mod:`qverify.kms.feed`).
        store_dir: folder of the pair stores (created 0700); reopening it resumes the stores.
        saes: SAE ID → node whose KME serves it (default :func:`default_saes`).
        limits: the KMEs' limits.
    """

    def __init__(
        self,
        feed: Feed,
        store_dir: str | Path,
        saes: Mapping[str, str] | None = None,
        limits: KmeLimits | None = None,
    ) -> None:
        self.feed = feed
        self.limits = limits or KmeLimits()
        self.saes = dict(saes) if saes is not None else default_saes(feed.nodes)
        for sae, node in self.saes.items():
            if node not in feed.nodes:
                raise ParameterError(f"saes[{sae!r}]", node, f"a node of {list(feed.nodes)}")
        self.store_dir = Path(store_dir)
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._columns: dict[frozenset[str], list[int]] = {}
        for d, (a, b) in enumerate(feed.pairs):
            self._columns.setdefault(frozenset((a, b)), []).append(d)
        self.stores: dict[frozenset[str], PairStore] = {
            pair: PairStore(
                self.store_dir / ("pair-" + "--".join(sorted(pair)) + ".sqlite"),
                block_bits=self.limits.key_size_bits,
                max_blocks=self.limits.max_key_count,
            )
            for pair in self._columns
        }
        self.slot = 1 + max((s.last_slot for s in self.stores.values()), default=-1)

    def close(self) -> None:
        """Close every store."""
        for s in self.stores.values():
            s.close()

    def store(self, node_a: str, node_b: str) -> PairStore | None:
        """The store of the pair ``{node_a, node_b}``, or None if the network delivers it no key."""
        return self.stores.get(frozenset((node_a, node_b)))

    # --- simulated time ------------------------------------------------------------------------
    def advance(self, slots: int = 1) -> int:
        """Deposit the key of the next ``slots`` network slots into the stores; returns blocks added."""
        if slots < 0:
            raise ParameterError("slots", slots, "[0, inf)")
        added = 0
        for _ in range(slots):
            bits = self.feed.bits(self.slot)
            for pair, cols in self._columns.items():
                added += self.stores[pair].deposit(self.slot, float(sum(bits[c] for c in cols)))
            self.slot += 1
        return added

    # --- who is calling ------------------------------------------------------------------------
    def _caller_at(self, node: str, caller: str | None) -> str:
        if caller is None or caller not in self.saes:
            raise KeyDeliveryError(401, "the client certificate names no SAE known to this network")
        if self.saes[caller] != node:
            raise KeyDeliveryError(401, f"SAE {caller!r} is not served by {kme_id(node)}")
        return caller

    def _peer(self, node: str, field: str, sae: str, caller: str) -> str:
        if sae not in self.saes:
            raise _bad(f"{field} = {_short(sae)} is not a known SAE ID", [{field: "unknown"}])
        if sae == caller:
            raise _bad(f"{field} = {sae!r} is the calling SAE itself; allowed: another SAE")
        peer = self.saes[sae]
        if peer == node:
            raise _bad(f"{field} = {sae!r} is served by this KME ({kme_id(node)}); allowed: an SAE of another KME")
        return peer

    # --- ETSI GS QKD 014 -----------------------------------------------------------------------
    def status(self, node: str, caller: str | None, slave_sae: str) -> dict[str, Any]:
        """Get status (clause 5.2, Table 9) at ``node``'s KME, called by master ``caller``."""
        master = self._caller_at(node, caller)
        peer = self._peer(node, "slave_SAE_ID", slave_sae, master)
        store = self.store(node, peer)
        lim = self.limits
        return {
            "source_KME_ID": kme_id(node),
            "target_KME_ID": kme_id(peer),
            "master_SAE_ID": master,
            "slave_SAE_ID": slave_sae,
            "key_size": lim.key_size_bits,
            "stored_key_count": store.pool_blocks() if store else 0,
            "max_key_count": lim.max_key_count,
            "max_key_per_request": lim.max_key_per_request,
            "max_key_size": lim.max_key_size_bits,
            "min_key_size": lim.min_key_size_bits,
            "max_SAE_ID_count": 0,
            "status_extension": {
                "qverify_keys_waiting_for_slave": store.waiting(slave_sae) if store else 0,
                "qverify_slot": self.slot,
            },
        }

    def parse_key_request(self, body: Any) -> tuple[int, int]:
        """(number, size in bits) of a Key request (Table 10), after every check of clause 6.2."""
        lim = self.limits
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise _bad(f"request body = {_short(body)} is not a JSON object (Key request, Table 10)")
        unknown = sorted(set(body) - set(ENC_FIELDS))
        if unknown:
            raise _bad(f"{unknown[0]!r} is not a Key request field; allowed: {', '.join(ENC_FIELDS)}")
        number = _int_field("number", body.get("number", 1), 1, lim.max_key_per_request)
        size = body.get("size", lim.key_size_bits)
        if isinstance(size, int) and not isinstance(size, bool) and size % 8:
            raise _bad("size shall be a multiple of 8")
        size = _int_field("size", size, lim.min_key_size_bits, lim.max_key_size_bits)
        extra = body.get("additional_slave_SAE_IDs", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
            raise _bad(f"additional_slave_SAE_IDs = {_short(extra)} is not a list of strings")
        if extra:
            raise _bad(
                f"additional_slave_SAE_IDs has {len(extra)} entries; allowed: 0 (max_SAE_ID_count = 0, "
                "multicast is not supported)"
            )
        mandatory = _objects("extension_mandatory", body.get("extension_mandatory", []))
        _objects("extension_optional", body.get("extension_optional", []))
        if mandatory:
            names = [name for ext in mandatory for name in ext]
            raise _bad(
                "not all extension_mandatory parameters are supported",
                [{"extension_mandatory_unsupported": f"{_short(n)} is not supported"} for n in names],
            )
        return number, size

    def enc_keys(self, node: str, caller: str | None, slave_sae: str, body: Any) -> dict[str, Any]:
        """Get key (clause 5.3): ``number`` new keys for master ``caller`` at ``node``'s KME, named for
        ``slave_sae``; the Key container (Table 11). 503 when the pair's store holds too little."""
        master = self._caller_at(node, caller)
        peer = self._peer(node, "slave_SAE_ID", slave_sae, master)
        number, size = self.parse_key_request(body)
        store = self.store(node, peer)
        if store is None:
            raise KeyDeliveryError(
                503, f"no key is delivered between {kme_id(node)} and {kme_id(peer)} (not a demand of the network)"
            )
        return _container(store.issue(master, slave_sae, number, size))

    def parse_key_ids(self, body: Any) -> list[str]:
        """The key IDs of a Key IDs body (Table 12), canonical lowercase, after every check."""
        if not isinstance(body, dict):
            raise _bad(f"request body = {_short(body)} is not a JSON object (Key IDs, Table 12)")
        unknown = sorted(set(body) - set(DEC_FIELDS))
        if unknown:
            raise _bad(f"{unknown[0]!r} is not a Key IDs field; allowed: {', '.join(DEC_FIELDS)}")
        if "key_IDs_extension" in body and not isinstance(body["key_IDs_extension"], dict):
            raise _bad(f"key_IDs_extension = {_short(body['key_IDs_extension'])} is not an object")
        entries = body.get("key_IDs")
        high = self.limits.max_key_per_request
        if not isinstance(entries, list) or not 1 <= len(entries) <= high:
            raise _bad(f"key_IDs = {_short(entries)} is not a list of 1 to {high} objects")
        ids = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "key_ID" not in entry or set(entry) - {"key_ID", "key_ID_extension"}:
                raise _bad(f"key_IDs[{i}] = {_short(entry)} is not an object with key_ID (and key_ID_extension)")
            ids.append(self.parse_key_id(entry["key_ID"], f"key_IDs[{i}].key_ID"))
        if len(set(ids)) != len(ids):
            raise _bad("key_IDs lists a key ID more than once; allowed: each key ID once")
        return ids

    @staticmethod
    def parse_key_id(value: Any, field: str = "key_ID") -> str:
        """A key ID in canonical lowercase form; 400 if it is not a UUID."""
        if not isinstance(value, str) or not UUID_RE.match(value):
            raise _bad(f"{field} = {_short(value)} is not a UUID (8-4-4-4-12 hexadecimal digits)")
        return value.lower()

    def dec_keys(self, node: str, caller: str | None, master_sae: str, body: Any) -> dict[str, Any]:
        """Get key with key IDs (clause 5.4) at slave ``caller``'s KME ``node``: the keys master
        ``master_sae`` got for it, each deliverable once; the Key container (Table 11)."""
        slave = self._caller_at(node, caller)
        peer = self._peer(node, "master_SAE_ID", master_sae, slave)
        ids = self.parse_key_ids(body)
        store = self.store(node, peer)
        if store is None:
            raise _bad("one or more keys specified are not found on KME", [{"key_IDs_not_found": ids}])
        return _container(store.fetch(slave, master_sae, ids))


def _container(keys: list[KeyBlock]) -> dict[str, Any]:
    """Key container (Table 11; the array is named ``keys``, as in the standard's example)."""
    return {"keys": [{"key_ID": k.key_id, "key": base64.b64encode(k.material).decode("ascii")} for k in keys]}
