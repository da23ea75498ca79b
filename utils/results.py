"""Headline figures in one parseable line format, and the README table built from them.

Every notebook reports its headline figures with :func:`report`, which prints a line

    [metric] nb01/final_loss = 0.0004321

and logs the same value to the experiment tracker. ``python -m utils.results`` reads
those lines from the stored (executed, full-mode) notebooks and rewrites the results
table in ``README.md`` between ``<!-- results:start -->`` and ``<!-- results:end -->``,
so the README, the tracker and the notebooks never disagree. ``--check`` fails when the
README is out of date.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.

>>> print(format_line("nb01/final_loss", 0.000432123, unit=""))
[metric] nb01/final_loss = 0.0004321
>>> parse_line("[metric] cnn/test_accuracy = 0.9951")
Metric(name='cnn/test_accuracy', value=0.9951, unit='')
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

from utils import ROOT

LINE_RE = re.compile(r"^\[metric\] (?P<name>[A-Za-z0-9_./-]+) = (?P<value>\S+)(?: (?P<unit>\S+))?$")
START, END = "<!-- results:start -->", "<!-- results:end -->"


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


def collect(notebook: Path) -> list[Metric]:
    """All ``[metric]`` lines in a stored notebook's stream outputs, in order."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    found: list[Metric] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stdout":
                continue
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            found.extend(m for m in map(parse_line, text.splitlines()) if m)
    return found


def render_table(notebooks: list[Path]) -> str:
    """A Markdown table of every notebook's headline figures."""
    rows = ["| notebook | figure | value |", "| --- | --- | --- |"]
    for path in notebooks:
        for metric in collect(path):
            value = f"{metric.value:.4g}" + (f" {metric.unit}" if metric.unit else "")
            rows.append(f"| `{path.name}` | `{metric.name}` | {value} |")
    return "\n".join(rows)


def update_readme(readme: Path, notebooks: list[Path], check: bool = False) -> bool:
    """Rewrite the table between the markers; return ``True`` when it was up to date."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block for the results table")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{render_table(notebooks)}\n{END}{tail}"
    if new == text:
        return True
    if not check:
        readme.write_text(new, encoding="utf-8")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    fresh = update_readme(ROOT / "README.md", notebooks, check=args.check)
    if args.check and not fresh:
        print("README.md's results table is stale: run `make results` (python -m utils.results).")
        return 1
    print("README.md results table is up to date." if fresh else "README.md results table rewritten.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
