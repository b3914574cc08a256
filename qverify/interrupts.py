"""Termination requests (SIGTERM) that are not lost where Python swallows exceptions.

A signal handler runs in the main thread between two bytecodes, wherever that thread is. When that
is inside a garbage-collection or weakref callback (JAX registers one), the ``SystemExit`` the
handler raises is printed as "Exception ignored in ..." and dropped, and the run would go on as if
nothing had happened. The request is therefore also recorded, and long-running loops call
:func:`check` at points where unwinding is safe; the first call in the main thread after a lost
request raises it again.
"""

from __future__ import annotations

import threading
from typing import Any

_requested: list[int] = []  # signal numbers received by this process (signals are process-wide state)


def terminate(signum: int, frame: Any = None) -> None:
    """Signal handler: record the request and unwind like Ctrl-C (exit status 128 + signum).

    Inside the import system (``frame`` in importlib's bootstrap) it only records: an exception
    raised there, e.g. in a module lock's weakref callback between taking and releasing the global
    import lock, is dropped and can leave that lock held, so that every later import in any thread
    waits forever. The next :func:`check` raises the request instead.
    """
    _requested.append(signum)
    if frame is not None and str(getattr(frame.f_code, "co_filename", "")).startswith("<frozen importlib"):
        return
    raise SystemExit(128 + signum)


def check() -> None:
    """Raise the recorded termination request, if any (main thread only; a no-op elsewhere).

    >>> check()  # nothing requested: returns
    """
    if _requested and threading.current_thread() is threading.main_thread():
        raise SystemExit(128 + _requested[0])
