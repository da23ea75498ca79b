"""Every relative link in the Markdown pages and the notebooks' prose points to a file or
folder that exists (a learner who follows one must not land on a 404)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from utils import ROOT

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "data" / "README.md"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "labs").glob("*.ipynb"))
# [text](target) and [label]: target; the target up to a space, ')' or '#'
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)|^\[[^\]]+\]:\s*(\S+)", re.M)


def relative_targets(text: str) -> list[str]:
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_the_link_pattern_finds_relative_links_only():
    text = "[a](docs/x.md) [b](https://e.org/y) [c](../z.md#part) [d](#anchor)\n[e]: data/README.md\n[f]: https://x"
    assert relative_targets(text) == ["docs/x.md", "../z.md", "data/README.md"]


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    if path.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    missing = [t for t in relative_targets(text) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to files that do not exist: {missing}"
