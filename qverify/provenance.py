"""Where a result came from: qverify's version and commit, Python, platform, package versions.

Every ``metrics.json`` and every ``--json`` output carries :func:`environment` so that a figure that
differs between two machines can be traced to the versions that produced it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from qverify import __version__

PACKAGES = ("numpy", "scipy", "qiskit", "qiskit-aer", "jax", "jaxlib", "flax", "optax", "networkx")
"""Packages whose versions can change qverify's numbers."""


def git_commit() -> str | None:
    """The commit of the source checkout qverify runs from (``+dirty`` if modified), else None."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@cache
def environment() -> dict[str, Any]:
    """qverify version and commit, Python, platform and the versions of :data:`PACKAGES`.

    >>> env = environment()
    >>> env["qverify_version"] == __version__ and "numpy" in env["packages"]
    True
    """
    return {
        "qverify_version": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": {name: _version(name) for name in PACKAGES},
    }
