"""The pair store: exactly-once delivery, all-or-nothing failures, persistence across kill -9, file modes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qverify.errors import KeyDeliveryError, ParameterError
from qverify.kms.store import PairStore

ROOT = Path(__file__).resolve().parents[2]


def full(tmp_path: Path, blocks: int, **kw) -> PairStore:
    s = PairStore(tmp_path / "p.sqlite", block_bits=64, **kw)
    s.deposit(0, 64.0 * blocks)
    return s


def test_deposit_whole_blocks_carry_and_slot_once(tmp_path):
    s = PairStore(tmp_path / "p.sqlite", block_bits=64, max_blocks=10)
    assert s.deposit(0, 100.0) == 1  # 100 bits: one 64-bit block, 36 carried
    assert s.deposit(1, 30.0) == 1  # 36 + 30 = 66: one more, 2 carried
    assert s.deposit(1, 640.0) == 0  # slot 1 again: ignored
    assert s.pool_blocks() == 2 and s.last_slot == 1
    assert s.deposit(2, 64.0 * 50) == 8  # the cap: max_blocks = 10
    assert s.pool_blocks() == 10
    with pytest.raises(ParameterError, match="bits"):
        s.deposit(3, float("nan"))


def test_round_trip_once_and_accounting(tmp_path):
    s = full(tmp_path, 10)
    keys = s.issue("M", "S", 3, 128)  # 128 bits = 2 blocks of 64 each
    assert s.pool_blocks() == 10 - 6 and s.waiting("S") == 3
    assert all(k.size_bits == 128 for k in keys)
    got = s.fetch("S", "M", [k.key_id for k in reversed(keys)])
    assert got == list(reversed(keys))  # same IDs, same bytes, request order
    assert s.waiting() == 0
    with pytest.raises(KeyDeliveryError, match="not found") as e:
        s.fetch("S", "M", [keys[0].key_id])
    assert e.value.status == 400


def test_failures_consume_nothing(tmp_path):
    s = full(tmp_path, 4)
    with pytest.raises(KeyDeliveryError) as e:
        s.issue("M", "S", 5, 64)
    assert e.value.status == 503 and s.pool_blocks() == 4
    keys = s.issue("M", "S", 2, 64)
    ids = [k.key_id for k in keys]
    for caller, master, wanted, status in (
        ("X", "M", ids, 401),  # not the named slave
        ("S", "X", ids, 400),  # another master: not found for this pair
        ("S", "M", [*ids, "00000000-0000-4000-8000-000000000000"], 400),  # one missing
    ):
        with pytest.raises(KeyDeliveryError) as e:
            s.fetch(caller, master, wanted)
        assert e.value.status == status
        assert s.waiting("S") == 2
    assert s.fetch("S", "M", ids) == keys


def test_no_key_material_in_errors_or_repr(tmp_path):
    s = full(tmp_path, 2)
    keys = s.issue("M", "S", 2, 64)
    assert keys[0].material.hex() not in repr(keys) and str(keys[0].material) not in repr(keys)
    for bad in (("X", "M"), ("S", "M")):
        with pytest.raises(KeyDeliveryError) as e:
            s.fetch(
                *bad, [keys[0].key_id, "00000000-0000-4000-8000-000000000000"] if bad[0] == "S" else [keys[0].key_id]
            )
        text = f"{e.value} {e.value.details!r} {e.value!r}"
        assert all(k.material.hex() not in text and repr(k.material) not in text for k in keys)


def test_files_are_private(tmp_path):
    s = full(tmp_path / "d", 1)
    s.issue("M", "S", 1, 64)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    files = sorted((tmp_path / "d").iterdir())
    assert {f.name for f in files} >= {"p.sqlite", "p.sqlite-wal", "p.sqlite-shm"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name


def test_restart_keeps_everything_and_ids_stay_unique(tmp_path):
    s = full(tmp_path, 6)
    first = s.issue("M", "S", 2, 64)
    s.close()
    s = PairStore(tmp_path / "p.sqlite", block_bits=64)
    assert s.pool_blocks() == 4 and s.waiting("S") == 2 and s.last_slot == 0
    assert s.fetch("S", "M", [first[1].key_id]) == [first[1]]
    second = s.issue("M", "S", 4, 64)
    assert len({k.key_id for k in first + second}) == 6 == s.issued_count()
    assert len({k.material for k in first + second}) == 6


def test_concurrent_issuers_never_share_a_key(tmp_path):
    s = full(tmp_path, 200)
    got: list = []
    errors: list = []

    def worker() -> None:
        for _ in range(10):
            try:
                got.extend(s.issue("M", "S", 1, 64))
            except KeyDeliveryError as e:
                errors.append(e.status)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 200 and set(errors) == {503} and len(errors) == 120
    assert len({k.key_id for k in got}) == 200 and len({k.material for k in got}) == 200
    assert s.pool_blocks() == 0


CHILD = textwrap.dedent(
    """
    import sys, hashlib
    from qverify.kms.store import PairStore
    s = PairStore(sys.argv[1], block_bits=64)
    print("ready", flush=True)
    while True:
        for k in s.issue("M", "S", 1, 64):
            print(k.key_id, hashlib.sha256(k.material).hexdigest(), flush=True)
        s.fetch("S", "M", [s.issue("M", "S", 1, 64)[0].key_id])
    """
)


def test_kill_9_loses_nothing_and_delivers_nothing_twice(tmp_path):
    import hashlib

    path = tmp_path / "p.sqlite"
    s = PairStore(path, block_bits=64)
    s.deposit(0, 64.0 * 5000)
    s.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    delivered = []
    deadline = time.monotonic() + 20
    while len(delivered) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline().split()
        if line:
            delivered.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    delivered += [line.split() for line in proc.stdout.read().splitlines() if len(line.split()) == 2]
    assert len(delivered) >= 100
    s = PairStore(path, block_bits=64)
    # Every key the child handed out is still waiting for its slave, exactly as it was handed out.
    got = s.fetch("S", "M", [k for k, _ in delivered])
    assert [hashlib.sha256(k.material).hexdigest() for k in got] == [h for _, h in delivered]
    # Nothing lost or duplicated: each issue took one block; pool + still waiting + fetched = 5000.
    issued = s.issued_count()
    fetched = issued - len(delivered) - s.waiting()
    assert s.pool_blocks() + issued == 5000 and fetched >= 0
    # The remaining pool hands out fresh IDs (never one issued before the kill).
    fresh = s.issue("M", "S", 10, 64)
    assert not {k.key_id for k in fresh} & {k for k, _ in delivered}


class StoreMachine(RuleBasedStateMachine):
    """Random deposits, issues and fetches (right and wrong callers) against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.store = PairStore(Path(self.dir.name) / "p.sqlite", block_bits=64, max_blocks=40)
        self.pool = 0
        self.waiting: dict[str, tuple[str, bytes]] = {}
        self.seen: set[str] = set()
        self.slot = 0

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    @rule(blocks=st.integers(0, 20))
    def deposit(self, blocks: int) -> None:
        self.store.deposit(self.slot, 64.0 * blocks)
        self.slot += 1
        self.pool = min(40, self.pool + blocks)

    @rule(number=st.integers(1, 4), size=st.sampled_from([8, 64, 72, 128]), slave=st.sampled_from(["S", "T"]))
    def issue(self, number: int, size: int, slave: str) -> None:
        need = number * -(-size // 64)
        try:
            keys = self.store.issue("M", slave, number, size)
        except KeyDeliveryError as e:
            assert e.status == 503 and need > self.pool
            return
        assert need <= self.pool
        self.pool -= need
        for k in keys:
            assert k.key_id not in self.seen and len(k.material) == size // 8
            self.seen.add(k.key_id)
            self.waiting[k.key_id] = (slave, k.material)

    @precondition(lambda self: bool(self.waiting))
    @rule(data=st.data(), caller=st.sampled_from(["S", "T"]))
    def fetch(self, data: st.DataObject, caller: str) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.waiting | dict.fromkeys(self.seen))), min_size=1,
                                 max_size=3, unique=True))  # fmt: skip
        try:
            got = self.store.fetch(caller, "M", ids)
        except KeyDeliveryError as e:
            gone = any(i not in self.waiting for i in ids)
            assert e.status == (400 if gone else 401)
            assert gone or any(self.waiting[i][0] != caller for i in ids)
            return
        assert all(self.waiting[i][0] == caller for i in ids)
        assert [k.material for k in got] == [self.waiting.pop(i)[1] for i in ids]

    @invariant()
    def accounts(self) -> None:
        assert self.store.pool_blocks() == self.pool
        assert self.store.waiting() == len(self.waiting)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_key_delivery_error_survives_pickle():
    import pickle

    e = KeyDeliveryError(503, "insufficient amount of key material", [{"keys_available": 0}])
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.status, back.message, back.details, str(back)) == (
        KeyDeliveryError, 503, e.message, e.details, str(e),
    )  # fmt: skip


def test_two_store_objects_on_one_file_still_deliver_once(tmp_path):
    # Two servers started on the same --store folder: SQLite's write lock serialises them.
    one = full(tmp_path, 100)
    two = PairStore(tmp_path / "p.sqlite", block_bits=64)
    assert two.deposit(0, 64.0 * 100) == 0  # slot 0 was deposited by the other: not again
    got: list = []

    def drain(s: PairStore) -> None:
        for _ in range(80):
            try:
                got.extend(s.issue("M", "S", 1, 64))
            except KeyDeliveryError:
                return

    threads = [threading.Thread(target=drain, args=(s,)) for s in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 100 and len({k.key_id for k in got}) == 100 and len({k.material for k in got}) == 100
    assert one.pool_blocks() == two.pool_blocks() == 0
