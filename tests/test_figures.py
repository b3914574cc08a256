"""qverify draws its figures on its own ``Figure`` objects and writes them to files: it never selects a
matplotlib backend nor touches pyplot's state, so a notebook's inline figures survive a call into it."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import qverify
from qverify.dra.plots import plot_learning_curves
from qverify.network.plot import plot_topology
from qverify.network.topology import load_builtin
from qverify.physics import LCQ_2012

PACKAGE = Path(qverify.__file__).parent


def _pyplot_or_backend_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "matplotlib"
            and any(a.name == "pyplot" for a in node.names)
        ):
            found.append(f"{path.name}:{node.lineno} imports pyplot")
        if isinstance(node, ast.Import) and any(a.name == "matplotlib.pyplot" for a in node.names):
            found.append(f"{path.name}:{node.lineno} imports pyplot")
        if isinstance(node, ast.Attribute) and node.attr in ("use", "switch_backend"):
            if isinstance(node.value, ast.Name) and node.value.id in ("matplotlib", "plt"):
                found.append(f"{path.name}:{node.lineno} selects a backend")
    return found


def test_no_module_selects_a_backend_or_uses_pyplot() -> None:
    uses = [u for p in sorted(PACKAGE.rglob("*.py")) for u in _pyplot_or_backend_uses(p)]
    assert uses == []


def test_the_checker_sees_a_backend_switch(tmp_path: Path) -> None:  # the scan above can fail
    bad = tmp_path / "bad.py"
    bad.write_text('import matplotlib\nimport matplotlib.pyplot as plt\nmatplotlib.use("Agg")\n')
    assert len(_pyplot_or_backend_uses(bad)) == 2


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_plotting_leaves_the_callers_backend_alone(tmp_path: Path, backend: str) -> None:
    before = matplotlib.get_backend()
    matplotlib.use(backend)
    try:
        plot_topology(load_builtin("secoqc"), LCQ_2012, tmp_path / "t.png")
        plot_learning_curves(np.linspace(0, 1, 12).reshape(2, 6), {"static": 0.3}, tmp_path / "c.png")
        assert matplotlib.get_backend() == backend
    finally:
        matplotlib.use(before)
    for name in ("t.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
