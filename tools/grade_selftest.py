"""Submissions made from the labs at run time, and ``make grade-selftest``.

The fixtures are never stored: they are built from the current labs (so they follow every
change to a lab), by putting code into each TODO region of the pristine lab:

- ``solved`` -- the reference solutions;
- ``untouched`` -- the stubs as they are;
- ``wrong(numbers)`` -- the TODOs in ``numbers`` get code that runs but does nothing
  (``pass``, or ``name = None`` for a one-line TODO), the others their solutions; the
  ``odd`` and ``even`` fixtures together put every TODO wrong once, each next to solved ones.

``python -m tools.grade_selftest`` (``make grade-selftest``) grades every lab's solved, odd
and even fixtures in one call, checks every verdict, executes every solved lab top to
bottom (fast mode) one after another, and prints both times with their ratio (CPU seconds
too, which other load on the machine does not inflate). It fails if a verdict is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nbformat

from tools.grade import Lab, Options, TodoCell, catalogue, grade
from tools.grade_run import compose
from utils import ROOT


def notebook(lab: Lab, code: Callable[[TodoCell, int], str]) -> Any:
    """The pristine lab with ``code(cell, number)`` in each TODO region."""
    nb = nbformat.v4.new_notebook()
    cells = []
    by_index = {cell.index: cell for cell in lab.todo_cells}
    for i, c in enumerate(lab.cells):
        source = c["source"]
        if i in by_index:
            cell = by_index[i]
            source = compose(cell.template, {n: code(cell, n) for n in cell.numbers})
        new = nbformat.v4.new_code_cell(source) if c["cell_type"] == "code" else nbformat.v4.new_markdown_cell(source)
        new.id = c["id"] or new.id
        cells.append(new)
    nb.cells = cells
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


def wrong_code(cell: TodoCell, number: int) -> str:
    """Code for a TODO that runs but does nothing useful (at the stub's indentation)."""
    stub = cell.stubs[number]
    if "raise NotImplementedError" not in stub:  # a one-line TODO: `name = ...`
        return stub.split("=", 1)[0].rstrip() + " = None"
    indent = stub[: len(stub) - len(stub.lstrip())]
    return f"{indent}pass"


def solved(lab: Lab) -> Any:
    return notebook(lab, lambda cell, n: cell.reference[n])


def untouched(lab: Lab) -> Any:
    return notebook(lab, lambda cell, n: cell.stubs[n])


def wrong(lab: Lab, numbers: Iterable[int]) -> Any:
    bad = set(numbers)
    return notebook(lab, lambda cell, n: wrong_code(cell, n) if n in bad else cell.reference[n])


def odd(lab: Lab) -> Any:
    return wrong(lab, [n for n in lab.numbers if n % 2])


def even(lab: Lab) -> Any:
    return wrong(lab, [n for n in lab.numbers if not n % 2])


def write(nb: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def expected(lab: Lab, kind: str) -> dict[int, str]:
    """The verdict every TODO of a fixture must get."""
    if kind == "solved":
        return {n: "passed" for n in lab.numbers}
    if kind == "untouched":
        return {n: "not attempted" for n in lab.numbers}
    parity = 1 if kind == "odd" else 0
    return {n: "failed" if n % 2 == parity else "passed" for n in lab.numbers}


def wrong_verdicts(report: dict[str, Any], kinds: dict[str, tuple[Lab, str]]) -> list[str]:
    """Every TODO verdict in ``report`` that is not what its fixture must get."""
    problems = []
    for record in report["submissions"]:
        lab, kind = kinds[record["file"]]
        want = expected(lab, kind)
        got = {t["number"]: t["status"] for t in record["todos"]}
        if record["lab"] != Path(lab.name).stem or got != want:
            problems.append(f"{record['file']}: expected {want}, got {got} ({record['status']}: {record['message']})")
        for todo in record["todos"]:
            if todo["status"] == "failed" and not todo["message"]:
                problems.append(f"{record['file']}: TODO {todo['number']} failed without the check's message")
    return problems


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime


def execute_solved(lab: Lab) -> float:
    """Execute the solved lab top to bottom in fast mode, as a learner's "Run all" would."""
    from nbclient import NotebookClient

    nb = solved(lab)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "labs")}})
    started = time.perf_counter()
    client.execute()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade every lab's solved/odd/even fixtures; time grading against execution.")
    parser.add_argument("--labs", nargs="*", help="only these labs (e.g. 01_tensors_gradienttape)")
    parser.add_argument("--jobs", type=int, default=0, help="grading jobs (default: the number of cores)")
    parser.add_argument("--skip-execute", action="store_true", help="do not time the labs' own execution")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    os.environ.update(LABS_FAST="1", LABS_TRACKING="disabled")
    labs = catalogue()
    if args.labs:
        labs = {k: v for k, v in labs.items() if Path(k).stem in {Path(n).stem for n in args.labs}}
    figures: dict[str, Any] = {"labs": sorted(Path(n).stem for n in labs), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="labs-grade-selftest-") as folder:
        kinds: dict[str, tuple[Lab, str]] = {}
        solved_paths, all_paths = [], []
        for name, lab in labs.items():
            for kind, make in (("solved", solved), ("odd", odd), ("even", even)):
                path = write(make(lab), Path(folder) / kind / name)
                kinds[str(path)] = (lab, kind)
                all_paths.append(path)
                if kind == "solved":
                    solved_paths.append(path)
        cpu, started = _cpu(), time.perf_counter()
        solved_report = grade(solved_paths, Options(jobs=args.jobs))
        figures["grade_solved_wall_s"] = round(time.perf_counter() - started, 1)
        figures["grade_solved_cpu_s"] = round(_cpu() - cpu, 1)
        figures["grade_jobs"] = solved_report["jobs"]
        figures["per_lab_grade_s"] = {r["lab"]: r["seconds"] for r in solved_report["submissions"]}
        cpu, started = _cpu(), time.perf_counter()
        wrong_report = grade([p for p in all_paths if p not in solved_paths], Options(jobs=args.jobs))
        figures["grade_odd_even_wall_s"] = round(time.perf_counter() - started, 1)
        figures["grade_odd_even_cpu_s"] = round(_cpu() - cpu, 1)
        problems = wrong_verdicts(solved_report, kinds) + wrong_verdicts(wrong_report, kinds)
        print(json.dumps({k: figures[k] for k in ("grade_solved_wall_s", "grade_solved_cpu_s", "grade_jobs",
                                                  "per_lab_grade_s", "grade_odd_even_wall_s")}), flush=True)
        for problem in problems:
            print(f"WRONG: {problem}", file=sys.stderr, flush=True)
        if not args.skip_execute:
            cpu, started = _cpu(), time.perf_counter()
            executed, failed = {}, {}
            for name, lab in labs.items():
                try:
                    executed[Path(name).stem] = round(execute_solved(lab), 1)
                except Exception as err:  # noqa: BLE001 - a lab that does not run is reported, not a crash
                    last = [line for line in str(err).strip().splitlines() if line.strip()][-1:] or [type(err).__name__]
                    failed[Path(name).stem] = last[0][:300]
                print(f"executed {Path(name).stem}: {executed.get(Path(name).stem, failed.get(Path(name).stem))}", flush=True)
            figures["per_lab_execute_s"] = executed
            figures["execute_failed"] = failed
            figures["execute_solved_wall_s"] = round(time.perf_counter() - started, 1)
            figures["execute_solved_cpu_s"] = round(_cpu() - cpu, 1)
            # Each submission's grading time against executing its lab (labs that ran to the end):
            both = [lab for lab in executed if figures["per_lab_grade_s"].get(lab)]
            figures["per_lab_ratio"] = {lab: round(figures["per_lab_grade_s"][lab] / executed[lab], 2) for lab in both}
            if not failed:
                figures["ratio_wall"] = round(figures["grade_solved_wall_s"] / figures["execute_solved_wall_s"], 2)
                figures["ratio_cpu"] = round(figures["grade_solved_cpu_s"] / figures["execute_solved_cpu_s"], 2)
    figures["load_after"] = os.getloadavg()
    figures["wrong_verdicts"] = problems
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    for lab, why in figures.get("execute_failed", {}).items():
        print(f"NOT TIMED: executing the solved {lab} failed ({why}); the whole-call ratio needs every lab", file=sys.stderr)
    if "ratio_wall" in figures:
        print(f"grading the solved labs took {figures['grade_solved_wall_s']} s ({figures['grade_solved_cpu_s']} CPU s, "
              f"{figures['grade_jobs']} jobs); executing them took {figures['execute_solved_wall_s']} s "
              f"({figures['execute_solved_cpu_s']} CPU s): {figures['ratio_wall']}x the wall time, "
              f"{figures['ratio_cpu']}x the CPU time")
    return 1 if problems or figures.get("execute_failed") else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
