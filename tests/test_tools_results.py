"""``tools.results``: docs/results.md is gathered from the stored notebooks' [metric]
lines, stays in sync with them, and never takes figures from a fast-mode run."""

from __future__ import annotations

import nbformat
import pytest

from tools import results
from utils import ROOT
from utils.results import Metric

SESSION = "TensorFlow 2.21.0, Keras 3.15.1; {mode} mode, seed 42; default strategy; devices: CPU\n"


def stored(tmp_path, name="01_x.ipynb", mode="full", extra="[metric] a/b = 1.5 s\n"):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("run = session.start('nb01')", outputs=[
                nbformat.v4.new_output("stream", name="stdout", text=SESSION.format(mode=mode))]),
            nbformat.v4.new_code_cell("x", outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="hello\n" + extra),
                nbformat.v4.new_output("stream", name="stderr", text="[metric] not/this = 2\n"),
            ]),
        ]
    )
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_collect_reads_stdout_only(tmp_path):
    assert results.collect(stored(tmp_path)) == [Metric("a/b", 1.5, "s")]


def test_page_names_the_run_it_came_from(tmp_path):
    page = results.render_page([stored(tmp_path)])
    assert "| [01_x](../notebooks/01_x.ipynb) | `a/b` | 1.5 s | TensorFlow 2.21.0, Keras 3.15.1, seed 42, devices: CPU |" in page


def test_fast_mode_run_is_refused(tmp_path):
    with pytest.raises(results.ResultsError, match="fast-mode run"):
        results.render_page([stored(tmp_path, mode="fast")])


def test_unexecuted_or_broken_notebook_is_named(tmp_path):
    bare = tmp_path / "02_y.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")]), bare)
    with pytest.raises(results.ResultsError, match="02_y.ipynb has no session line"):
        results.render_page([bare])
    broken = tmp_path / "03_z.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(results.ResultsError, match="03_z.ipynb cannot be read as a notebook"):
        results.render_page([broken])


def test_main_refuses_fast_mode_and_leaves_the_page(tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    stored(tmp_path / "notebooks", mode="fast")
    page = tmp_path / "results.md"
    page.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setattr(results, "PAGE", page)
    assert results.main([]) == 2
    assert "fast-mode run" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8") == "old\n"


def test_results_page_matches_stored_notebooks(committed_root):
    notebooks = sorted((committed_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    page = committed_root / "docs" / "results.md"
    assert results.update(page, notebooks, check=True), "docs/results.md is stale: run `make results`"
    for path in notebooks:
        names = [m.name for m in results.collect(path)]
        assert any(name.endswith("/run_time_s") for name in names), f"{path.name} reports no run time"
