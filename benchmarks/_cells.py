"""Run chosen code cells of one of the course's notebooks in a namespace.

The benchmarks train the models the lessons teach, so they read the classes and builders
from the notebook's own (solution) cells instead of keeping a copy that could drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def notebook_namespace(path: Path, prefixes: tuple[str, ...], namespace: dict[str, Any], needs: set[str]) -> dict[str, Any]:
    """Execute, in order, every code cell of ``path`` whose source starts with one of
    ``prefixes`` in ``namespace``; fail with a clear message if a name of ``needs`` is
    still undefined afterwards (the notebook was restructured)."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.startswith(prefixes):
            name = cell.source.split("(")[0].split("=")[0].strip()
            exec(compile(cell.source, f"{path.name}:{name}", "exec"), namespace)  # noqa: S102 -- the project's own notebook
    missing = needs - namespace.keys()
    if missing:
        raise SystemExit(f"{path} has no cell defining {sorted(missing)}: has the notebook been restructured?")
    return namespace
