"""Every module of the package imports in a fresh interpreter with the declared dependencies."""

from __future__ import annotations

import subprocess
import sys

from qverify._imports import failures, module_names


def test_every_module_imports_in_a_fresh_process():
    # A fresh interpreter: modules imported by other tests cannot mask a broken import chain.
    r = subprocess.run([sys.executable, "-m", "qverify._imports"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert f"{len(module_names())} of {len(module_names())} modules import" in r.stdout


def test_a_missing_module_is_named():
    failed = failures(["qverify.physics", "qverify_no_such_module"])
    assert list(failed) == ["qverify_no_such_module"]
    assert "ModuleNotFoundError" in failed["qverify_no_such_module"]


def test_the_walk_covers_the_gymnax_wrapper():
    # gymnax imports six without declaring it; this module is where a missing six shows.
    assert "qverify.dra.gymnax_env" in module_names()
