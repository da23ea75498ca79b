"""Headline figures in one parseable line format.

Every notebook reports its headline figures with :func:`report` (usually through
``run.report`` in its closing cell), which prints a line

    [metric] nb01/final_loss = 0.0004321

and logs the same value to the experiment tracker. ``python -m tools.results`` reads
those lines from the stored (executed, full-mode) notebooks into ``docs/results.md``,
so the docs, the tracker and the notebooks never disagree.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.

>>> print(format_line("nb01/final_loss", 0.000432123, unit=""))
[metric] nb01/final_loss = 0.0004321
>>> parse_line("[metric] cnn/test_accuracy = 0.9951")
Metric(name='cnn/test_accuracy', value=0.9951, unit='')
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

LINE_RE = re.compile(r"^\[metric\] (?P<name>[A-Za-z0-9_./-]+) = (?P<value>\S+)(?: (?P<unit>\S+))?$")


class Metric(NamedTuple):
    name: str
    value: float
    unit: str


def format_line(name: str, value: float, unit: str = "") -> str:
    """The one line format: ``[metric] <name> = <value, 4 significant digits> [unit]``."""
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", name):
        raise ValueError(f"metric name {name!r} may only use letters, digits and _ . / -")
    if " " in unit:
        raise ValueError(f"unit {unit!r} must be one word")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name} is {value}: a headline figure must be a finite number")
    text = f"[metric] {name} = {value:.4g}"
    return f"{text} {unit}" if unit else text


def parse_line(line: str) -> Metric | None:
    """Parse one ``[metric]`` line; ``None`` for any other text."""
    match = LINE_RE.match(line.strip())
    if not match:
        return None
    return Metric(match["name"], float(match["value"]), match["unit"] or "")


def report(name: str, value: float, unit: str = "", experiment: Any = None) -> None:
    """Print a headline figure in the one format and log it to ``experiment``."""
    print(format_line(name, value, unit))
    if experiment is not None:
        experiment.log_metric(name, float(value))
