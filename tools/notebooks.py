"""Execute notebooks headless and keep them in one canonical form.

Canonical form (like tensorflow/docs ``nbfmt`` and ``nbdev_clean``): nbformat 4.5,
sorted keys, one-space JSON indent, allow-listed metadata only (kernel ``python3``),
cell ids numbered in order, only ``tags`` in cell metadata, no empty cells, no trailing
blank lines, no ``at 0x7f...`` addresses or execution timestamps in outputs.

Usage::

    python -m tools.notebooks run [NOTEBOOK ...]   # execute in place (default: all of notebooks/)
    python -m tools.notebooks fmt [--check]        # canonicalise notebooks/ and labs/

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat

from tools import files
from utils import ROOT

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def python_source(source: str) -> str:
    """A code cell's source as plain Python, for ``ast.parse``: IPython magics and shell
    escapes become ``pass`` at their indentation (so an ``if`` whose body they are still
    parses).

    >>> print(python_source("if colab:\\n    !pip install x\\n%matplotlib inline\\nx = 1"))
    if colab:
        pass
    pass
    x = 1
    """
    lines = source.split("\n")
    return "\n".join(l[: len(l) - len(l.lstrip())] + "pass" if l.lstrip().startswith(("%", "!")) else l for l in lines)


def canonicalize(nb: Any) -> Any:
    """Return ``nb`` in canonical form (modified in place and returned)."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict(
        {
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
        }
    )
    cells = []
    for cell in nb.cells:
        source = "\n".join(line.rstrip() for line in cell.source.strip("\n").split("\n"))
        if not source.strip():
            continue
        cell.source = source
        tags = sorted(set(cell.get("metadata", {}).get("tags", [])))
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        if "attachments" in cell and not cell["attachments"]:
            del cell["attachments"]
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("execute_result", "display_data"):
                    data = output.get("data", {})
                    if "text/plain" in data:
                        data["text/plain"] = _ADDRESS.sub("", data["text/plain"])
                    output["metadata"] = {k: v for k, v in output.get("metadata", {}).items() if v}
                    output.pop("transient", None)
        cells.append(cell)
    for index, cell in enumerate(cells, start=1):
        cell.id = f"cell-{index:02d}"
    nb.cells = cells
    return nb


def canonical_text(nb: Any) -> str:
    """The exact text a canonical notebook is stored as."""
    nb = canonicalize(nb)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def execute(path: Path, timeout: int = 1800, kernel_name: str = "python3") -> float:
    """Execute a notebook top to bottom in its own folder, store it canonical; return seconds.

    Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails (the notebook is
    then not written).
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    started = time.perf_counter()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    seconds = time.perf_counter() - started
    files.write_text(path, canonical_text(nb))
    return seconds


def format_all(paths: list[Path], check: bool = False) -> list[Path]:
    """Canonicalise ``paths``; return those that were not canonical."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = canonical_text(nbformat.reads(text, as_version=4))
        if new != text:
            changed.append(path)
            if not check:
                files.write_text(path, new)
    return changed


def all_notebooks() -> list[Path]:
    """The ordered notebooks in ``notebooks/``."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute or canonicalise the notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks in place (default: all of notebooks/)")
    run.add_argument("paths", nargs="*", type=Path)
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    fmt = sub.add_parser("fmt", help="canonicalise notebooks/ and labs/")
    fmt.add_argument("--check", action="store_true", help="fail if any notebook is not canonical")
    args = parser.parse_args(argv)
    if args.command == "run":
        from nbclient.exceptions import CellExecutionError

        for path in args.paths or all_notebooks():
            print(f"executing {path} ...", flush=True)
            try:
                seconds = execute(path, timeout=args.timeout)
            except CellExecutionError as err:
                print(f"{path} failed:\n{str(err)[-3000:]}", file=sys.stderr)
                return 1
            print(f"  done in {seconds:.1f} s", flush=True)
        return 0
    paths = all_notebooks() + sorted((ROOT / "labs").glob("*.ipynb"))
    changed = format_all(paths, check=args.check)
    if args.check and changed:
        print("not canonical (run `make fmt`): " + ", ".join(str(p.relative_to(ROOT)) for p in changed))
        return 1
    print(f"{len(paths)} notebooks canonical" + (f"; rewrote {len(changed)}" if changed else "."))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
