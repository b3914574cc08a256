"""Third-party log text stays off the terminal; a broken compilation cache never breaks a run."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from qverify.jax_cache import enable_compilation_cache
from qverify.third_party_logs import route_third_party_logs


@pytest.fixture
def restored(monkeypatch):
    # route_third_party_logs changes process-wide settings: undo them after each test.
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    yield monkeypatch
    from jax._src.lib import utils

    utils.absl_set_min_log_level(int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")))


def test_xla_cpp_logs_are_raised_to_fatal_unless_debug_or_user_set(restored):
    route_third_party_logs(debug=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # -vv: XLA's own logs stay visible
    restored.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    route_third_party_logs(debug=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # the user's choice stands
    restored.delenv("TF_CPP_MIN_LOG_LEVEL")
    route_third_party_logs(debug=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_jax_stack_warnings_go_to_debug_others_are_shown(restored, caplog):
    shown: list[str] = []
    restored.setattr(warnings, "showwarning", lambda message, *a, **k: shown.append(str(message)))
    route_third_party_logs(debug=False)
    route_third_party_logs(debug=False)  # idempotent: one wrapper, not two
    caplog.set_level(logging.DEBUG, logger="qverify.third_party")
    warnings.showwarning(UserWarning("Error reading persistent compilation cache entry"), UserWarning,
                         "/venv/lib/python3.11/site-packages/jax/_src/compiler.py", 1)  # fmt: skip
    warnings.showwarning(UserWarning("a finding of the user's own code"), UserWarning, "/home/u/analysis.py", 7)
    records = [r for r in caplog.records if r.name == "qverify.third_party"]
    assert len(records) == 1 and records[0].levelno == logging.DEBUG
    assert "persistent compilation cache" in records[0].getMessage()
    assert shown == ["a finding of the user's own code"]


def test_unusable_cache_folder_warns_once_and_runs_without(tmp_path, caplog, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="qverify.jax_cache"):
        assert enable_compilation_cache(blocker / "jax") is None
    assert len(caplog.records) == 1 and "compiling without it" in caplog.records[0].getMessage()
    caplog.clear()

    # A full disk: the folder exists, but writing into it fails.
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full)
    with caplog.at_level(logging.WARNING, logger="qverify.jax_cache"):
        assert enable_compilation_cache(tmp_path / "ok") is None
    assert len(caplog.records) == 1 and "No space left" in caplog.records[0].getMessage()


_PROGRAM = (
    "import sys, jax, jax.numpy as jnp\n"
    "from qverify.third_party_logs import route_third_party_logs\n"
    "from qverify.jax_cache import enable_compilation_cache\n"
    "route_third_party_logs(debug=False)\n"
    "enable_compilation_cache(sys.argv[1])\n"
    "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)\n"
    "print(float(jax.jit(lambda x: (jnp.sin(x) * 3.0 + jnp.arange(19.0)).sum())(jnp.ones(19))))\n"
)


def test_corrupted_cache_entry_is_recompiled_quietly(tmp_path):
    folder = tmp_path / "jax"
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "TF_CPP_MIN_LOG_LEVEL")}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _PROGRAM, str(folder)], capture_output=True, text=True,
                              env=env, check=False)  # fmt: skip

    first = run()
    assert first.returncode == 0, first.stderr
    entries = [p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".probe")]
    assert entries, "the program was not cached"
    for p in entries:
        p.write_bytes(b"\x00garbage" * 7)
    second = run()
    assert second.returncode == 0, second.stderr
    assert float(second.stdout) == pytest.approx(float(first.stdout), rel=1e-6)
    assert second.stderr.strip() == "", second.stderr  # JAX's warning went to debug, not the terminal
