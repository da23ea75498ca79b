"""The notebook runner and formatter: a broken file, a failing or slow cell and a fast-mode
run each end in one message naming the notebook and the fix; a fast run never lands on the
stored full-mode notebooks."""

from __future__ import annotations

import nbformat
import pytest

from tools import notebooks
from utils import ROOT


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path.write_text(notebooks.canonical_text(nb))
    return path


@pytest.mark.parametrize(
    "text, says",
    [
        ('{\n "cells": [\n  {\n   "cell_type": "code",\n   "sour', "its JSON ends or breaks at line 5"),
        ("<<<<<<< HEAD\n{}\n=======\n", "its JSON ends or breaks at line 1"),
        ('{"cells": "nonsense"}', "JSON but not a valid notebook"),
    ],
    ids=["truncated", "merge-conflict", "not-a-notebook"],
)
def test_an_unreadable_notebook_is_named_with_the_fix(tmp_path, capsys, text, says):
    broken = tmp_path / "04_music_lstm.ipynb"
    broken.write_text(text)
    assert notebooks.main(["fmt", "--check", str(broken)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {broken} is ") and says in line and "git checkout --" in line, line


def test_fmt_check_on_given_paths(tmp_path, capsys):
    good = _notebook(tmp_path / "a.ipynb", "x = 1")
    assert notebooks.main(["fmt", "--check", str(good)]) == 0
    good.write_text(good.read_text().replace('"display_name": "Python 3"', '"display_name": "Python 3 (ipykernel)"'))
    assert notebooks.main(["fmt", "--check", str(good)]) == 1
    assert "not canonical (run `make fmt`)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_cell_past_the_time_limit_is_one_paragraph_naming_notebook_cell_limit_and_fix(tmp_path, capfd):
    slow = _notebook(tmp_path / "03_slow.ipynb", "x = 1", "import time\ntime.sleep(120)", "print('never')")
    before = slow.read_text()
    assert notebooks.main(["run", "--timeout", "3", str(slow)]) == 1
    err = capfd.readouterr().err.strip()  # the kernel's own stderr included
    assert len(err.splitlines()) == 1, err  # one paragraph: no Python or kernel traceback
    assert str(slow) in err and "code cell 2 (`import time`)" in err and "after 3 s" in err
    assert "--timeout SECONDS" in err and "LABS_FAST=1" in err
    assert slow.read_text() == before, "a stopped run must not write the notebook"


@pytest.mark.slow
def test_a_fast_run_writes_to_runs_fast_never_over_the_stored_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABS_FAST", "1")
    monkeypatch.setattr(notebooks, "FAST_RUNS", tmp_path / "runs" / "fast")
    stored = _notebook(tmp_path / "01_x.ipynb", "print('stored full-mode output')")
    before = stored.read_text()
    assert notebooks.main(["run", str(stored)]) == 0
    assert stored.read_text() == before
    executed = nbformat.read(tmp_path / "runs" / "fast" / "01_x.ipynb", as_version=4)
    assert executed.cells[0].outputs[0].text == "stored full-mode output\n"
    assert "the stored notebooks keep their full-mode outputs" in capsys.readouterr().out


def test_a_fast_run_into_notebooks_is_refused_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setenv("LABS_FAST", "1")
    path = notebooks.all_notebooks()[0]
    before = path.read_text()
    assert notebooks.main(["run", "--out", str(ROOT / "notebooks"), str(path)]) == 1
    err = capsys.readouterr().err
    assert "refusing to store a fast-mode run over notebooks/" in err and "runs/fast/" in err
    assert path.read_text() == before


@pytest.mark.slow
def test_a_dead_kernel_is_named(tmp_path, capsys):
    dying = _notebook(tmp_path / "05_dies.ipynb", "import os\nos._exit(1)")
    assert notebooks.main(["run", str(dying)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {dying}: the kernel died in code cell 1 (`import os`)"), err


@pytest.mark.slow
def test_a_failing_cell_is_named(tmp_path, capsys):
    failing = _notebook(tmp_path / "02_fail.ipynb", "x = 1", "1 / 0")
    assert notebooks.main(["run", str(failing)]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first == f"error: {failing}: code cell 2 (`1 / 0`) failed with ZeroDivisionError: division by zero"
