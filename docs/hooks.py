"""MkDocs hooks: every command output and README excerpt on the site is produced at build time.

``<!-- run: qverify ARGS -->`` becomes a console block with the command and what it printed, run in
this build (``{tmp}`` in ARGS is a scratch folder of the build); a command that fails fails the build.
``<!-- readme: HEADING -->`` becomes the README's section under that heading, so the README and
the site say the same thing from one source.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = re.compile(r"<!-- run: qverify (?P<args>.+?) -->")
README = re.compile(r"<!-- readme: (?P<heading>.+?) -->")
_TMP = tempfile.mkdtemp(prefix="qverify-docs-")


def _run(match: re.Match[str]) -> str:
    args = match["args"].replace("{tmp}", _TMP)
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", "from qverify.cli import main; main()", "-q", *shlex.split(args)],
                       cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"docs example `qverify {args}` exited {r.returncode}: {r.stderr[-1500:]}")
    shown = match["args"].replace("{tmp}", "out")
    body = r.stdout.rstrip().replace(_TMP, "out")
    return f"```console\n$ qverify {shown}\n{body}\n```\n<small>Printed by this command when these pages were built.</small>\n"


def _readme_section(match: re.Match[str]) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = match["heading"].strip()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+) (.*)$", line)
        if m and m[2].strip() == heading:
            level = len(m[1])
            body = []
            for nxt in lines[i + 1 :]:
                h = re.match(r"^(#+) ", nxt)
                if h and len(h[1]) <= level:
                    break
                body.append(nxt)
            return "\n".join(body).strip() + "\n"
    raise RuntimeError(f"README.md has no section {heading!r}")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs hook signature)
    markdown = README.sub(_readme_section, markdown)
    return RUN.sub(_run, markdown)
