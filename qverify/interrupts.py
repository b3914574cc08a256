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


def terminate(signum: int, _frame: Any = None) -> None:
    """Signal handler: record the request and unwind like Ctrl-C (exit status 128 + signum)."""
    _requested.append(signum)
    raise SystemExit(128 + signum)


def check() -> None:
    """Raise the recorded termination request, if any (main thread only; a no-op elsewhere).

    >>> check()  # nothing requested: returns
    """
    if _requested and threading.current_thread() is threading.main_thread():
        raise SystemExit(128 + _requested[0])
