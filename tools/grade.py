"""Grade learners' labs headless: one line per submission, ``grades.json`` and ``grades.md``.

Usage::

    python -m tools.grade SUBMISSION.ipynb [FOLDER ...] [--jobs N] [--lab NAME] [--out DIR]
    python -m tools.grade --passed grades.json --todo 3   # exit 0 iff TODO 3 passed (CI, Classroom)

(``make grade SUBMISSIONS="a.ipynb b.ipynb"``). How a submission is graded:

1. **Which lab** it is comes from its content (the lines of its cells against every lab's
   own lines), never from its file name. Labs are made from ``notebooks/`` at run time
   with :func:`tools.labtool.make_lab`, so they are always the current ones.
2. **The learner's TODO regions** are the only thing taken from it: each TODO cell of the
   lab is found in the submission (content, helped by the cell id and the check cell that
   follows it -- never by position alone; deleted, reordered and duplicated cells are
   handled), and what replaced each stub is cut out by matching the pristine text around
   it. Everything else in the submission -- its own check cells, code outside the TODOs,
   its stored outputs -- is ignored.
3. **Static verdicts first**: an untouched stub is ``not attempted`` (a submission with every
   stub untouched needs no kernel at all), code that does not parse is ``error``, and code
   that rebinds or patches the checks or what they use (``checks``, NumPy / TensorFlow /
   Keras attributes, ``sys.modules``, ``builtins``, frames, ``gc``, ``ctypes``...) is ``failed``
   as tampering, without being run.
4. **Execution** (:mod:`tools.grade_run`, one worker process per submission, ``--jobs`` in
   parallel): the pristine lab, fast mode, a fresh confined kernel in a scratch folder
   (:mod:`tools.grade_sandbox`), each TODO region put into its cell, the lab's own check
   run by the grader's wrapper; then the reference solution, so every TODO is graded on
   its own. It stops after the lab's last check: what follows grades nothing.

Verdicts per TODO: ``passed``, ``failed`` (the check's message), ``not attempted``,
``error`` (the last line of what the learner's code raised), ``timed out``, and ``not
graded`` when the grader itself could not run the lab. ``docs/grading/grades.schema.json``
describes ``grades.json``; CONTRIBUTING.md ("Grading labs") says what is and is not isolated.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from tools import files, labtool
from tools.notebooks import python_source

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
#: Statuses of one TODO.
STATUSES = ("passed", "failed", "not attempted", "error", "timed out", "not graded")
#: A submission larger than this is refused (a lab with all its outputs is a few MB).
MAX_BYTES = 100 * 2**20

DEFAULTS = {
    "cell_timeout": 120.0,  # seconds for one TODO cell, and again for its check
    "budget": 1200.0,  # seconds for a whole submission (kernel start-up and the lab's own cells included)
    "startup_timeout": 300.0,  # seconds for the kernel to start and import the checks
    "memory_gb": 6.0,  # address space of the kernel (TensorFlow maps ~2 GB before it computes anything)
    "output_chars": 1_000_000,  # printed characters kept per cell
}


# --------------------------------------------------------------------------- labs

@dataclass
class TodoCell:
    """A lab cell with one or more TODOs, and the check cell after it."""

    index: int  # position among the lab's cells
    cell_id: str
    numbers: list[int]
    source: str  # the lab's text, stubs included
    template: list[Any]  # pristine text pieces and TODO numbers, in order
    stubs: dict[int, str]
    reference: dict[int, str]  # each TODO's solution, as the notebook has it
    hints: dict[int, str]
    check_index: int
    check_source: str


@dataclass
class Lab:
    """One lab as :func:`tools.labtool.make_lab` makes it from ``notebooks/``."""

    name: str
    cells: list[dict[str, str]]  # cell_type, source, id
    todo_cells: list[TodoCell]
    last_check: int
    imports: dict[str, str]  # module-level names bound by imports -> what they import
    defined: dict[int, set[str]]  # TODO number -> top-level names its cell defines
    unique_lines: set[str] = field(default_factory=set)
    version: str = "unknown"

    @property
    def numbers(self) -> list[int]:
        return [n for cell in self.todo_cells for n in cell.numbers]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.split("\n")]


def _significant(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _template(source: str, todos: list[labtool.Todo]) -> list[Any]:
    pieces: list[Any] = []
    rest = source
    for todo in todos:
        before, found, rest = rest.partition(todo.stub)
        if not found:
            raise ValueError(f"TODO {todo.number}'s stub is not in its cell")
        pieces += [before, todo.number]
    return pieces + [rest]


def _imports(cells: list[dict[str, str]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for cell in cells:
        try:
            tree = ast.parse(python_source(cell["source"]))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _top_level_names(source: str) -> set[str]:
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def load_lab(path: Path) -> Lab:
    """The lab made from ``notebooks/<name>`` (its TODOs, references, checks)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    lab_nb, todos = labtool.make_lab(notebook, path.name)
    by_number = {t.number: t for t in todos}
    cells = [{"cell_type": c.cell_type, "source": c.source, "id": c.get("id", "")} for c in lab_nb.cells]
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    todo_cells = []
    for position, i in enumerate(code):
        numbers = [int(n) for n in re.findall(r"# TODO (\d+):", cells[i]["source"]) if int(n) in by_number]
        numbers = [n for n in numbers if by_number[n].stub in cells[i]["source"]]
        if not numbers:
            continue
        mine = [by_number[n] for n in numbers]
        check = code[position + 1]
        todo_cells.append(TodoCell(
            index=i, cell_id=cells[i]["id"], numbers=numbers, source=cells[i]["source"],
            template=_template(cells[i]["source"], mine), stubs={t.number: t.stub for t in mine},
            reference={t.number: t.solution for t in mine}, hints={t.number: t.hint for t in mine},
            check_index=check, check_source=cells[check]["source"]))
    last_check = max(t.check_index for t in todo_cells)
    from tools.grade_run import compose

    defined = {}
    for cell in todo_cells:
        names = _top_level_names(compose(cell.template, cell.reference))
        for n in cell.numbers:
            defined[n] = names
    return Lab(name=path.name, cells=cells, todo_cells=todo_cells, last_check=last_check,
               imports=_imports(cells[: last_check + 1]), defined=defined)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def catalogue(notebooks: Path | None = None) -> dict[str, Lab]:
    """Every lab of the course, with its version (the last commit that changed it)."""
    notebooks = notebooks or ROOT / "notebooks"
    labs = {p.name: load_lab(p) for p in sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))}
    counts: Counter[str] = Counter()
    per_lab = {}
    for name, lab in labs.items():
        lines = set()
        for cell in lab.cells:
            lines |= {line for line in _significant(cell["source"]) if len(line) > 12 and "TODO" not in line}
        per_lab[name] = lines
        counts.update(lines)
    for name, lab in labs.items():
        lab.unique_lines = {line for line in per_lab[name] if counts[line] == 1}
        lab.version = _git("log", "-1", "--format=%H", "--", f"labs/{name}") or "unknown"
    return labs


# --------------------------------------------------------------------------- submissions

class Unreadable(Exception):
    """A file that is not a notebook we can read; the message says why."""


def read_cells(path: Path) -> list[dict[str, str]]:
    """The cells of a submitted notebook (nbformat 3 or 4), leniently: an editor's extra or
    missing metadata does not matter, only cell types and sources do."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise Unreadable(f"cannot be read ({err.strerror})") from None
    if size > MAX_BYTES:
        raise Unreadable(f"is {size / 2**20:.0f} MB, over the {MAX_BYTES / 2**20:.0f} MB limit for a lab "
                         f"(clear its outputs: Edit > Clear Outputs of All Cells)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable("is not UTF-8 text, so not a notebook") from None
    except json.JSONDecodeError as err:
        raise Unreadable(f"is not a readable notebook: its JSON breaks at line {err.lineno}, column {err.colno} "
                         f"({err.msg}); a truncated upload or a hand edit is the usual cause") from None
    if not isinstance(data, dict):
        raise Unreadable("is JSON but not a notebook (no cells)")
    raw = data.get("cells")
    if raw is None and isinstance(data.get("worksheets"), list) and data["worksheets"]:
        raw = data["worksheets"][0].get("cells") if isinstance(data["worksheets"][0], dict) else None
    if not isinstance(raw, list):
        raise Unreadable("is JSON but not a notebook (no list of cells)")
    cells = []
    for cell in raw:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        cells.append({"cell_type": str(cell.get("cell_type", "")), "source": source, "id": str(cell.get("id", ""))})
    if not any(c["cell_type"] == "code" for c in cells):
        raise Unreadable("has no code cells")
    return cells


def identify(cells: list[dict[str, str]], labs: dict[str, Lab]) -> tuple[Lab | None, float, str]:
    """The lab a submission is, from its lines; ``(None, best score, why)`` when none fits."""
    lines = {line for cell in cells for line in _significant(cell["source"])}
    scores = sorted(((len(lab.unique_lines & lines) / max(len(lab.unique_lines), 1), name) for name, lab in labs.items()),
                    reverse=True)
    best, name = scores[0]
    second = scores[1][0] if len(scores) > 1 else 0.0
    if best >= 0.25 and best >= 2 * second:
        return labs[name], best, ""
    return None, best, (f"does not look like a lab of this course (closest: {Path(name).stem}, "
                        f"{best:.0%} of its own lines)")


# --------------------------------------------------------------------------- TODO regions

@dataclass
class Region:
    """What a submission has in place of one TODO stub."""

    number: int
    code: str | None  # None: the TODO's cell is not in the submission
    notes: list[str] = field(default_factory=list)


def _norm(line: str) -> str:
    """A line as compared between lab and submission: no whitespace, no trailing comment."""
    text = line.strip()
    if text.startswith("#"):
        return text
    return re.sub(r"\s+", "", text.split("  #", 1)[0])


def _find_run(haystack: list[str], needle: list[str], start: int, last: bool = False) -> int:
    """Index of ``needle`` as a contiguous run in ``haystack`` at or after ``start`` (-1: none)."""
    if not needle:
        return len(haystack) if last else start
    hits = [i for i in range(start, len(haystack) - len(needle) + 1) if haystack[i : i + len(needle)] == needle]
    return (hits[-1] if last else hits[0]) if hits else -1


def extract(cell: TodoCell, submitted: str) -> tuple[dict[int, str], list[str]]:
    """Each TODO's code in a submitted version of ``cell``, and notes on what else differs.

    The pristine text between the TODOs (the glue) is looked up in the submission, first
    verbatim (whitespace and trailing comments aside), else line by line with a diff that
    also pairs lines edited a little; what lies between the glue is the learner's.
    """
    lines = _lines(submitted)
    significant = [i for i, line in enumerate(lines) if line.strip()]
    q = [_norm(lines[i]) for i in significant]
    glue = [[_norm(line) for line in _lines(piece) if line.strip()] for piece in cell.template[::2]]
    numbers = cell.template[1::2]
    notes: list[str] = []
    spans: list[tuple[int, int]] = []  # (start, end) in q of each glue piece
    position = 0
    for k, piece in enumerate(glue):
        at = _find_run(q, piece, position, last=(k == len(glue) - 1 and k > 0))
        if at < 0:
            spans = []
            break
        spans.append((at, at + len(piece)))
        position = at + len(piece)
    if spans:
        if q[: spans[0][0]] or q[spans[-1][1] :]:
            notes.append("lines added outside the TODO regions were ignored")
    else:
        spans = _fuzzy_spans(glue, q)
        notes.append("code outside the TODO regions differs from the current lab (edited, or an older "
                     "version of the lab); only the TODO regions were taken")
    regions = {}
    for k, number in enumerate(numbers):
        begin = spans[k][1]
        end = spans[k + 1][0]
        first = significant[begin - 1] + 1 if begin > 0 else 0
        stop = significant[end] if end < len(significant) else len(lines)
        body = lines[first:stop]
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        regions[int(number)] = "\n".join(body)
    return regions, notes


def _fuzzy_spans(glue: list[list[str]], q: list[str]) -> list[tuple[int, int]]:
    """Where each glue piece sits in ``q`` when it is not there verbatim: the lines a line
    diff matches, plus lines edited a little (similar enough) in the gaps between them."""
    flat = [(k, line) for k, piece in enumerate(glue) for line in piece]
    matcher = SequenceMatcher(None, [line for _, line in flat], q, autojunk=False)
    pairs: dict[int, int] = {}  # index in flat -> index in q
    for a, b, size in matcher.get_matching_blocks():
        for offset in range(size):
            pairs[a + offset] = b + offset
    for a in range(len(flat)):  # an unmatched glue line: the most similar line in its gap
        if a in pairs:
            continue
        low = max((pairs[x] for x in pairs if x < a), default=-1) + 1
        high = min((pairs[x] for x in pairs if x > a), default=len(q))
        scored = [(SequenceMatcher(None, flat[a][1], q[j]).ratio(), -j) for j in range(low, high)]
        if scored and max(scored)[0] >= 0.75:
            pairs[a] = -max(scored)[1]
    matched: dict[int, list[int]] = {k: [] for k in range(len(glue))}
    for a, b in pairs.items():
        matched[flat[a][0]].append(b)
    spans = []
    previous_end = 0
    for k in range(len(glue)):
        hits = matched[k]
        if hits:
            start, end = min(hits), max(hits) + 1
        else:
            start = end = previous_end if k < len(glue) - 1 else len(q)
        start = max(start, previous_end)
        end = max(end, start)
        spans.append((start, end))
        previous_end = end
    if not glue[0]:
        spans[0] = (0, 0)
    if not glue[-1]:
        spans[-1] = (len(q), len(q))
    return spans


def untouched(code: str) -> bool:
    """Whether a TODO region is still its stub (or holds no code at all)."""
    try:
        tree = ast.parse(textwrap.dedent(python_source(code)))
    except SyntaxError:
        return False
    body = tree.body
    if not body:
        return True
    if len(body) != 1:
        return False
    node = body[0]
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", "") == "NotImplementedError":
        return True
    if isinstance(node, (ast.Raise,)) and getattr(node.exc, "id", "") == "NotImplementedError":
        return True
    value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    return isinstance(value, ast.Constant) and value.value is Ellipsis


def _most_similar(line: str, others: Counter[str]) -> float:
    """The highest similarity (0..1) of ``line`` to any of ``others`` that could reach 0.75
    (the cheap upper bounds first: this runs for every lab line against every cell)."""
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(line)
    best = 0.0
    for other in others:
        matcher.set_seq1(other)
        if matcher.real_quick_ratio() >= 0.75 and matcher.quick_ratio() >= 0.75:
            best = max(best, matcher.ratio())
    return best


def _content_score(cell: TodoCell, source: str) -> float:
    """How much of the pristine text around the TODOs a cell holds (0..1)."""
    mine = [_norm(line) for line in _significant(source)]
    have = Counter(mine)
    glue = [_norm(line) for piece in cell.template[::2] for line in _significant(piece)]
    if glue:
        found = 0.0
        for line, n in Counter(glue).items():
            exact = min(n, have[line])
            found += exact
            if exact < n:  # a line edited a little (an older lab) counts for its similarity
                close = _most_similar(line, have)
                found += (n - exact) * (close if close >= 0.75 else 0.0)
        return found / len(glue)
    targets = [stub.split("=")[0].strip() for stub in cell.stubs.values() if "= ..." in stub]
    return float(any(re.search(rf"^\s*{re.escape(t)}\s*=", source, re.M) for t in targets if t))


def _support_score(cell: TodoCell, cells: list[dict[str, str]], i: int, code: list[int]) -> float:
    """Evidence besides content: the same cell id, the lab's check cell right after it, the TODO comment."""
    source = cells[i]["source"]
    after = [j for j in code if j > i]
    return (0.15 * bool(cells[i]["id"] and cells[i]["id"] == cell.cell_id)
            + 0.25 * bool(after and cells[after[0]]["source"].strip() == cell.check_source.strip())
            + 0.1 * any(f"# TODO {n}:" in source for n in cell.numbers))


def locate(lab: Lab, cells: list[dict[str, str]]) -> dict[int, Region]:
    """Every TODO's region in a submission. Its cell is found by content (the pristine text
    around the TODOs), helped by the cell id, the check cell after it and the TODO comment;
    of several copies (a duplicated cell) the last attempted one is graded."""
    regions: dict[int, Region] = {}
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    for cell in lab.todo_cells:
        content = {i: _content_score(cell, cells[i]["source"]) for i in code}
        total = {i: 0.5 * content[i] + _support_score(cell, cells, i, code) for i in code}
        best = max(total, key=lambda i: (total[i], -i)) if total else None
        if best is None or total[best] < 0.45:
            for n in cell.numbers:
                regions[n] = Region(n, None, ["its cell is not in the submission (deleted?)"])
            continue
        copies = [i for i in code if content[i] >= content[best] - 0.05 and total[i] >= 0.45]
        extracted = []
        for i in copies:
            found, notes = extract(cell, cells[i]["source"])
            attempted = any(not untouched(found[n]) for n in cell.numbers)
            extracted.append((attempted, i, found, notes))
        extracted.sort(key=lambda e: (e[0], e[1]))
        attempted, i, found, notes = extracted[-1]
        if len(copies) > 1:
            notes = notes + [f"its cell appears {len(copies)} times; graded the last "
                             f"{'attempted ' if attempted else ''}copy"]
        for n in cell.numbers:
            regions[n] = Region(n, found[n], list(notes))
    return regions


def drift(lab: Lab, cells: list[dict[str, str]]) -> str | None:
    """A note when the lab's code cells other than its TODO cells are not all in the
    submission as they are in the current lab (an older version of the lab, or cells the
    learner edited or deleted): those cells never run from the submission, the current
    lab's do. None when every one of them is there."""
    todo_cells = {cell.index for cell in lab.todo_cells}

    def key(source: str) -> tuple[str, ...]:
        return tuple(_norm(line) for line in _significant(source))

    theirs = {key(c["source"]) for c in cells if c["cell_type"] == "code"}
    ours = [c for i, c in enumerate(lab.cells) if c["cell_type"] == "code" and i not in todo_cells]
    differ = sum(key(c["source"]) not in theirs for c in ours)
    if not differ:
        return None
    return (f"{differ} of the lab's {len(ours)} code cells outside the TODOs differ from the current lab or are "
            f"missing (an older version of the lab, or edited): graded on the current lab ({lab.version[:10]}), "
            f"whose cells ran instead")


# --------------------------------------------------------------------------- static checks

#: Modules a TODO never needs and that reach into the interpreter or around the grader.
FORBIDDEN_MODULES = {"ctypes", "gc", "inspect", "importlib", "builtins", "unittest", "mock", "threading", "_thread",
                     "multiprocessing", "concurrent", "signal", "atexit", "tools", "IPython", "ipykernel",
                     "jupyter_client", "zmq", "utils", "sys", "types", "code", "codeop", "pickle", "marshal", "dill"}
FORBIDDEN_NAMES = {"get_ipython", "__builtins__", "__import__", "globals", "vars", "exec", "eval", "compile",
                   "setattr", "delattr", "breakpoint", "__loader__", "__spec__"}
FORBIDDEN_ATTRIBUTES = {"__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__", "__dict__",
                        "__defaults__", "__kwdefaults__", "f_globals", "f_locals", "f_back", "f_builtins", "tb_frame",
                        "gi_frame", "cr_frame", "ag_frame", "__self__", "__func__", "__wrapped__", "__setattr__",
                        "__delattr__", "__getattribute__", "__import__", "modules", "_getframe", "settrace", "setprofile"}


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001
        return "?"


def region_lines(template: list[Any], code: dict[int, str], number: int) -> tuple[int, int]:
    """First and last line (1-based) of TODO ``number``'s code in the composed cell."""
    before = ""
    for piece in template:
        if isinstance(piece, str):
            before += piece
        elif int(piece) == number:
            break
        else:
            before += code[int(piece)]
    first = before.count("\n") + 1
    return first, first + code[number].count("\n")


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _walk_scoped(tree: ast.AST) -> list[tuple[ast.AST, bool]]:
    """Every node with whether it sits at the cell's top level (outside any def/class/lambda)."""
    out: list[tuple[ast.AST, bool]] = []
    stack: list[tuple[ast.AST, bool]] = [(tree, True)]
    while stack:
        node, top = stack.pop()
        out.append((node, top))
        inner = top and not isinstance(node, _SCOPES)
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return out


def tampering(cell: TodoCell, number: int, code: str, lab: Lab, other_names: set[str]) -> str | None:
    """Why TODO ``number``'s code must not be run -- it rebinds or patches what the checks
    use, or reaches into the interpreter -- or None. Only the TODO's own lines are judged,
    in the cell they will run in (so a name bound inside a function is local)."""
    from tools.grade_run import compose

    pieces = {**cell.reference, number: code}
    try:
        tree = ast.parse(python_source(compose(cell.template, pieces)))
    except SyntaxError:
        return None
    first, last = region_lines(cell.template, pieces, number)
    protected = set(lab.imports) | {"checks"}
    nodes = [(node, top) for node, top in _walk_scoped(tree) if first <= getattr(node, "lineno", 0) <= last]
    declared = {name for node, _ in nodes if isinstance(node, (ast.Global, ast.Nonlocal)) for name in node.names}
    imported = {alias.asname or alias.name.split(".")[0] for node, _ in nodes
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    allowed = {id(node.func) for node, _ in nodes if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in ("setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name)
               and node.args[0].id == "self"}
    for node, top in sorted(nodes, key=lambda item: (getattr(item[0], "lineno", 0), getattr(item[0], "col_offset", 0))):
        where = f" (line {node.lineno - first + 1} of TODO {number})"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in FORBIDDEN_MODULES:
                    return f"it imports `{module}`{where}, which a TODO does not need and which can reach around the checks"
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                source = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if top and bound in protected and lab.imports.get(bound, source) != source:
                    return f"it rebinds `{bound}` to another module{where}"
        elif isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES and id(node) not in allowed:
                return f"it uses `{node.id}`{where}, which can change the checks or the names they use"
            if isinstance(node.ctx, (ast.Store, ast.Del)) and (top or node.id in declared):
                if node.id in protected:
                    return f"it rebinds `{node.id}`{where}, a name the checks or the lab rely on"
                if node.id in other_names:
                    return f"it rebinds `{node.id}`{where}, which another TODO defines"
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRIBUTES:
                return f"it reaches `{_dotted(node)}`{where}, which can change functions or modules behind the checks"
            if isinstance(node.ctx, (ast.Store, ast.Del)) and _root(node) in protected | imported:
                return f"it assigns to `{_dotted(node)}`{where}: the checks use that module's functions"
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if _root(node) in protected | imported and "rcParams" not in _dotted(node.value):
                return f"it writes into `{_dotted(node.value)}`{where}: the checks use that module"
    return None


def syntax_error(cell: TodoCell, number: int, code: str) -> str | None:
    """``SyntaxError: ...`` when the cell with this region (references elsewhere) does not parse."""
    from tools.grade_run import compose

    source = compose(cell.template, {**cell.reference, number: code})
    try:
        ast.parse(python_source(source))
    except SyntaxError as err:
        return f"{type(err).__name__}: {err.msg} (line {err.lineno} of its cell)"
    return None


# --------------------------------------------------------------------------- grading

@dataclass
class Options:
    jobs: int = 0
    lab: str | None = None
    cell_timeout: float = DEFAULTS["cell_timeout"]
    budget: float = DEFAULTS["budget"]
    startup_timeout: float = DEFAULTS["startup_timeout"]
    memory_gb: float = DEFAULTS["memory_gb"]
    output_chars: int = int(DEFAULTS["output_chars"])


def cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def sandbox() -> dict[str, Any]:
    """What confinement this machine allows: Landlock, and a uid of its own when root."""
    from tools.grade_sandbox import landlock_abi

    info: dict[str, Any] = {"landlock": landlock_abi() >= 1, "uid": None, "gid": None}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        why = _unreadable_for_others()
        if why:
            info["uid_note"] = f"the kernel keeps uid 0: {why}"
        else:
            import pwd

            try:
                nobody = pwd.getpwnam("nobody")
                info.update(uid=nobody.pw_uid, gid=nobody.pw_gid)
            except KeyError:
                info["uid_note"] = "the kernel keeps uid 0: there is no user `nobody`"
    return info


def _unreadable_for_others() -> str | None:
    """Why an unprivileged uid could not run this Python and the course (None: it can)."""
    for path in {Path(sys.executable).resolve().parent, Path(sys.base_prefix), Path(sys.prefix), ROOT}:
        for part in [path, *path.parents]:
            try:
                if not part.stat().st_mode & 0o001:
                    return f"{part} is not open to other users, and the Python or the course lives under it"
            except OSError:
                return f"{part} cannot be inspected"
    return None


def plan(lab: Lab, regions: dict[int, Region], options: Options) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The job for :mod:`tools.grade_run` and the verdicts decided without running anything."""
    decided: dict[int, dict[str, Any]] = {}
    steps: list[dict[str, Any]] = []
    code_number = 0
    todo_at = {cell.index: cell for cell in lab.todo_cells}
    checks = {cell.check_index for cell in lab.todo_cells}
    all_defined = {n: names for n, names in lab.defined.items()}
    for i, c in enumerate(lab.cells[: lab.last_check + 1]):
        if c["cell_type"] != "code":
            continue
        code_number += 1
        label = f"code cell {code_number}"
        if i in checks:
            continue
        cell = todo_at.get(i)
        if cell is None:
            steps.append({"kind": "code", "source": c["source"], "label": label})
            continue
        learner: dict[str, str | None] = {}
        for n in cell.numbers:
            region = regions[n]
            others = set().union(*(names for m, names in all_defined.items() if m not in cell.numbers)) - all_defined[n]
            if region.code is None:
                decided[n] = {"status": "not attempted", "message": "its cell is not in the submission"}
            elif untouched(region.code):
                decided[n] = {"status": "not attempted", "message": None}
            elif (error := syntax_error(cell, n, region.code)) is not None:
                decided[n] = {"status": "error", "message": error}
            elif (why := tampering(cell, n, region.code, lab, others)) is not None:
                decided[n] = {"status": "failed", "message": f"tampering: {why}. The grader does not run such code."}
            learner[str(n)] = None if n in decided else region.code
        steps.append({"kind": "todo", "label": label, "template": cell.template, "todos": cell.numbers,
                      "learner": learner, "reference": {str(k): v for k, v in cell.reference.items()},
                      "check": cell.check_source, "check_label": f"check of TODO {', '.join(map(str, cell.numbers))}"})
    limits = {"memory_bytes": int(options.memory_gb * 2**30), "cpu_seconds": int(options.budget * max(cores(), 2) + 60),
              "file_bytes": 256 * 2**20, "processes": 4096, "output_chars": options.output_chars,
              "threads": max(cores() // max(options.jobs, 1), 1) if options.jobs > 1 else 0}
    job = {"lab": lab.name, "steps": steps, "decided": {str(k): v for k, v in decided.items()},
           "todo_numbers": lab.numbers, "cell_timeout": options.cell_timeout, "budget": options.budget,
           "startup_timeout": options.startup_timeout, "limits": limits, "sandbox": {}}
    return job, decided


#: Worker processes running now (stopped, with their kernels, when grading is interrupted).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _run_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Run :mod:`tools.grade_run` on ``job`` in a process of its own (stopped, with its kernel,
    if it outlives the budget or grading is interrupted)."""
    with tempfile.TemporaryDirectory(prefix="labs-grade-job-") as folder:
        job_path, result_path, log_path = (Path(folder) / n for n in ("job.json", "result.json", "worker.log"))
        job_path.write_text(json.dumps(job), encoding="utf-8")
        limit = job["budget"] + 120
        with open(log_path, "wb") as log, _LIVE_LOCK:
            if _STOPPING.is_set():
                return {"status": "grader error", "message": "grading was interrupted", "verdicts": {}, "notes": [],
                        "sandbox": {}, "seconds": None}
            process = subprocess.Popen([sys.executable, "-m", "tools.grade_run", str(job_path), str(result_path)],
                                       cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            _LIVE.add(process)
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _stop(process)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(process)
        if result_path.exists():
            return json.loads(result_path.read_text(encoding="utf-8"))
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        why = f"it ran past {limit:.0f} s" if process.returncode in (-9, -15) else f"exit code {process.returncode}"
        return {"status": "grader error", "message": f"the grading process failed ({why})" + (": " + " | ".join(tail) if tail else ""),
                "verdicts": {}, "notes": [], "sandbox": {}, "seconds": None}


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to a worker's process group (the worker then shuts its kernel down and
    removes its scratch folder), SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _stop_all() -> None:
    """Stop every running worker (grading was interrupted: Ctrl-C, an exception)."""
    _STOPPING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for process in live:
        _stop(process)


def grade_file(path: Path, labs: dict[str, Lab], options: Options, sandbox_info: dict[str, Any]) -> dict[str, Any]:
    """Grade one submission; never raises for anything in the file."""
    started = time.perf_counter()
    record: dict[str, Any] = {"file": str(path), "sha256": None, "status": "graded", "message": None, "lab": None,
                              "lab_version": None, "match": None, "points": 0, "max_points": 0, "seconds": None,
                              "sandbox": None, "notes": [], "todos": []}
    try:
        record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.stat().st_size <= MAX_BYTES else None
        cells = read_cells(path)
    except (Unreadable, OSError) as err:
        record.update(status="unreadable", message=f"{path.name} {err}")
        return _finish(record, started)
    lab, score, why = identify(cells, labs)
    record["match"] = round(score, 3)
    if lab is None:
        record.update(status="unrecognised", message=f"{path.name} {why}")
        return _finish(record, started)
    record.update(lab=Path(lab.name).stem, lab_version=lab.version, max_points=len(lab.numbers))
    if options.lab and Path(options.lab).stem != Path(lab.name).stem:
        record.update(status="wrong lab", message=f"{path.name} is the lab {Path(lab.name).stem}, not "
                                                   f"{Path(options.lab).stem} as this assignment expects")
        return _finish(record, started)
    named = re.search(r"(?<!\d)(\d\d)_", path.name)
    if named and named.group(1) != lab.name[:2]:
        record["notes"].append(f"the file name suggests lab {named.group(1)}, but its content is {Path(lab.name).stem}; "
                               f"graded as {Path(lab.name).stem}")
    regions = locate(lab, cells)
    if (different := drift(lab, cells)) is not None:
        record["notes"].append(different)
    job, decided = plan(lab, regions, options)
    job["sandbox"] = sandbox_info
    result: dict[str, Any] = {"verdicts": {}, "notes": [], "sandbox": {}}
    if any(v is not None for step in job["steps"] if step["kind"] == "todo" for v in step["learner"].values()):
        result = _run_worker(job)
        if result.get("status") == "grader error":
            record.update(status="grader error", message=result.get("message"))
    record["notes"] += result.get("notes", [])
    if result.get("sandbox"):
        record["sandbox"] = result["sandbox"]
    verdicts = {int(k): v for k, v in result.get("verdicts", {}).items()}
    for cell in lab.todo_cells:
        for n in cell.numbers:
            verdict = decided.get(n) or verdicts.get(n) or {
                "status": "not graded", "message": record["message"] or "not graded: the grading process gave no verdict"}
            notes = list(dict.fromkeys(regions[n].notes + verdict.get("notes", [])))
            record["todos"].append({"number": n, "hint": cell.hints[n], "status": verdict["status"],
                                    "points": 1 if verdict["status"] == "passed" else 0, "max_points": 1,
                                    "message": verdict.get("message"), "seconds": verdict.get("seconds"),
                                    "notes": notes})
    record["points"] = sum(t["points"] for t in record["todos"])
    return _finish(record, started)


def _finish(record: dict[str, Any], started: float) -> dict[str, Any]:
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def submissions(paths: list[Path]) -> list[Path]:
    """The files to grade: the given notebooks and every ``.ipynb`` under the given folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def grade(paths: list[Path], options: Options, on_result: Any = None) -> dict[str, Any]:
    """Grade every submission (in parallel, ``options.jobs`` at a time); the grades.json dict."""
    started = time.perf_counter()
    labs = catalogue()
    sandbox_info = sandbox()
    jobs = options.jobs or cores()
    options.jobs = jobs
    status = _git("status", "--porcelain", "--", "notebooks", "labs", "utils", "tools")
    _STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    records = []
    try:
        futures = [pool.submit(grade_file, p, labs, options, sandbox_info) for p in paths]
        for future in futures:
            record = future.result()
            records.append(record)
            if on_result:
                on_result(record)
    except BaseException:  # Ctrl-C, or a bug: no worker or kernel is left running
        _stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return {
        "schema_version": SCHEMA_VERSION,
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "course_commit": _git("rev-parse", "HEAD") or "unknown",
        "course_modified": None if status is None else bool(status),
        "mode": "fast",
        "jobs": jobs,
        "limits": {"cell_timeout_s": options.cell_timeout, "budget_s": options.budget,
                   "memory_gb": options.memory_gb, "output_chars_per_cell": options.output_chars},
        "sandbox": {"landlock": sandbox_info["landlock"], "uid": sandbox_info["uid"],
                    "note": sandbox_info.get("uid_note")},
        "seconds": round(time.perf_counter() - started, 2),
        "points": sum(r["points"] for r in records),
        "max_points": sum(r["max_points"] for r in records),
        "submissions": records,
    }


# --------------------------------------------------------------------------- reports

SYMBOL = {"passed": "✓", "failed": "✗", "not attempted": "–", "error": "!", "timed out": "⏱", "not graded": "?"}


def line(record: dict[str, Any]) -> str:
    """The one line printed per submission."""
    name = record["file"]
    if record["status"] not in ("graded",) and not record["todos"]:
        return f"{name}: {record['status']}: {record['message']}"
    counts = Counter(t["status"] for t in record["todos"])
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUSES.index(kv[0])))
    extra = f" ({record['status']}: {record['message']})" if record["status"] != "graded" else ""
    return f"{name}: {record['lab']} {record['points']}/{record['max_points']} ({detail}) in {record['seconds']:.0f} s{extra}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    """grades.md: a table an instructor can paste, then each submission's messages."""
    out = [f"# Grades ({report['graded_at']}, course {report['course_commit'][:10]}"
           f"{', modified' if report['course_modified'] else ''})", "",
           "✓ passed · ✗ failed · – not attempted · ! error · ⏱ timed out · ? not graded", "",
           "| submission | lab | points | TODOs |", "| --- | --- | --- | --- |"]
    for r in report["submissions"]:
        todos = " ".join(f"{t['number']}{SYMBOL[t['status']]}" for t in r["todos"]) or _cell(r["status"])
        out.append(f"| {_cell(r['file'])} | {_cell(r['lab'] or '—')} | {r['points']}/{r['max_points']} | {todos} |")
    for r in report["submissions"]:
        details = [f"- TODO {t['number']} {t['status']}: {t['message']}" for t in r["todos"] if t["message"]]
        notes = [f"- note: {n}" for n in r["notes"]] + [f"- TODO {t['number']}: {n}" for t in r["todos"] for n in t["notes"]]
        if r["message"] or details or notes:
            out += ["", f"## {r['file']}", ""] + ([f"{r['status']}: {r['message']}"] if r["message"] else []) + details + notes
    return "\n".join(out) + "\n"


def todo_passed(grades: Path, number: int, submission: str | None = None) -> tuple[bool, str]:
    """Whether TODO ``number`` passed in a grades.json (the only or the named submission)."""
    report = json.loads(grades.read_text(encoding="utf-8"))
    records = [r for r in report["submissions"] if submission is None or r["file"] == submission]
    if len(records) != 1:
        return False, f"{grades} holds {len(records)} matching submissions; name one with --submission"
    todo = next((t for t in records[0]["todos"] if t["number"] == number), None)
    if todo is None:
        return False, f"{records[0]['file']}: no TODO {number} ({records[0]['status']}: {records[0]['message']})"
    return todo["status"] == "passed", f"TODO {number}: {todo['status']}" + (f": {todo['message']}" if todo["message"] else "")


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade submitted labs: one line each, grades.json and grades.md.")
    parser.add_argument("paths", nargs="*", type=Path, help="submitted .ipynb files, or folders holding them")
    parser.add_argument("--jobs", type=int, default=0, help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--lab", help="the lab every submission should be (e.g. 03_cnn_mnist); others get `wrong lab`")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for grades.json and grades.md (default: here)")
    parser.add_argument("--cell-timeout", type=float, default=DEFAULTS["cell_timeout"], help="seconds for a TODO cell and for its check")
    parser.add_argument("--budget", type=float, default=DEFAULTS["budget"], help="seconds for a whole submission")
    parser.add_argument("--memory-gb", type=float, default=DEFAULTS["memory_gb"], help="memory (address space) of a kernel")
    parser.add_argument("--passed", type=Path, metavar="GRADES_JSON", help="with --todo: exit 0 iff that TODO passed")
    parser.add_argument("--todo", type=int, help="the TODO number for --passed")
    parser.add_argument("--submission", help="with --passed: which submission (when the file holds several)")
    args = parser.parse_args(argv)
    if args.passed:
        if args.todo is None:
            parser.error("--passed needs --todo N")
        ok, text = todo_passed(args.passed, args.todo, args.submission)
        print(text)
        return 0 if ok else 1
    if args.lab and not (ROOT / "notebooks" / f"{Path(args.lab).stem}.ipynb").exists():
        names = ", ".join(p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
        parser.error(f"--lab {args.lab}: no such lab; the labs are {names}")
    signal.signal(signal.SIGTERM, _terminated)  # a cancelled CI job: stop the workers too (as on Ctrl-C)
    paths = submissions(args.paths)
    if not paths:
        parser.error('no submissions: give .ipynb files or folders, e.g. make grade SUBMISSIONS="alice.ipynb bob.ipynb"')
    options = Options(jobs=args.jobs, lab=args.lab, cell_timeout=args.cell_timeout, budget=args.budget,
                      memory_gb=args.memory_gb)
    report = grade(paths, options, on_result=lambda r: print(line(r), flush=True))
    files.write_text(args.out / "grades.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    files.write_text(args.out / "grades.md", markdown(report))
    print(f"{len(paths)} submissions, {report['points']}/{report['max_points']} points in {report['seconds']:.0f} s: "
          f"{args.out / 'grades.json'}, {args.out / 'grades.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
