"""Every file the course tools rewrite is written atomically: a write that fails half-way
(here a file-size limit, standing in for a full disk or a killed process) leaves the old
file intact -- ``notebooks/`` is the only copy of the solutions."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from tools import files
from utils import ROOT

NOTEBOOK = "05_vae.ipynb"  # one of the larger notebooks: well over the limit below
LIMIT = 4096  # bytes a write may reach in the child process


def run_limited(code: str, kill: bool) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python whose files may not grow past LIMIT bytes; with
    ``kill`` the child dies of SIGXFSZ mid-write, otherwise the write raises EFBIG."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL if kill else signal.SIG_IGN)

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, preexec_fn=limit, capture_output=True,
                          text=True, timeout=120)


def scratch_course(tmp_path):
    """A scratch copy of one notebook and a deliberately different (stale) lab of it."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "labs").mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / "notebooks" / NOTEBOOK)
    nb = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text(encoding="utf-8"))
    nb["cells"] = nb["cells"][:3]
    (tmp_path / "labs" / NOTEBOOK).write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    return tmp_path



@pytest.mark.parametrize("kill", [False, True], ids=["write-fails", "process-killed"])
def test_labtool_keeps_the_old_lab(tmp_path, kill):
    course = scratch_course(tmp_path)
    old = (course / "labs" / NOTEBOOK).read_text(encoding="utf-8")
    code = ("from pathlib import Path; from tools import labtool; "
            f"labtool.build(Path({str(course / 'notebooks')!r}), Path({str(course / 'labs')!r}))")
    result = run_limited(code, kill)
    assert result.returncode != 0, "the size limit did not bite: the test proves nothing"
    assert (course / "labs" / NOTEBOOK).read_text(encoding="utf-8") == old
    json.loads(old)
    if not kill:  # a failed write cleans up after itself
        assert [p.name for p in (course / "labs").iterdir()] == [NOTEBOOK]


@pytest.mark.parametrize("kill", [False, True], ids=["write-fails", "process-killed"])
def test_notebook_formatter_keeps_the_old_notebook(tmp_path, kill):
    course = scratch_course(tmp_path)
    path = course / "notebooks" / NOTEBOOK
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3 (ipykernel)"  # not canonical: fmt must rewrite it
    old = json.dumps(nb, indent=2) + "\n"
    path.write_text(old, encoding="utf-8")
    code = f"from pathlib import Path; from tools import notebooks; notebooks.format_all([Path({str(path)!r})])"
    result = run_limited(code, kill)
    assert result.returncode != 0, "the size limit did not bite: the test proves nothing"
    assert path.read_text(encoding="utf-8") == old
    if not kill:
        assert [p.name for p in path.parent.iterdir()] == [NOTEBOOK]


@pytest.mark.parametrize("kill", [False, True], ids=["write-fails", "process-killed"])
def test_results_keeps_the_old_page(tmp_path, kill):
    page = tmp_path / "results.md"
    old = "old page\n"
    page.write_text(old, encoding="utf-8")
    code = ("from pathlib import Path; from tools import results; "
            f"results.files.write_text(Path({str(page)!r}), 'x' * {LIMIT * 4})")
    result = run_limited(code, kill)
    assert result.returncode != 0, "the size limit did not bite: the test proves nothing"
    assert page.read_text(encoding="utf-8") == old
    if not kill:
        assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_atomic_write_keeps_permissions_and_replaces(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    files.write_text(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert path.stat().st_mode & 0o777 == 0o640
