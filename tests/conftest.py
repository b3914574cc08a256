"""Session-wide test setup."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _jax_compilation_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests build the same jitted programs many times (fresh closures per call); a compilation cache
    # private to this session turns the repeats into cache hits without sharing state between runs.
    # Under pytest-xdist every worker has its own base folder below one shared root: the workers
    # share the cache there (JAX writes entries atomically), so a program compiles once per session.
    import os

    from qverify.jax_cache import enable_compilation_cache

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / "jax-cache"
    folder.mkdir(exist_ok=True)
    enable_compilation_cache(folder)
