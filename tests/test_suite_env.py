"""The test suite does not depend on the caller's environment: with ``MPLBACKEND=Agg`` set
(as on many CI machines) nbval's kernels still draw inline, so stored figures compare."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from utils import ROOT

pytestmark = pytest.mark.slow


def test_nbval_kernels_draw_inline_when_the_caller_sets_mplbackend_agg(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")])
    NotebookClient(nb, kernel_name="python3").execute()  # stores the inline figure, as `make run` does
    assert [o.output_type for o in nb.cells[0].outputs] == ["display_data"]
    path = tmp_path / "plot.ipynb"
    nbformat.write(nb, path)
    # `make test`'s pytest, with the suite's conftest, started by a caller that has MPLBACKEND=Agg.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "--nbval", "-p", "no:cacheprovider",
         f"--rootdir={tmp_path}", str(path)],
        cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_a_doctest_that_removes_labs_fast_is_an_error_and_later_kernels_still_run_fast(tmp_path):
    """The root conftest.py: once, a doctest in tools/ popped LABS_FAST and every notebook
    that nbval ran after it trained in full mode. Such an item is now an error naming the
    variable, and the next item -- a notebook cell, in a kernel started afterwards -- still
    sees LABS_FAST=1."""
    folder = ROOT / "runs" / f"envguard-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / "bad.py").write_text('"""\n>>> import os; _ = os.environ.pop("LABS_FAST")\n"""\n')
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.environ.get('LABS_FAST'))")])
        nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
        nbformat.write(nb, folder / "z_mode.ipynb")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", "--nbval",
             str(folder / "bad.py"), str(folder / "z_mode.ipynb")],
            cwd=ROOT, env={**os.environ, "LABS_FAST": "1"}, capture_output=True, text=True, timeout=300,
        )
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    assert "changed os.environ without restoring it: LABS_FAST" in done.stdout, done.stdout[-2000:]
    assert "1 passed, 1 error" in done.stdout, done.stdout[-2000:]
