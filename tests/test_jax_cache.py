"""The persistent compilation cache: where it lives and that JAX writes to it."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp

from qverify.jax_cache import cache_dir, enable_compilation_cache


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "jax"
    monkeypatch.delenv("QVERIFY_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "qverify" / "jax"


def test_compiled_programs_land_in_the_cache(tmp_path):
    folder = enable_compilation_cache(tmp_path / "jax")
    assert folder == tmp_path / "jax"
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    try:

        @jax.jit
        def f(x: jax.Array) -> jax.Array:
            return jnp.sin(x) * 3.0 + jnp.arange(17.0)

        f(jnp.ones(17)).block_until_ready()
        assert any(Path(folder).iterdir())
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def test_unwritable_cache_folder_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert enable_compilation_cache(blocker / "jax") is None
