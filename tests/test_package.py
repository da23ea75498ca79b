"""The helper package's index names every module, and lessons never import the tooling."""

from __future__ import annotations

import re

import nbformat

from utils import ROOT


def test_utils_index_names_every_module():
    import utils

    listed = set(re.findall(r"``utils\.(\w+)``", utils.__doc__))
    modules = {p.stem for p in (ROOT / "utils").glob("*.py") if p.stem != "__init__"} | {"checks"}
    assert listed == modules, f"missing from utils/__init__.py: {sorted(modules - listed)}; stale: {sorted(listed - modules)}"


def test_lessons_do_not_import_course_tooling():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not re.search(r"\b(from|import) tools\b", code), path.name
