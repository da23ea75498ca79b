"""Labs executed for real (fast mode): an untouched lab stops at its first check with a
friendly message, every check reports its own TODO, and the solved lab passes every check
(and is, cell for cell, the notebook that nbval runs to the end)."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools import labtool
from utils import ROOT

pytestmark = pytest.mark.slow

LABS = sorted(p.name for p in (ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def fast_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("LABS_FAST", "1")
    monkeypatch.setenv("LABS_TRACKING", "disabled")


def execute(nb, allow_errors=False):
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(ROOT / "labs")}})
    client.execute()
    return nb


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def todo_numbers(source):
    return [int(n) for n in re.findall(r"# TODO (\d+):", source)]


@pytest.mark.parametrize("name", LABS)
def test_untouched_lab_stops_at_first_check_with_todo_message(name):
    lab = nbformat.read(ROOT / "labs" / name, as_version=4)
    with pytest.raises(CellExecutionError) as info:
        execute(lab)
    assert info.value.ename == "TodoNotDone", info.value.evalue
    assert "TODO 1" in info.value.evalue or "still `...`" in info.value.evalue
    cells = code_cells(lab)
    first_todo = next(i for i, c in enumerate(cells) if todo_numbers(c.source))
    failed = next(i for i, c in enumerate(cells) if any(o.output_type == "error" for o in c.get("outputs", [])))
    assert failed == first_todo + 1, "the lab must stop at the check right after its first TODO"
    assert "checks." in cells[failed].source
    error = next(o for o in cells[failed].outputs if o.output_type == "error")
    assert len(error.traceback) == 1 and "site-packages" not in error.traceback[0]


@pytest.mark.parametrize("name", LABS)
def test_every_check_reports_its_own_unfilled_todo(name):
    lab = execute(nbformat.read(ROOT / "labs" / name, as_version=4), allow_errors=True)
    cells = code_cells(lab)
    for i, cell in enumerate(cells):
        numbers = todo_numbers(cell.source)
        if not numbers:
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], f"TODO cell {i} itself failed"
        errors = [o for o in cells[i + 1].outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "TodoNotDone", f"check after TODO {numbers} did not report it"


def test_solved_lab_is_the_notebook_so_the_notebook_run_covers_it():
    """Filling every TODO back in gives the notebook's code, cell for cell: the nbval run
    of each notebook (fast mode, to the last cell) is therefore also a run of the solved lab."""
    for name in LABS:
        notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        lab, todos = labtool.make_lab(notebook, name)
        filled = [c.source for c in code_cells(labtool.fill_lab(lab, todos))]
        assert filled == [without_markers(c.source) for c in code_cells(notebook)], name


def without_markers(source):
    """The notebook's code as the learner's solved lab has it: no solution marker lines or comments."""
    lines = []
    for line in source.split("\n"):
        if labtool.BEGIN.match(line) or labtool.END.match(line):
            continue
        one_line = labtool.LINE.match(line)
        lines.append(one_line["code"] if one_line else line)
    return "\n".join(lines)


@pytest.mark.parametrize("name", LABS)
def test_lab_with_solutions_filled_in_passes_every_check(name):
    """The solved lab, executed up to its last check (the rest is the notebook's code, run by
    nbval): every check prints its one [ok] line."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    lab, todos = labtool.make_lab(notebook, name)
    assert len(todos) >= 4
    solved = labtool.fill_lab(lab, todos)
    last_check = max(i for i, c in enumerate(solved.cells) if c.cell_type == "code" and c.source.lstrip().startswith("checks."))
    solved.cells = solved.cells[: last_check + 1]
    solved = execute(solved)
    outputs = "".join(o.get("text", "") for c in code_cells(solved) for o in c.outputs if o.output_type == "stream")
    n_checks = sum(c.source.lstrip().startswith("checks.") for c in code_cells(solved))
    assert n_checks >= 4 and outputs.count("[ok]") == n_checks
