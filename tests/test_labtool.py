"""The lab tool: markers become TODO stubs, malformed markers fail loudly, labs/ is fresh."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from tools import labtool
from utils import ROOT
from tools.labtool import LabToolError


def strip(source: str):
    return labtool.strip_source(source, "nb.ipynb", 1, 1)


def test_block_marker_becomes_todo_and_raise_keeping_indent():
    src = "def f(x):\n    ### BEGIN SOLUTION: double x\n    y = 2 * x\n    return y\n    ### END SOLUTION\n"
    out, todos = strip(src)
    assert out == 'def f(x):\n    # TODO 1: double x\n    raise NotImplementedError("TODO 1")\n'
    assert todos[0].solution == "    y = 2 * x\n    return y" and todos[0].hint == "double x"


def test_line_marker_becomes_ellipsis():
    out, todos = strip("images = tf.zeros([2, 3])  ### SOLUTION: zeros of shape (2, 3)")
    assert out == "images = ...  # TODO 1: zeros of shape (2, 3)"
    assert todos[0].solution == "images = tf.zeros([2, 3])"


def test_numbering_continues_across_a_cell():
    src = "a = 1  ### SOLUTION: one\ndef f():\n    ### BEGIN SOLUTION: two\n    return 2\n    ### END SOLUTION"
    out, todos = labtool.strip_source(src, "nb", 3, 4)
    assert [t.number for t in todos] == [4, 5] and "TODO 5" in out


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("### BEGIN SOLUTION: a\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a `### BEGIN SOLUTION`"),
        ("### BEGIN SOLUTION: a\n### BEGIN SOLUTION: b\nx=1\n### END SOLUTION\n### END SOLUTION", "cannot nest"),
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "needs a hint"),
        ("### BEGIN SOLUTION: a\n\n### END SOLUTION", "empty solution region"),
        ("print(1)  ### SOLUTION: print", "not one assignment"),
        ("x = 1  ### SOLUTION", "needs a hint"),
        ("#### SOLUTION BEGINS HERE", "looks like a solution marker but is not one"),
        # near misses would otherwise copy the solution into the lab silently
        ("    ### begin solution: a\n    x = 1\n    ### end solution", "looks like a solution marker"),
        ("## BEGIN SOLUTION: a\nx = 1\n## END SOLUTION", "looks like a solution marker"),
        ("# BEGIN SOLUTION: a\nx = 1\n# END SOLUTION", "looks like a solution marker"),
        ("###BEGIN SOLUTION: a\nx = 1\n###END SOLUTION", "looks like a solution marker"),
        ("### BEGIN SOLUTIONS: a\nx = 1\n### END SOLUTIONS", "looks like a solution marker"),
        ("x = 1  ## SOLUTION: one", "looks like a solution marker"),
    ],
)
def test_malformed_markers_fail_with_location(source, fragment):
    with pytest.raises(LabToolError) as info:
        strip(source)
    assert fragment in str(info.value) and "nb.ipynb, code cell 1" in str(info.value)


def notebook(*sources):
    cells = [nbformat.v4.new_markdown_cell("# T\n[colab](notebooks/01_t.ipynb)")]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.v4.new_notebook(cells=cells)


def test_todo_must_be_followed_by_a_check():
    with pytest.raises(LabToolError, match="must call a check"):
        labtool.make_lab(notebook("x = 1  ### SOLUTION: one", "print(x)"), "01_t.ipynb")
    with pytest.raises(LabToolError, match="no check cell after it"):
        labtool.make_lab(notebook("x = 1  ### SOLUTION: one"), "01_t.ipynb")
    with pytest.raises(LabToolError, match="no solution markers"):
        labtool.make_lab(notebook("x = 1"), "01_t.ipynb")


def test_lab_clears_outputs_links_to_itself_and_round_trips():
    nb = notebook("x = 1  ### SOLUTION: one", "checks.thing(x)")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 1
    lab, todos = labtool.make_lab(nb, "01_t.ipynb")
    assert "labs/01_t.ipynb" in lab.cells[0].source and "This is the lab" in lab.cells[1].source
    code = [c for c in lab.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    filled = labtool.fill_lab(lab, todos)
    assert [c.source for c in filled.cells if c.cell_type == "code"] == ["x = 1", "checks.thing(x)"]


def test_committed_labs_are_fresh(committed_root):
    assert labtool.build(committed_root / "notebooks", committed_root / "labs", check=True) == []


def test_editing_a_notebook_makes_labs_stale(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(ROOT / "labs", tmp_path / "labs")
    path = tmp_path / "notebooks" / "01_tensors_gradienttape.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nAn edit nobody propagated."
    nbformat.write(nb, path)
    assert labtool.build(tmp_path / "notebooks", tmp_path / "labs", check=True) == ["01_tensors_gradienttape.ipynb"]
    assert labtool.build(tmp_path / "notebooks", tmp_path / "labs") == ["01_tensors_gradienttape.ipynb"]
    assert labtool.build(tmp_path / "notebooks", tmp_path / "labs", check=True) == []


def test_cli_check_fails_on_stale(monkeypatch, tmp_path, capsys):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "labs").mkdir()
    monkeypatch.setattr(labtool, "ROOT", tmp_path)
    assert labtool.main(["--check"]) == 1
    assert "labs/ is stale" in capsys.readouterr().out


@pytest.mark.parametrize("cell_type", ["markdown", "raw"])
def test_markers_outside_code_cells_are_refused(cell_type):
    nb = notebook("x = 1  ### SOLUTION: one", "checks.tensors.image_batch(x)")
    make = nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_raw_cell
    nb.cells.insert(0, make("Intro\n### BEGIN SOLUTION: a\nsecret = 42\n### END SOLUTION"))
    with pytest.raises(LabToolError, match=rf"{cell_type} cell 1 .*line 2: a solution marker outside a code cell"):
        labtool.make_lab(nb, "01_t.ipynb")


def leaked_lines(nb, lab, todos):
    """Solution lines of substance that appear as a line of the lab, except lines the
    notebook also has in code outside its solution regions."""
    from tests.test_hints import normalize, significant_lines

    outside = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for raw in cell.source.splitlines():
            if labtool.BEGIN.match(raw) or labtool.END.match(raw):
                inside = bool(labtool.BEGIN.match(raw))
            elif not inside and not labtool.LINE.match(raw):
                outside.add(normalize(raw))
    lab_lines = {normalize(line) for cell in lab.cells for line in cell.source.splitlines()}
    return [(t.number, line) for t in todos for line in significant_lines(t.solution)
            if line in lab_lines and line not in outside]


NOTEBOOK_PATHS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_no_solution_line_reaches_the_lab(path):
    nb = nbformat.read(path, as_version=4)
    lab, todos = labtool.make_lab(nb, path.name)
    assert not leaked_lines(nb, lab, todos)
    # the measure sees a leak: the solved lab has every solution line
    assert len(leaked_lines(nb, labtool.fill_lab(lab, todos), todos)) >= len(todos) // 2
