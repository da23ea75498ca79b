"""What the training benchmarks share: the lesson's own cells, and how a result is recorded.

The benchmarks train the models the lessons teach, so they read the classes and builders
from the notebook's own (solution) cells instead of keeping a copy that could drift; each
prints its result as one JSON object, with the machine it ran on, and appends it to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def record(args: argparse.Namespace, figures: dict[str, Any], indent: int | None = None) -> dict[str, Any]:
    """The run's switches (``args``) and ``figures`` with the machine's load and kind: printed
    as JSON, appended as one line to ``args.json`` when it is set, and returned."""
    import keras

    result = {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, **figures,
              "load": round(os.getloadavg()[0], 2), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "keras": keras.__version__}
    print(json.dumps(result, indent=indent))
    if getattr(args, "json", None):
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as f:
            f.write(json.dumps(result) + "\n")
    return result
