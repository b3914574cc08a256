"""Session-wide test setup."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _jax_compilation_cache() -> None:
    # Tests build the same jitted programs many times (fresh closures per call); the session's
    # compilation cache (created by the root conftest.py and inherited through JAX_COMPILATION_CACHE_DIR
    # by every xdist worker and notebook kernel) turns the repeats into cache hits, without sharing
    # state between runs. Enabled here in-process too, in case jax read its configuration earlier.
    import os

    from qverify.jax_cache import enable_compilation_cache

    enable_compilation_cache(os.environ["JAX_COMPILATION_CACHE_DIR"])


def _mappings() -> tuple[int, int] | None:
    """(memory mappings of this process, the kernel's limit), or None off Linux."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            used = sum(1 for _ in maps)
        with open("/proc/sys/vm/max_map_count") as limit:
            return used, int(limit.read())
    except OSError:
        return None


@pytest.fixture(autouse=True)
def _release_compiled_code() -> None:
    # Each compiled XLA program keeps its code in memory mappings until JAX's caches drop it, and a
    # process past vm.max_map_count (65530 by default) dies in LLVM ("Cannot allocate memory", then
    # SIGSEGV), taking an xdist worker with it. The library compiles once per shape, but a worker
    # runs hundreds of tests with different shapes; past half the limit, the caches are cleared
    # (later compiles are hits in the session's persistent cache).
    m = _mappings()
    if m is not None and m[0] > m[1] // 2:
        import gc

        import jax

        jax.clear_caches()
        gc.collect()
