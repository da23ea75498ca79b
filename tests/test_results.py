"""Headline figures: one line format, parsed back, and the README table in sync."""

from __future__ import annotations

import math

import nbformat
import pytest

from utils import ROOT, results


def test_format_and_parse_round_trip():
    line = results.format_line("cnn/test_accuracy", 0.99512, unit="")
    assert line == "[metric] cnn/test_accuracy = 0.9951"
    assert results.parse_line(line) == results.Metric("cnn/test_accuracy", 0.9951, "")
    timed = results.format_line("nb01/run_time_s", 312.66, unit="s")
    assert results.parse_line(timed) == results.Metric("nb01/run_time_s", 312.7, "s")
    assert results.parse_line("loss = 3") is None


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_values_are_refused(value):
    with pytest.raises(ValueError, match="finite"):
        results.format_line("x", value)


def test_bad_names_are_refused():
    with pytest.raises(ValueError):
        results.format_line("has space", 1.0)


def test_report_prints_and_logs(capsys):
    logged = []

    class Experiment:
        def log_metric(self, name, value):
            logged.append((name, value))

    results.report("nb99/loss", 0.25, experiment=Experiment())
    assert capsys.readouterr().out == "[metric] nb99/loss = 0.25\n"
    assert logged == [("nb99/loss", 0.25)]


def test_collect_reads_stdout_of_stored_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "x",
                outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="hello\n[metric] a/b = 1.5 s\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="[metric] not/this = 2\n"),
                ],
            )
        ]
    )
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert results.collect(path) == [results.Metric("a/b", 1.5, "s")]


def test_readme_table_matches_stored_notebooks():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert results.update_readme(ROOT / "README.md", notebooks, check=True), (
        "README.md's results table is stale: run `make results`"
    )
    for path in notebooks:
        names = [m.name for m in results.collect(path)]
        assert any(name.endswith("/run_time_s") for name in names), f"{path.name} reports no run time"
