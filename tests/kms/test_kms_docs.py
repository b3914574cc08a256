"""The KMS docs: the Python example of docs/kms.md runs as written; the pages are in the mkdocs nav."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_python_example_runs(tmp_path):
    page = (ROOT / "docs" / "kms.md").read_text()
    code = re.search(r"## From Python\n\n```python\n(.*?)```", page, re.S)
    assert code
    r = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "stores").iterdir() if p.suffix == ".sqlite") == ["pair-A--B.sqlite"]


def test_pages_are_in_the_nav_and_readme_points_to_them():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert "kms.md" in nav and "api/kms.md" in nav
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Keys for applications", 1)[1].split("\n## ", 1)[0]
    assert "qverify serve --dev-pki" in section and "curl --cacert" in section and "docs/kms.md" in section
