"""A SIGTERM whose SystemExit is swallowed (raised inside a gc callback) is not lost."""

from __future__ import annotations

import gc
import signal
import threading

import pytest

from qverify import interrupts


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing is the point
def test_request_lost_in_a_gc_callback_is_raised_at_the_next_check(monkeypatch):
    monkeypatch.setattr(interrupts, "_requested", [])

    def callback(phase: str, _info: dict) -> None:
        if phase == "start":
            interrupts.terminate(signal.SIGTERM)  # as if the signal landed here

    gc.callbacks.append(callback)
    try:
        gc.collect()  # Python prints "Exception ignored in ..." and goes on
    finally:
        gc.callbacks.remove(callback)
    with pytest.raises(SystemExit) as exc:
        interrupts.check()
    assert exc.value.code == 128 + signal.SIGTERM


def test_check_never_raises_outside_the_main_thread(monkeypatch):
    monkeypatch.setattr(interrupts, "_requested", [signal.SIGTERM])
    caught: list[BaseException] = []

    def worker() -> None:
        try:
            interrupts.check()
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert caught == []
    with pytest.raises(SystemExit):
        interrupts.check()


def test_nothing_requested_is_a_no_op(monkeypatch):
    monkeypatch.setattr(interrupts, "_requested", [])
    interrupts.check()


def test_training_raises_a_lost_request_after_the_chunk_in_progress(monkeypatch):
    # A request lost during training (e.g. in an import's weakref callback) must not wait for the
    # whole training: `qverify reproduce` trains for minutes between its other checks.
    from qverify.dra import dqn
    from qverify.dra import train as T

    monkeypatch.setattr(interrupts, "_requested", [signal.SIGTERM])
    done: list[int] = []
    with pytest.raises(SystemExit) as exc:
        T.train(T.small_instance(), dqn.DQNConfig(), episodes=4, chunks=4, progress=done.append)
    assert exc.value.code == 128 + signal.SIGTERM
    assert done == [1]


def test_a_request_inside_the_import_system_is_only_recorded(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(interrupts, "_requested", [])
    in_import = SimpleNamespace(f_code=SimpleNamespace(co_filename="<frozen importlib._bootstrap>"))
    interrupts.terminate(signal.SIGTERM, in_import)  # returns: raising there can leave the import lock held
    with pytest.raises(SystemExit) as exc:
        interrupts.check()
    assert exc.value.code == 128 + signal.SIGTERM
    elsewhere = SimpleNamespace(f_code=SimpleNamespace(co_filename=__file__))
    with pytest.raises(SystemExit):
        interrupts.terminate(signal.SIGTERM, elsewhere)
