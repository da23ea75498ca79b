"""Build ``labs/`` from ``notebooks/``: the solution lives once, in the notebook.

Solution code is marked in code cells in one of two ways (nbgrader / otter style):

Block -- the lines between the markers become a TODO and ``raise NotImplementedError``
(use it inside a function or method, so the lab's cell still runs and the check after
it reports the TODO)::

        ### BEGIN SOLUTION: create W of shape (d, n) and b of shape (n,)
        self.W = self.add_weight(...)
        ### END SOLUTION

Line -- an assignment whose right-hand side becomes ``...``::

    images = tf.zeros([10, 256, 256, 3])  ### SOLUTION: 10 RGB 256x256 images of zeros

TODOs are numbered in notebook order. Malformed markers (nested, unclosed, an END
without a BEGIN, no hint, an empty region, a line marker on something that is not an
assignment) stop the tool with the notebook, cell and line. Every generated code cell
must parse as Python. Outputs are cleared. The code cell right after a TODO must call a check (``checks.``), so
that an unfinished lab stops there with a message rather than somewhere later.

Usage: ``python -m tools.labtool`` writes ``labs/``; ``--check`` fails when ``labs/``
is stale (CI runs it).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from utils import ROOT
from tools import files
from tools.notebooks import canonical_text, canonicalize, python_source

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?::\s*(?P<hint>.*?))?\s*$")
END = re.compile(r"^[ \t]*### END SOLUTION\s*$")
LINE = re.compile(r"^(?P<code>.*?)\s*### SOLUTION(?::\s*(?P<hint>.*?))?\s*$")
# Anything that looks like a marker but is not exactly one (``## BEGIN SOLUTION``,
# ``### begin solution``, ``#BEGIN SOLUTION``, ``#### END SOLUTION`` ...) is refused:
# a near miss would otherwise copy the solution into the lab silently.
ANY_MARKER = re.compile(r"#+\s*(BEGIN\s*|END\s*)?SOLUTION", re.IGNORECASE)
CHECK_CALL = "checks."

LAB_NOTE = (
    "> **This is the lab.** The complete walkthrough is "
    "[`notebooks/{name}`](../notebooks/{name}). Work top to bottom: each `TODO` is "
    "followed by a check cell that says whether your code is right and, if not, what is "
    "wrong. Run all cells: execution stops at the first check that is not yet satisfied."
)


class LabToolError(ValueError):
    """A solution marker is malformed; the message names notebook, cell and line."""


@dataclass
class Todo:
    """One TODO: its number, hint, and the solution code it replaced."""

    number: int
    hint: str
    solution: str
    stub: str


def _where(name: str, cell: int, line: int) -> str:
    return f"{name}, code cell {cell}, line {line}"


def strip_source(source: str, name: str, cell: int, first: int) -> tuple[str, list[Todo]]:
    """Replace the solution regions of one cell's source; return it and its TODOs.

    ``first`` is the number the cell's first TODO gets.
    """
    out: list[str] = []
    todos: list[Todo] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = BEGIN.match(line)
        if begin:
            hint = (begin["hint"] or "").strip()
            if not hint:
                raise LabToolError(f"{_where(name, cell, i + 1)}: `### BEGIN SOLUTION` needs a hint: `### BEGIN SOLUTION: what to write`")
            j = i + 1
            while j < len(lines) and not END.match(lines[j]):
                if BEGIN.match(lines[j]) or LINE.match(lines[j]):
                    raise LabToolError(f"{_where(name, cell, j + 1)}: a marker inside a solution region (regions cannot nest)")
                j += 1
            if j == len(lines):
                raise LabToolError(f"{_where(name, cell, i + 1)}: `### BEGIN SOLUTION` is never closed by `### END SOLUTION`")
            body = lines[i + 1 : j]
            if not any(b.strip() for b in body):
                raise LabToolError(f"{_where(name, cell, i + 1)}: empty solution region")
            number = first + len(todos)
            indent = begin["indent"]
            stub = f'{indent}# TODO {number}: {hint}\n{indent}raise NotImplementedError("TODO {number}")'
            todos.append(Todo(number, hint, "\n".join(body), stub))
            out.append(stub)
            i = j + 1
            continue
        if END.match(line):
            raise LabToolError(f"{_where(name, cell, i + 1)}: `### END SOLUTION` without a `### BEGIN SOLUTION`")
        single = LINE.match(line)
        if single and "BEGIN" not in line:
            hint = (single["hint"] or "").strip()
            code = single["code"]
            if not hint:
                raise LabToolError(f"{_where(name, cell, i + 1)}: `### SOLUTION` needs a hint: `### SOLUTION: what to write`")
            try:
                tree = ast.parse(code.strip())
            except SyntaxError:
                tree = None
            if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Assign, ast.AnnAssign)):
                raise LabToolError(f"{_where(name, cell, i + 1)}: `### SOLUTION` marks a line that is not one assignment")
            target, _, _ = code.partition("=")
            number = first + len(todos)
            stub = f"{target.rstrip()} = ...  # TODO {number}: {hint}"
            todos.append(Todo(number, hint, line.split("###")[0].rstrip(), stub))
            out.append(stub)
            i += 1
            continue
        if ANY_MARKER.search(line):
            raise LabToolError(
                f"{_where(name, cell, i + 1)}: {line.strip()!r} looks like a solution marker but is not one; "
                f"write exactly `### BEGIN SOLUTION: <hint>`, `### END SOLUTION` or `<code>  ### SOLUTION: <hint>`"
            )
        out.append(line)
        i += 1
    return "\n".join(out), todos


def make_lab(nb: Any, name: str) -> tuple[Any, list[Todo]]:
    """The lab version of a notebook and its TODOs, in order."""
    lab = copy.deepcopy(nb)
    todos: list[Todo] = []
    code_index = 0
    awaiting_check: int | None = None
    for index, cell in enumerate(lab.cells, start=1):
        if cell.cell_type != "code":
            for number, line in enumerate(cell.source.split("\n"), start=1):
                if ANY_MARKER.search(line):
                    raise LabToolError(
                        f"{name}, {cell.cell_type} cell {index} (counting all cells), line {number}: a solution "
                        f"marker outside a code cell would be copied into the lab: {line.strip()!r}"
                    )
            continue
        code_index += 1
        if awaiting_check is not None and CHECK_CALL not in cell.source:
            raise LabToolError(
                f"{_where(name, awaiting_check, 1)}: the code cell after a TODO must call a check "
                f"(`{CHECK_CALL}...`), so that an unfinished lab stops there with a clear message"
            )
        cell.source, found = strip_source(cell.source, name, code_index, len(todos) + 1)
        awaiting_check = code_index if found else None
        todos.extend(found)
        try:
            ast.parse(python_source(cell.source))
        except SyntaxError as err:
            raise LabToolError(f"{_where(name, code_index, err.lineno or 0)}: the lab cell is not valid Python ({err.msg})") from None
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("tags", None)
    if awaiting_check is not None:
        raise LabToolError(f"{_where(name, awaiting_check, 1)}: the last TODO has no check cell after it")
    if not todos:
        raise LabToolError(f"{name}: no solution markers, so the lab would have no TODOs")
    if lab.cells and lab.cells[0].cell_type == "markdown":
        lab.cells[0].source = lab.cells[0].source.replace(f"notebooks/{name}", f"labs/{name}")
        lab.cells.insert(1, nbformat.v4.new_markdown_cell(LAB_NOTE.format(name=name)))
    return canonicalize(lab), todos


def fill_lab(lab: Any, todos: list[Todo]) -> Any:
    """Put each TODO's solution back into a lab (tests use it to prove that the lab,
    with its TODOs solved, runs to the end)."""
    filled = copy.deepcopy(lab)
    for cell in filled.cells:
        if cell.cell_type == "code":
            for todo in todos:
                cell.source = cell.source.replace(todo.stub, todo.solution)
    return filled


def build(notebooks_dir: Path, labs_dir: Path, check: bool = False) -> list[str]:
    """Write (or with ``check``, compare) every lab; return the names that were stale."""
    stale = []
    sources = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise LabToolError(f"no notebooks found in {notebooks_dir}")
    expected = {p.name for p in sources}
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        lab, _ = make_lab(nb, path.name)
        text = canonical_text(lab)
        target = labs_dir / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                files.write_text(target, text)
    for extra in sorted(labs_dir.glob("*.ipynb")):
        if extra.name not in expected:
            stale.append(extra.name)
            if not check:
                extra.unlink()
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build labs/ from notebooks/.")
    parser.add_argument("--check", action="store_true", help="fail if labs/ is stale; write nothing")
    args = parser.parse_args(argv)
    try:
        stale = build(ROOT / "notebooks", ROOT / "labs", check=args.check)
    except LabToolError as err:
        print(f"labtool: {err}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"labs/ is stale for {', '.join(stale)}: run `make labs` (python -m tools.labtool).")
        return 1
    print(f"labs/: {'rewrote ' + ', '.join(stale) if stale else 'up to date'}.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
