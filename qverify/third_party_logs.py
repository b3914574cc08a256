"""Keep third-party log text (XLA's C++ logs, JAX's Python warnings) off the user's terminal.

XLA writes C++ log lines straight to stderr, e.g. on a busy machine ``E1207 … slow_operation_alarm.cc
… Very slow compile? If you want to file a bug …``: an alarm about compile time, not an error of the
run, which a newcomer reads as a crash report. JAX reports a corrupted or unwritable persistent-cache
entry with ``warnings.warn`` and then simply recompiles. :func:`route_third_party_logs` (called by the
CLI) raises XLA's minimum C++ log level to FATAL and sends warnings raised inside jax/jaxlib/flax/optax
to the ``qverify.third_party`` logger at DEBUG level, so ``qverify -vv …`` shows them and normal use
does not. With ``-vv`` XLA's C++ logs are left as they are. A user who set ``TF_CPP_MIN_LOG_LEVEL``
keeps their choice. Library users are not affected unless they call the function themselves.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger("qverify.third_party")

# Packages whose warnings are operational chatter of the compiler stack, not findings of a run.
_QUIET_PACKAGES = ("jax", "jaxlib", "flax", "optax", "flashbax", "chex", "orbax")


def _from_quiet_package(filename: str) -> bool:
    parts = filename.replace("\\", "/").split("/")
    return any(p in _QUIET_PACKAGES for p in parts[:-1])


def _make_showwarning(previous: Callable[..., None]) -> Callable[..., None]:
    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if _from_quiet_package(filename):
            log.debug("%s:%d: %s: %s", filename, lineno, category.__name__, message)
        else:
            previous(message, category, filename, lineno, file, line)

    showwarning._qverify_routed = True  # type: ignore[attr-defined]
    return showwarning


def route_third_party_logs(debug: bool) -> None:
    """Route XLA's C++ log lines and JAX-stack warnings to DEBUG (see the module docstring).

    Args:
        debug: True when the user asked for debug output (``-vv``): XLA's C++ logs stay visible.
    """
    current: Any = warnings.showwarning
    if not getattr(current, "_qverify_routed", False):
        warnings.showwarning = _make_showwarning(current)
    if debug or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    # Read by worker processes started later (XLA reads it when it first logs).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        from jax._src.lib import utils as jaxlib_utils

        # The process already loaded XLA: set absl's level directly (what jax_logging_level does,
        # without also attaching jax's own stderr handler to the jax loggers).
        jaxlib_utils.absl_set_min_log_level(3)
    except (ImportError, AttributeError):  # an older or newer jaxlib: the variable above still applies
        log.debug("jaxlib has no absl_set_min_log_level; relying on TF_CPP_MIN_LOG_LEVEL")
