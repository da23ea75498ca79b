"""Headline figures: one line format, printed, logged and parsed back."""

from __future__ import annotations

import math

import pytest

from utils import results


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
