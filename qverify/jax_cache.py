"""A persistent JAX compilation cache, so a second ``train``/``evaluate``/``reproduce`` does not recompile.

The folder is ``$QVERIFY_CACHE_DIR/jax`` if set, else JAX's own ``$JAX_COMPILATION_CACHE_DIR`` if set,
else ``$XDG_CACHE_HOME/qverify/jax`` (``~/.cache/qverify/jax``).
The CLI turns it on; library users call :func:`enable_compilation_cache` themselves (the library never
changes JAX's configuration on import). The environment variable is set too, so worker processes
started afterwards use the same cache.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where compiled programs are kept (see the module docstring)."""
    if os.environ.get("QVERIFY_CACHE_DIR"):
        return Path(os.environ["QVERIFY_CACHE_DIR"]) / "jax"
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        # A folder the user (or a parent process, e.g. a test session) already gave JAX.
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "qverify" / "jax"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at ``path`` (default :func:`cache_dir`).

    Returns the folder, or None when it cannot be created or written (a full disk, a read-only
    mount, a file in the way): then one warning is logged and the run simply compiles. A corrupted
    entry is not fatal either: JAX fails to read it, recompiles and overwrites it (JAX's warning about
    it is routed to debug level by :mod:`qverify.third_party_logs` in the CLI).
    """
    import jax

    folder = Path(path) if path is not None else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A folder can exist and still refuse writes: probe with a real file before JAX relies on it.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-") as probe:
            probe.write(b"qverify")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        log.warning(
            "compilation cache disabled: %s is not usable (%s); compiling without it", folder, exc.strerror or exc
        )
        return None
    # Worker processes (spawned) read the same settings from the environment.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every program that took noticeable time to compile, however small its binary.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
