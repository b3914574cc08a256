"""The key store of one KME pair: a SQLite database (WAL) holding the pair's undelivered key.

Two KMEs joined by QKD (directly or through relays) hold the same key bytes. Here both ends' copies
live in one file per node pair, so that every step of ETSI GS QKD 014 delivery is one SQLite
transaction: a Get key (``enc_keys``) at the master's KME moves blocks from the shared pool to the
slave's side in the same commit in which it hands them out, and a Get key with key IDs
(``dec_keys``) at the slave's KME deletes what it returns in the commit that reads it. A kill −9
between two requests therefore loses no undelivered key and delivers no key twice; a request that
fails consumes nothing (its transaction rolls back).

Tables:

* ``pool(seq, material)``: blocks of ``block_bits`` fresh random bits (``secrets.token_bytes``, the
  operating system's CSPRNG) that no SAE has seen; both ends of the pair share them.
* ``issued(key_id, master_sae, slave_sae, material)``: keys handed to a master SAE, waiting at the
  slave's KME for the one ``dec_keys`` by the named slave SAE.
* ``ids(key_id)``: every key ID the pair ever issued, so that IDs stay unique over the store's
  lifetime (a UUID4 collision is drawn again, never reused).
* ``meta``: the last network slot whose key was deposited and the bits carried over, so that a
  restart resumes the feed where it stopped (no slot deposited twice).

The files are created with mode 0600 (their folder 0700); SQLite gives the ``-wal`` and ``-shm``
files the database's mode. Key material appears only in ``KeyBlock.material``, whose ``repr``
hides it; no exception or log record built here contains it.
"""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qverify.errors import KeyDeliveryError, ParameterError

SCHEMA = """
CREATE TABLE IF NOT EXISTS pool (seq INTEGER PRIMARY KEY AUTOINCREMENT, material BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS issued (
    key_id TEXT PRIMARY KEY, master_sae TEXT NOT NULL, slave_sae TEXT NOT NULL, material BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ids (key_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""


@dataclass(frozen=True)
class KeyBlock:
    """One delivered key: its UUID and its bytes (``repr`` never shows the bytes).

    Attributes:
        key_id: the key's UUID (canonical lowercase text form).
        material: the key bytes.
    """

    key_id: str
    material: bytes = field(repr=False)

    @property
    def size_bits(self) -> int:
        """Key length in bits."""
        return 8 * len(self.material)


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (a race-free ``O_EXCL`` create)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class PairStore:
    """Persistent key store of the KME pair ``(node_a, node_b)`` (see the module docstring).

    Args:
        path: the SQLite file (created 0600 with its folder 0700 if missing).
        block_bits: bits per pool block, a positive multiple of 8; the KME's default key size.
        max_blocks: most blocks the pool holds (key arriving at a full pool is dropped).
        random_bytes: source of key bytes (default ``secrets.token_bytes``, the OS CSPRNG).

    Every method is one transaction (``BEGIN IMMEDIATE``: one writer at a time, also across
    processes sharing the file), and threads share the object under a lock.
    """

    def __init__(
        self,
        path: str | Path,
        block_bits: int = 256,
        max_blocks: int = 100_000,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if block_bits < 8 or block_bits % 8:
            raise ParameterError("block_bits", block_bits, "a positive multiple of 8")
        if max_blocks < 1:
            raise ParameterError("max_blocks", max_blocks, "[1, inf)")
        self.path = Path(path)
        self.block_bits = int(block_bits)
        self.max_blocks = int(max_blocks)
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives the process being killed (it is in the OS's
        # hands); only a power cut may lose the last commits, never half of one.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database (the store can be reopened from its file)."""
        with self._lock:
            self._db.close()

    def _meta(self, name: str, default: float) -> float:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return float(row[0]) if row else default

    def _set_meta(self, name: str, value: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    # --- filling -------------------------------------------------------------------------------
    @property
    def last_slot(self) -> int:
        """The last network slot deposited (−1 before the first)."""
        with self._lock:
            return int(self._meta("last_slot", -1.0))

    def deposit(self, slot: int, bits: float) -> int:
        """Add the key the network delivered in ``slot`` (``bits`` ≥ 0): whole blocks of fresh random
        bytes, the remainder carried to the next slot. A slot at or before :attr:`last_slot` is
        ignored (a restarted feed never deposits a slot twice). Returns the blocks added."""
        if not math.isfinite(bits) or bits < 0:
            raise ParameterError("bits", bits, "[0, inf)")
        with self._transaction() as db:
            if slot <= self._meta("last_slot", -1.0):
                return 0
            carry = self._meta("carry_bits", 0.0) + bits
            whole = int(carry // self.block_bits)
            stored = db.execute("SELECT COUNT(*) FROM pool").fetchone()[0]
            added = max(0, min(whole, self.max_blocks - stored))
            nbytes = self.block_bits // 8
            db.executemany(
                "INSERT INTO pool (material) VALUES (?)", ((self._random_bytes(nbytes),) for _ in range(added))
            )
            self._set_meta("carry_bits", carry - whole * self.block_bits)
            self._set_meta("last_slot", float(slot))
            return added

    # --- accounting ----------------------------------------------------------------------------
    def pool_blocks(self) -> int:
        """Blocks in the shared pool (what a master can still get)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM pool").fetchone()[0])

    def waiting(self, slave_sae: str | None = None) -> int:
        """Issued keys waiting for their slave (all, or those of ``slave_sae``)."""
        with self._lock:
            if slave_sae is None:
                return int(self._db.execute("SELECT COUNT(*) FROM issued").fetchone()[0])
            q = "SELECT COUNT(*) FROM issued WHERE slave_sae = ?"
            return int(self._db.execute(q, (slave_sae,)).fetchone()[0])

    def issued_count(self) -> int:
        """Key IDs issued over the store's lifetime."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM ids").fetchone()[0])

    # --- delivery ------------------------------------------------------------------------------
    def blocks_per_key(self, size_bits: int) -> int:
        """Pool blocks one key of ``size_bits`` bits uses (the unused tail of the last is discarded)."""
        return -(-int(size_bits) // self.block_bits)

    def issue(self, master_sae: str, slave_sae: str, number: int, size_bits: int) -> list[KeyBlock]:
        """Get key: take ``number`` keys of ``size_bits`` bits (a multiple of 8) from the pool for
        ``master_sae``, leaving them for ``slave_sae`` at the slave's KME; all or nothing.

        Raises :class:`~qverify.errors.KeyDeliveryError` 503 when the pool holds too few blocks (then
        nothing is taken)."""
        if number < 1:
            raise ParameterError("number", number, "[1, inf)")
        if size_bits < 8 or size_bits % 8:
            raise ParameterError("size", size_bits, "a positive multiple of 8")
        per_key = self.blocks_per_key(size_bits)
        need = number * per_key
        nbytes = size_bits // 8
        with self._transaction() as db:
            rows = db.execute("SELECT seq, material FROM pool ORDER BY seq LIMIT ?", (need,)).fetchall()
            if len(rows) < need:
                raise KeyDeliveryError(
                    503,
                    "insufficient amount of key material",
                    [{"keys_requested": number, "key_size": size_bits, "keys_available": len(rows) // per_key}],
                )
            db.execute("DELETE FROM pool WHERE seq IN (SELECT seq FROM pool ORDER BY seq LIMIT ?)", (need,))
            keys = []
            for k in range(number):
                chunk = rows[k * per_key : (k + 1) * per_key]
                material = b"".join(r[1] for r in chunk)[:nbytes]
                key_id = self._fresh_id(db)
                db.execute(
                    "INSERT INTO issued (key_id, master_sae, slave_sae, material) VALUES (?, ?, ?, ?)",
                    (key_id, master_sae, slave_sae, material),
                )
                keys.append(KeyBlock(key_id, material))
            return keys

    @staticmethod
    def _fresh_id(db: sqlite3.Connection) -> str:
        """A UUID4 never issued by this store (recorded in ``ids`` in the caller's transaction)."""
        while True:
            key_id = str(uuid.uuid4())
            try:
                db.execute("INSERT INTO ids (key_id) VALUES (?)", (key_id,))
            except sqlite3.IntegrityError:  # a collision: draw again
                continue
            return key_id

    def fetch(self, caller_sae: str, master_sae: str, key_ids: Sequence[str]) -> list[KeyBlock]:
        """Get key with key IDs: the keys ``key_ids`` that ``master_sae`` got for ``caller_sae``, in
        request order, deleted in the same transaction; all or nothing.

        Raises :class:`~qverify.errors.KeyDeliveryError` 400 ``one or more keys specified are not
        found on KME`` when an ID is unknown here, was already fetched, or belongs to another master
        (nothing is deleted), and 401 when a key was issued for another slave (ETSI GS QKD 014
        Table 7)."""
        if len(set(key_ids)) != len(key_ids):
            raise KeyDeliveryError(400, "key_IDs = a list with repeated IDs; each key ID may appear once")
        with self._transaction() as db:
            found = {}
            for key_id in key_ids:
                row = db.execute(
                    "SELECT master_sae, slave_sae, material FROM issued WHERE key_id = ?", (key_id,)
                ).fetchone()
                if row is not None and row[0] == master_sae:
                    found[key_id] = row
            missing = [k for k in key_ids if k not in found]
            if missing:
                raise KeyDeliveryError(
                    400, "one or more keys specified are not found on KME", [{"key_IDs_not_found": missing}]
                )
            if any(row[1] != caller_sae for row in found.values()):
                raise KeyDeliveryError(401, "the calling SAE is not the slave SAE named for these keys")
            db.executemany("DELETE FROM issued WHERE key_id = ?", ((k,) for k in key_ids))
            return [KeyBlock(k, found[k][2]) for k in key_ids]


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception) under the store's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._lock.release()
