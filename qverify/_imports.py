"""Import every module of the installed package, each in turn, and name any that fails.

``python -m qverify._imports`` exits 1 listing ``module: ModuleNotFoundError: No module named 'six'``
for each failure, so a dependency that is used but not declared in ``pyproject.toml`` fails by name
in a fresh environment (CI runs it in one; ``tests/test_imports.py`` runs it in a subprocess).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def module_names() -> list[str]:
    """Every module and subpackage of ``qverify``, sorted, this one excluded."""
    import qverify

    names = ["qverify"]
    for info in pkgutil.walk_packages(qverify.__path__, prefix="qverify."):
        if info.name != "qverify._imports" and not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def failures(names: list[str]) -> dict[str, str]:
    """``{module: "ErrorType: message"}`` for each module of ``names`` that does not import."""
    failed: dict[str, str] = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any import-time failure is what this check reports
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


def main() -> int:
    names = module_names()
    failed = failures(names)
    for name, why in failed.items():
        print(f"{name}: {why}", file=sys.stderr)
    print(f"imports: {len(names) - len(failed)} of {len(names)} modules import")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
