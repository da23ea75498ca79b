"""Labs executed for real (fast mode): an untouched lab stops at its first check with a
friendly message and every check reports its own TODO. The solved lab is, cell for cell,
the notebook (tested here), so nbval's run of each notebook -- every cell, its outputs
compared with the stored ones, each check's [ok] line among them -- is the solved lab's run:
it is not executed a second time."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

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
def test_untouched_lab_stops_at_its_first_check_and_every_check_reports_its_own_todo(name):
    """One execution of the untouched lab, every cell run even after an error (as a learner
    who presses "Run all" sees it): the first error is the check right after the first TODO,
    a TodoNotDone in one plain line; and every check after a TODO cell reports that TODO."""
    lab = execute(nbformat.read(ROOT / "labs" / name, as_version=4), allow_errors=True)
    cells = code_cells(lab)
    first_todo = next(i for i, c in enumerate(cells) if todo_numbers(c.source))
    failed = next(i for i, c in enumerate(cells) if any(o.output_type == "error" for o in c.get("outputs", [])))
    assert failed == first_todo + 1, "the lab must stop at the check right after its first TODO"
    assert "checks." in cells[failed].source
    error = next(o for o in cells[failed].outputs if o.output_type == "error")
    assert error.ename == "TodoNotDone", error.evalue
    assert "TODO 1" in error.evalue or "still `...`" in error.evalue
    assert len(error.traceback) == 1 and "site-packages" not in error.traceback[0]
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
