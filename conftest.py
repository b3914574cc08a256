"""Test-session setup shared by every collected item: the tests, the doctests in ``qverify/`` and the
notebooks (whose kernels are separate processes).

One compilation cache private to the session, shared by everything it starts: the controller
creates the folder and exports it through JAX's environment variables before pytest-xdist spawns its
workers, so the workers and every notebook kernel they launch inherit it. A program compiled by a
notebook (the notebooks run first) is then a cache hit in the tests that build the same program,
and the other way round. The folder is removed when the session ends, so no run sees another's.

Items marked ``after_notebooks`` are moved to the end of the collection. pytest-xdist hands each
worker a contiguous share of the items in collection order, and the notebooks come first, so a test
that builds the programs a notebook builds (``qverify reproduce --quick`` and notebook 06 run the
same sizes) then finds them compiled instead of compiling them at the same time on the other core.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE_ENV = {
    # qverify.jax_cache.enable_compilation_cache sets the same values in-process.
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: it inherited the controller's environment
        return
    folder = tempfile.mkdtemp(prefix="qverify-test-jax-cache-")
    config.stash[_FOLDER] = folder
    config.stash[_SAVED] = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR", *_CACHE_ENV)}
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.update(_CACHE_ENV)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)  # stable


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is None:
        return
    for k, v in config.stash[_SAVED].items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(folder, ignore_errors=True)


_FOLDER = pytest.StashKey[str]()
_SAVED = pytest.StashKey[dict]()
