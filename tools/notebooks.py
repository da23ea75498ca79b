"""Execute notebooks headless and keep them in one canonical form.

Canonical form (like tensorflow/docs ``nbfmt`` and ``nbdev_clean``): nbformat 4.5,
sorted keys, one-space JSON indent, allow-listed metadata only (kernel ``python3``),
cell ids numbered in order, only ``tags`` in cell metadata, no empty cells, no trailing
blank lines, no ``at 0x7f...`` addresses or execution timestamps in outputs.

Usage::

    python -m tools.notebooks run [NOTEBOOK ...]   # execute in place (default: all of notebooks/)
    python -m tools.notebooks fmt [--check]        # canonicalise notebooks/ and labs/

The stored outputs are full-mode runs: in fast mode (``LABS_FAST=1``) ``run`` writes the
executed copies to ``runs/fast/`` instead (``--out DIR`` chooses another folder), never
over the notebooks. A notebook that cannot be read, a failing cell and a cell past the
time limit each end the run with one message naming the notebook, the cell and the fix.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from tools import files
from utils import ROOT, mode

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: Where a fast-mode ``run`` writes its executed copies (never over the stored notebooks).
FAST_RUNS = ROOT / "runs" / "fast"


class NotebookError(Exception):
    """A notebook cannot be read or did not run: the message names the file, the cell
    where there is one, and the fix."""


def rel(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def read(path: Path) -> Any:
    """Read a notebook; a missing, truncated or garbled file raises :class:`NotebookError`.

    >>> import tempfile, pathlib
    >>> broken = pathlib.Path(tempfile.mkdtemp()) / "04_music.ipynb"
    >>> _ = broken.write_text('{"cells": [{"cell_type": "code", "sour')
    >>> read(broken)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    tools.notebooks.NotebookError: .../04_music.ipynb is not a readable notebook (its JSON ends or breaks at line 1, column 34: ...
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotebookError(f"{rel(path)} does not exist: check the name (`ls notebooks/`).") from None
    except (OSError, UnicodeDecodeError) as err:
        raise NotebookError(f"{rel(path)} cannot be read as UTF-8 text ({err}); {_RESTORE.format(path=rel(path))}") from None
    return reads(text, path)


_RESTORE = (
    "if you did not mean to change it, restore it with `git checkout -- {path}`; otherwise repair it "
    "(a truncated copy or a merge conflict is the usual cause)."
)


def reads(text: str, path: Path) -> Any:
    """Parse notebook ``text`` read from ``path`` (named in the error when it is not a notebook)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(
            f"{rel(path)} is not a readable notebook (its JSON ends or breaks at line {err.lineno}, "
            f"column {err.colno}: {err.msg}); {_RESTORE.format(path=rel(path))}"
        ) from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except (ValueError, KeyError, AttributeError, nbformat.ValidationError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NotebookError(f"{rel(path)} is JSON but not a valid notebook ({first}); {_RESTORE.format(path=rel(path))}") from None
    return nb


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


def _cell_name(nb: Any, cell_index: int) -> str:
    """``code cell N (`first line`)``: N counts code cells, as the execution counts of a
    top-to-bottom run do."""
    number = sum(1 for c in nb.cells[: cell_index + 1] if c.cell_type == "code")
    first = next((line.strip() for line in nb.cells[cell_index].source.splitlines() if line.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    return f"code cell {number} (`{first}`)"


def execute(path: Path, timeout: int = 1800, kernel_name: str = "python3", out: Path | None = None) -> float:
    """Execute a notebook top to bottom in its own folder and store it canonical at ``out``
    (default: in place); return the seconds it took.

    Raises :class:`NotebookError` naming the notebook, the cell and the fix when the file
    cannot be read, a cell fails, a cell runs past ``timeout`` seconds or the kernel dies
    (the notebook is then not written).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = read(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    running = {"index": 0}

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        running["index"] = cell_index

    started = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_execute=on_cell_execute,
    )
    # The kernel's own log (its start-up notices, the traceback it prints when it is shut
    # down in the middle of a cell) goes to a file, shown only if the kernel dies.
    kernel_log = tempfile.TemporaryFile(mode="w+")
    try:
        client.execute(stderr=kernel_log)
    except CellTimeoutError:
        raise NotebookError(
            f"{rel(path)}: {_cell_name(nb, running['index'])} was still running after {timeout} s, the "
            f"limit for one cell, so the run was stopped and the notebook was not written. Give it "
            f"longer with `--timeout SECONDS` (e.g. --timeout {timeout * 2}), or try the fast mode "
            f"first (LABS_FAST=1) to see whether the cell finishes at all."
        ) from None
    except DeadKernelError as err:
        kernel_log.seek(0)
        said = kernel_log.read()[-2000:].strip()
        raise NotebookError(
            f"{rel(path)}: the kernel died in {_cell_name(nb, running['index'])} ({err}); the notebook "
            f"was not written. Out of memory is the usual cause: close other programs or try LABS_FAST=1."
            + (f"\nThe kernel's last words:\n{said}" if said else "")
        ) from None
    except CellExecutionError as err:
        raise NotebookError(
            f"{rel(path)}: {_cell_name(nb, running['index'])} failed with {err.ename}: {err.evalue}\n"
            f"The notebook was not written. The cell's output:\n{str(err)[-3000:]}"
        ) from None
    finally:
        kernel_log.close()
    seconds = time.perf_counter() - started
    files.write_text(out or path, canonical_text(nb))
    return seconds


def format_all(paths: list[Path], check: bool = False) -> list[Path]:
    """Canonicalise ``paths``; return those that were not canonical."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = canonical_text(reads(text, path))
        if new != text:
            changed.append(path)
            if not check:
                files.write_text(path, new)
    return changed


def all_notebooks() -> list[Path]:
    """The ordered notebooks in ``notebooks/``."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_target(path: Path, out: Path | None, fast: bool) -> Path:
    """Where ``run`` stores an executed ``path``: ``out/<name>`` when asked; in fast mode
    ``runs/fast/<name>``; otherwise in place. A fast run is refused over ``notebooks/``.

    >>> run_target(Path("notebooks/04_music_lstm.ipynb"), None, fast=True).relative_to(ROOT).as_posix()
    'runs/fast/04_music_lstm.ipynb'
    >>> run_target(Path("notebooks/04_music_lstm.ipynb"), None, fast=False).as_posix()
    'notebooks/04_music_lstm.ipynb'
    """
    if out is not None:
        target = Path(out) / Path(path).name
    elif fast:
        target = FAST_RUNS / Path(path).name
    else:
        target = Path(path)
    if fast and target.resolve().parent == (ROOT / "notebooks").resolve():
        raise NotebookError(
            f"refusing to store a fast-mode run over {rel(target)}: the stored notebooks are full-mode "
            f"runs (the results page and nbval compare against them). Leave out --out to write "
            f"{rel(FAST_RUNS / target.name)}, or unset LABS_FAST for a full run."
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute or canonicalise the notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks (default: all of notebooks/); in place in full mode, into runs/fast/ in fast mode")
    run.add_argument("paths", nargs="*", type=Path)
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.add_argument("--out", type=Path, help="write the executed notebooks into this folder instead")
    fmt = sub.add_parser("fmt", help="canonicalise notebooks/ and labs/ (or the given notebooks)")
    fmt.add_argument("paths", nargs="*", type=Path)
    fmt.add_argument("--check", action="store_true", help="fail if any notebook is not canonical")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.paths or all_notebooks(), args.timeout, args.out)
        return _fmt(args.paths or all_notebooks() + sorted((ROOT / "labs").glob("*.ipynb")), args.check)
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(paths: list[Path], timeout: int, out: Path | None) -> int:
    fast = mode.is_fast()
    targets = [run_target(path, out, fast) for path in paths]  # refuse before any work
    for path, target in zip(paths, targets):
        where = "" if target == path else f" -> {rel(target)}"
        print(f"executing {rel(path)} ({mode.mode_name()} mode){where} ...", flush=True)
        seconds = execute(path, timeout=timeout, out=target)
        print(f"  done in {seconds:.1f} s", flush=True)
    if fast and out is None:
        print(f"fast mode: the executed copies are in {rel(FAST_RUNS)}/; the stored notebooks keep their full-mode outputs.")
    return 0


def _fmt(paths: list[Path], check: bool) -> int:
    changed = format_all(paths, check=check)
    if check and changed:
        print("not canonical (run `make fmt`): " + ", ".join(rel(p) for p in changed))
        return 1
    print(f"{len(paths)} notebooks canonical" + (f"; rewrote {len(changed)}" if changed else "."))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
