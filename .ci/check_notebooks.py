"""CI check of the tutorials: executed in full by the test run, and their figures on the built site.

``executed NB...``: every code cell of each notebook ran (an execution count), none left an error
output, and every cell that draws a figure (``plt.subplots(``, ``plt.figure(``, ``display(Image(``)
shows one: a library call that switched matplotlib's backend would silently drop the later ones. ``rendered --site DIR NB...``: each notebook's
page exists in the built site and carries at least as many embedded PNG images as the notebook has
PNG outputs. Exits 1 naming the notebook and what is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DRAWS = re.compile(r"plt\.(subplots|figure)\(|display\(Image\(")


def _pngs(nb: dict) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb["cells"] for out in c.get("outputs", []))


def executed(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    idle = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    problems = [f"code cells {idle} were not executed"] if idle else []
    problems += [f"code cells {failed} have an error output"] if failed else []
    blank = [i for i, c in enumerate(code) if DRAWS.search("".join(c["source"]))
             and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]  # fmt: skip
    problems += [f"code cells {blank} draw a figure but show none"] if blank else []
    return problems


def rendered(path: Path, site: Path) -> list[str]:
    page = site / "tutorials" / path.stem / "index.html"
    if not page.is_file() or page.stat().st_size == 0:
        return [f"no page {page}"]
    want = _pngs(json.loads(path.read_text(encoding="utf-8")))
    # Output images only: the page's stylesheet embeds PNGs of its own as url(data:image/png...).
    have = page.read_text(encoding="utf-8").count('src="data:image/png;base64,')
    return [] if have >= want else [f"{have} embedded PNG images on its page, the notebook has {want}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("executed", "rendered"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--site", type=Path, help="the built site's folder (for 'rendered')")
    args = parser.parse_args(argv)
    if args.what == "rendered" and args.site is None:
        parser.error("rendered needs --site")
    failed = False
    for nb in args.notebooks:
        problems = executed(nb) if args.what == "executed" else rendered(nb, args.site)
        for p in problems:
            print(f"{nb}: {p}", file=sys.stderr)
        failed |= bool(problems)
    if not failed:
        print(f"notebooks {args.what}: {len(args.notebooks)} OK")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
