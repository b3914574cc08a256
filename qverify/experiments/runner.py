"""Run tasks locally (process pool) or on Ray, storing every finished task at once (SQLite).

The store holds one row per finished task, keyed by :attr:`Task.key`; a resumed sweep skips the
keys already there, so an interrupted sweep loses nothing that had finished and repeats nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from qverify.errors import ChoiceError, QverifyError
from qverify.experiments.grid import Task, run_seeds, seed_batches, spread_programs
from qverify.interrupts import check as check_interrupt

EXECUTORS = ("local", "ray")


class ResultStore:
    """SQLite file with one JSON row per finished task."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, row TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def put(self, key: str, row: dict[str, Any]) -> None:
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO results (key, row) VALUES (?, ?)", (key, json.dumps(row)))

    def keys(self) -> set[str]:
        with self._connect() as con:
            return {k for (k,) in con.execute("SELECT key FROM results")}

    def rows(self) -> list[dict[str, Any]]:
        with self._connect() as con:
            return [json.loads(r) for (r,) in con.execute("SELECT row FROM results ORDER BY key")]


def check_ray_address(address: str | None) -> None:
    """Connect to Ray before any work, or raise a one-line error."""
    try:
        import ray
    except ImportError:
        raise QverifyError('the Ray executor needs Ray: pip install "qverify[ray]"') from None
    if ray.is_initialized():
        return
    if address and address != "auto":
        import socket

        hostport = address.split("://", 1)[-1]
        host, _, port = hostport.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except (OSError, ValueError) as exc:
            raise QverifyError(f"Ray address {address!r} cannot be reached: {exc}") from None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 num_cpus=None if address else 2)  # fmt: skip
    except Exception as exc:  # Ray raises ConnectionError and others for unreachable clusters
        raise QverifyError(f"Ray address {address!r} cannot be reached: {type(exc).__name__}: {exc}") from None


def run_tasks(
    tasks: Iterable[Task],
    store: ResultStore,
    executor: str = "local",
    workers: int = 2,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Run the tasks not yet in ``store``; returns how many ran. ``progress(done, total)``.

    Tasks that differ only in seed run together, vmapped (:func:`~qverify.experiments.grid.run_seeds`);
    every row is stored as soon as its unit finishes.
    """
    if executor not in EXECUTORS:
        raise ChoiceError("executor", executor, EXECUTORS)
    todo_all = list(tasks)
    done_keys = store.keys()
    todo = [t for t in todo_all if t.key not in done_keys]
    total = len(todo_all)
    finished = total - len(todo)
    if progress is not None:
        progress(finished, total)
    if not todo:
        return 0
    if executor == "ray":
        check_ray_address(address)
        import ray

        remote = ray.remote(run_seeds)
        pending = {remote.remote(u): u for u in seed_batches(todo)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                unit = pending.pop(ref)
                for t, row in zip(unit, ray.get(ref), strict=True):
                    store.put(t.key, row)
                finished += len(unit)
                if progress is not None:
                    progress(finished, total)
        return len(todo)
    if workers <= 1:
        for unit in seed_batches(todo):
            for t, row in zip(unit, run_seeds(unit), strict=True):
                store.put(t.key, row)
            finished += len(unit)
            if progress is not None:
                progress(finished, total)
        return len(todo)
    with TaskPool(store, executor, workers, address, progress) as pool:
        pool.submit(todo_all)  # finished tasks count as done, as above
        pool.wait()
    return len(todo)


class TaskPool:
    """Tasks submitted in batches and run while the caller works on something else.

    Locally, spawned worker processes run them; every finished task is stored at once (from the
    pool's result thread), so an interrupt loses nothing that had finished. The unit of work is a
    group of tasks that differ only in seed (:func:`~qverify.experiments.grid.seed_batches`), run
    vmapped; its rows are stored together. ``caller_busy``: the
    caller works beside the pool (training agents) and counts as one of the ``workers``, so the
    pool starts with one process fewer; when the caller reaches :meth:`wait` with at least
    :attr:`LATE_WORKER_MIN_TASKS` tasks not yet handed out, the missing process is added and takes
    its share of them. Tasks are handed to the processes
    a few at a time from one backlog, so a process added late still finds work. Every task runs in
    a single-threaded worker, whichever one: the numbers do not depend on the schedule.
    With ``workers <= 1`` or Ray, tasks run at :meth:`wait`. Use as a context manager: leaving it
    (also by an exception) stops the workers.
    """

    AHEAD = 2
    """Units handed to each worker process ahead of the one it runs."""
    LATE_WORKER_MIN_TASKS = 50
    """Backlog that pays for a late worker: it starts from nothing (imports, compilations), which on
    2 cores costs about as much as running a few dozen tasks."""

    def __init__(self, store: ResultStore, executor: str = "local", workers: int = 2, address: str | None = None,
                 progress: Callable[[int, int], None] | None = None, caller_busy: bool = False) -> None:  # fmt: skip
        if executor not in EXECUTORS:
            raise ChoiceError("executor", executor, EXECUTORS)
        self.store, self.executor, self.workers, self.address = store, executor, workers, address
        self.progress, self.caller_busy = progress, caller_busy
        self.total = self.finished = 0
        # One list per submit, run as its own seed batches: the same units (hence the same compiled
        # programs, shared through the persistent cache) as a pool of workers would run.
        self.deferred: list[list[Task]] = []
        self.queued: set[str] = set()
        self.backlog: deque[tuple[Task, ...]] = deque()
        self.in_flight: list[int] = []  # per pool
        self.sizes: list[int] = []  # processes per pool
        self.errors: list[BaseException] = []
        self.pools: list[Any] = []  # JAX and forked children do not mix: workers are spawned
        self._lock = threading.Lock()

    @property
    def local(self) -> bool:
        return self.executor == "local" and self.workers > 1

    def _add_pool(self, size: int) -> None:
        pool = multiprocessing.get_context("spawn").Pool(size, initializer=_die_with_parent)
        with self._lock:  # result threads iterate the pools while feeding them
            self.pools.append(pool)
            self.in_flight.append(0)
            self.sizes.append(size)

    def __enter__(self) -> TaskPool:
        if self.local:
            self._add_pool(self.workers - 1 if self.caller_busy else self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on an interrupt (Ctrl-C, SIGTERM turned into SystemExit by the CLI): the workers are
        # killed at once; every task already stored stays stored, so --resume repeats nothing.
        with self._lock:
            self.backlog.clear()
            pools, self.pools = self.pools, []
        for pool in pools:
            pool.terminate()
            pool.join()

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(self.finished, self.total)

    def submit(self, tasks: Iterable[Task]) -> None:
        """Queue the tasks not yet in the store (a task already submitted is skipped)."""
        done = self.store.keys()
        todo = []
        for t in tasks:
            if t.key in self.queued:
                continue
            self.queued.add(t.key)
            self.total += 1
            if t.key in done:
                self.finished += 1
            else:
                todo.append(t)
        self._tick()
        if not self.pools:
            if todo:
                self.deferred.append(todo)
            return
        with self._lock:
            self.backlog.extend(spread_programs(seed_batches(todo), task_of=lambda unit: unit[0]))
        self._feed()

    def _feed(self) -> None:
        """Hand backlog tasks to every pool that has fewer than ``AHEAD`` per process in flight."""
        with self._lock:
            for i, pool in enumerate(self.pools):
                while self.backlog and self.in_flight[i] < self.AHEAD * self.sizes[i]:
                    unit = self.backlog.popleft()
                    self.in_flight[i] += 1
                    pool.apply_async(_keyed_rows, (unit,), callback=self._stored(i),
                                     error_callback=self._failed(i))  # fmt: skip

    def _stored(self, i: int) -> Callable[[list[tuple[str, dict[str, Any]]]], None]:
        def stored(items: list[tuple[str, dict[str, Any]]]) -> None:  # runs in pool i's result thread
            for key, row in items:
                self.store.put(key, row)
            with self._lock:
                self.finished += len(items)
                self.in_flight[i] -= 1
            self._tick()
            try:
                self._feed()
            except ValueError:  # the pool is being shut down (interrupt): nothing more to hand out
                pass

        return stored

    def _failed(self, i: int) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            with self._lock:
                self.errors.append(exc)
                self.in_flight[i] -= 1

        return failed

    def wait(self) -> None:
        """Block until every submitted task is stored; re-raises a task's exception."""
        if self.deferred:
            batches, self.deferred = self.deferred, []
            for todo in batches:
                base = self.finished

                def moved(done: int, _total: int, base: int = base) -> None:
                    self.finished = base + done
                    self._tick()

                run_tasks(todo, self.store, self.executor, 1, self.address, moved)
            self._tick()
        backlog = sum(len(u) for u in self.backlog)
        if self.pools and self.caller_busy and len(self.pools) == 1 and backlog >= self.LATE_WORKER_MIN_TASKS:
            self._add_pool(1)  # the caller's core is free now
            self._feed()
        while True:
            with self._lock:
                busy = bool(self.backlog) or any(self.in_flight)
            if self.errors:
                raise self.errors[0]
            if not busy:
                break
            time.sleep(0.2)
            check_interrupt()


def _keyed_rows(unit: tuple[Task, ...]) -> list[tuple[str, dict[str, Any]]]:
    try:
        return [(t.key, row) for t, row in zip(unit, run_seeds(unit), strict=True)]
    except QverifyError:
        raise  # picklable by construction
    except Exception as exc:
        # An exception the parent cannot unpickle would stall the pool's result thread; a plain
        # RuntimeError carrying the tasks and the cause always crosses the process boundary.
        t = unit[0]
        raise RuntimeError(
            f"tasks {[u.key for u in unit]} ({t.topology}, {t.policy}, seeds {[u.seed for u in unit]}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, ask the kernel to SIGTERM this worker when its parent dies
    (even by SIGKILL), so no worker outlives an interrupted run."""
    import ctypes
    import os
    import signal
    import sys

    # One thread per worker: the workers and the main process share the cores, and XLA's own
    # thread pools per process would only fight over them (a slot step is far too small to split).
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except OSError:
            pass
