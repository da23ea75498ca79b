"""Benchmark: how much a notebook's headline figures move from seed to seed.

Executes a notebook itself -- every cell, in full mode unless ``LABS_FAST=1`` is set --
once per seed (``LABS_SEED``, read by ``utils.session.start``), reads the ``[metric]``
lines it prints, and prints for each figure its value per seed, mean, spread (standard
deviation), minimum and maximum, and whether every seed met the course's goal for it.
The stored notebook is never touched: each executed copy is written to
``runs/seeds/<notebook>-seed<N>.ipynb`` for inspection.

Usage (from the repository root; the notebooks take up to 15 minutes each on a 2-core CPU)::

    python benchmarks/seeds.py notebooks/06_gan.ipynb --seeds 42 43 44
    python benchmarks/seeds.py notebooks/06_gan.ipynb --stored --seeds 43 44   # seed 42: the stored run
    python benchmarks/seeds.py notebooks/0[3-8]*.ipynb --seeds 42 43 44 --json runs/seeds/all.json
    python benchmarks/seeds.py --table runs/seeds/all.json     # the Markdown table of docs/seeds.md

Not collected by pytest: it trains for real. ``make seeds`` runs the whole set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The course's goals for the headline figures (full mode): (direction, threshold).
#: A goal names another figure where the comparison is relative (the transformer must
#: beat the LSTM it is trained against in the same run).
GOALS: dict[str, tuple[str, float | str]] = {
    "nb03/baseline_test_accuracy": (">=", 0.978),
    "nb03/cnn_fit_test_accuracy": (">=", 0.994),
    "nb04/test_bits_per_char": ("<=", 1.5),
    "nb04/valid_tune_rate_T1": (">=", 0.85),
    "nb04/valid_tune_rate_T0.8": (">=", 0.95),
    "nb05/vae_32d_test_neg_elbo": ("<=", 92.0),
    "nb06/gan_classifier_score": (">=", 9.0),
    "nb07/mha_vs_keras_max_abs_diff": ("<=", 1e-5),
    "nb08/transformer_test_bits_per_char": ("<", "nb08/lstm_test_bits_per_char"),
    "nb08/vit_test_accuracy": (">=", 0.983),
    "nb08/run_time_s": ("<=", 900.0),
    "nb03/run_time_s": ("<=", 900.0),
    "nb04/run_time_s": ("<=", 900.0),
    "nb05/run_time_s": ("<=", 900.0),
    "nb06/run_time_s": ("<=", 900.0),
}


def run_notebook(path: Path, seed: int, timeout: int) -> tuple[dict[str, float], float]:
    """Execute ``path`` under ``seed``; return its ``[metric]`` figures and the seconds taken.

    A seed whose run falls below one of the notebook's floors (``run.expect`` raises
    ``RunBelowFloor`` in the closing cell) still gives its figures: the closing cell is run
    again with the floors switched off, so that the spread includes the bad seeds, and the
    floor that failed is printed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    os.environ["LABS_SEED"] = str(seed)
    started = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    try:
        with client.setup_kernel():
            for index in code:
                try:
                    client.execute_cell(nb.cells[index], index)
                except CellExecutionError as err:
                    if err.ename != "RunBelowFloor" or index != code[-1]:
                        raise
                    print(f"  below a floor: {err.evalue}", flush=True)
                    nb.cells.insert(index, nbformat.v4.new_code_cell("run.expect = lambda condition, what: None"))
                    client.execute_cell(nb.cells[index], index)
                    nb.cells[index + 1].outputs = []
                    client.execute_cell(nb.cells[index + 1], index + 1)
    finally:
        out = ROOT / "runs" / "seeds" / f"{path.stem}-seed{seed}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return printed_figures(nb), time.perf_counter() - started


def stdout_lines(nb: Any) -> list[str]:
    """Every line a notebook's code cells printed to stdout, in order."""
    return [line for cell in nb.cells for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stdout"
            for line in output.get("text", "").splitlines()]


def printed_figures(nb: Any) -> dict[str, float]:
    """The ``[metric]`` figures an executed notebook printed (the last value of each name)."""
    from utils.results import parse_line

    return {m.name: m.value for m in map(parse_line, stdout_lines(nb)) if m}


def stored_run(path: Path) -> tuple[int, dict[str, float]]:
    """The seed and figures of the stored notebook's own run, read from its saved outputs.

    Read as ``make results`` reads them (``tools.results``): a notebook saved without a
    session line, or from a fast-mode run, is refused; the seed is the one its session line
    names (``full mode, seed 42; ...``)."""
    import re

    from tools import results

    try:
        facts = results.run_facts(path)
        figures = {metric.name: metric.value for metric in results.collect(path)}
    except results.ResultsError as err:
        raise SystemExit(str(err)) from None
    seed = re.search(r"\bseed (\d+)\b", facts)
    if seed is None or not figures:
        raise SystemExit(f"{path}: no stored run to read (no seed in its session line or no [metric] lines)")
    return int(seed.group(1)), figures


def goal_met(name: str, value: float, figures: dict[str, float]) -> bool | None:
    """Whether ``value`` meets the goal for ``name`` (``None`` when there is no goal)."""
    if name not in GOALS:
        return None
    op, threshold = GOALS[name]
    limit = figures.get(threshold, float("nan")) if isinstance(threshold, str) else threshold
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit}[op]


def summarize(runs: dict[str, dict[int, dict[str, float]]]) -> list[dict[str, Any]]:
    """One row per figure: values per seed, mean, sd, min, max, goal and whether every seed met it."""
    rows = []
    for notebook, by_seed in runs.items():
        names = sorted({name for figures in by_seed.values() for name in figures})
        for name in names:
            values = {seed: figures[name] for seed, figures in by_seed.items() if name in figures}
            met = [goal_met(name, v, by_seed[seed]) for seed, v in values.items()]
            goal = GOALS.get(name)
            rows.append({
                "notebook": notebook, "figure": name, "values": values,
                "mean": statistics.fmean(values.values()),
                "sd": statistics.stdev(values.values()) if len(values) > 1 else 0.0,
                "min": min(values.values()), "max": max(values.values()),
                "goal": f"{goal[0]} {goal[1]}" if goal else "",
                "every_seed_met": None if goal is None else all(bool(m) for m in met),
            })
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The rows as a Markdown table (the one in ``docs/seeds.md``)."""
    seeds = sorted({int(s) for row in rows for s in row["values"]})
    head = ["figure", *[f"seed {s}" for s in seeds], "mean", "sd", "min", "goal", "every seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        if row["figure"].endswith("/run_time_s") and not row["goal"]:
            continue
        per_seed = [f"{row['values'][s]:.4g}" if s in row["values"] else "" for s in seeds]
        met = {None: "", True: "yes", False: "**no**"}[row["every_seed_met"]]
        lines.append("| " + " | ".join([f"`{row['figure']}`", *per_seed, f"{row['mean']:.4g}", f"{row['sd']:.2g}",
                                        f"{row['min']:.4g}", row["goal"], met]) + " |")
    lines.append("")
    lines.append(f"Measured with `{meta.get('command', 'python benchmarks/seeds.py')}` on {meta.get('machine', '?')}, "
                 f"TensorFlow {meta.get('tensorflow', '?')}, Keras {meta.get('keras', '?')}, "
                 f"{meta.get('mode', 'full')} mode.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--seeds", type=int, nargs="*", default=[42, 43, 44], help="seeds to run (none: with --stored, only read)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--json", type=Path, help="also write (and merge into) this JSON file")
    parser.add_argument("--stored", action="store_true",
                        help="also count each stored notebook's own run (its saved outputs) as one seed, without running it")
    parser.add_argument("--table", type=Path, help="print the Markdown table of a JSON file written before, and stop")
    args = parser.parse_args(argv)
    if args.table:
        saved = json.loads(args.table.read_text(encoding="utf-8"))
        runs = {nb: {int(s): f for s, f in by_seed.items()} for nb, by_seed in saved["runs"].items()}
        print(markdown(summarize(runs), saved["meta"]), end="")
        return 0
    if not args.notebooks:
        parser.error("name at least one notebook (or --table FILE)")
    import keras
    import tensorflow as tf

    from utils import mode

    saved = json.loads(args.json.read_text(encoding="utf-8")) if args.json and args.json.exists() else {"runs": {}}
    runs: dict[str, dict[int, dict[str, float]]] = {nb: {int(s): f for s, f in by_seed.items()}
                                                    for nb, by_seed in saved["runs"].items()}
    def save() -> None:
        if args.json:
            meta = {"command": " ".join(["python benchmarks/seeds.py", *sys.argv[1:]]),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                    "tensorflow": tf.__version__, "keras": keras.__version__, "mode": mode.mode_name()}
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1), encoding="utf-8")

    for path in args.notebooks:
        if args.stored:
            seed, figures = stored_run(path)
            runs.setdefault(path.stem, {})[seed] = figures
            print(f"{path.name}, seed {seed}: the stored run's figures", flush=True)
            save()
        for seed in args.seeds:
            print(f"{path.name}, seed {seed} ...", flush=True)
            figures, seconds = run_notebook(path.resolve(), seed, args.timeout)
            runs.setdefault(path.stem, {})[seed] = figures
            print(f"  {seconds:.0f} s: " + ", ".join(f"{k} = {v:.4g}" for k, v in figures.items()), flush=True)
            save()
    rows = summarize(runs)
    for row in rows:
        values = ", ".join(f"{v:.4g}" for v in row["values"].values())
        met = {None: "", True: "  goal met by every seed", False: "  GOAL MISSED by some seed"}[row["every_seed_met"]]
        print(f"{row['figure']:42s} {values:32s} mean {row['mean']:.4g} sd {row['sd']:.2g} min {row['min']:.4g}{met}")
    return 0 if all(r["every_seed_met"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
