"""Session-wide test setup."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _jax_compilation_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests build the same jitted programs many times (fresh closures per call); a compilation cache
    # private to this session turns the repeats into cache hits without sharing state between runs.
    from qverify.jax_cache import enable_compilation_cache

    enable_compilation_cache(tmp_path_factory.mktemp("jax-cache"))
