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
