"""The persistent compilation cache: where it lives and that JAX writes to it."""

from __future__ import annotations

from pathlib import Path

from qverify.jax_cache import cache_dir, enable_compilation_cache


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "jax"
    monkeypatch.delenv("QVERIFY_CACHE_DIR")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "j"))
    assert cache_dir() == tmp_path / "j"  # a folder already given to JAX (e.g. by a parent process)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "qverify" / "jax"


def test_compiled_programs_land_in_the_cache(tmp_path):
    # In a fresh process: JAX initialises its cache once per process, so the session's own cache
    # (tests/conftest.py) must not decide this test.
    import subprocess
    import sys

    code = (
        "import sys, jax, jax.numpy as jnp\n"
        "from qverify.jax_cache import enable_compilation_cache\n"
        "folder = enable_compilation_cache(sys.argv[1])\n"
        "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)\n"
        "jax.jit(lambda x: jnp.sin(x) * 3.0 + jnp.arange(17.0))(jnp.ones(17)).block_until_ready()\n"
        "print(folder)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "jax")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == tmp_path / "jax"
    assert any((tmp_path / "jax").iterdir())


def test_unwritable_cache_folder_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert enable_compilation_cache(blocker / "jax") is None
