"""The seeds benchmark's bookkeeping (its notebook runs are too long for the suite)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def seeds():
    spec = importlib.util.spec_from_file_location("seeds_benchmark", ROOT / "benchmarks" / "seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executed(tmp_path: Path, session: str | None, lines: list[str]) -> Path:
    """A notebook saved with a session line and printed lines, as a stored run is."""
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("run = session.start('x')")
    if session:
        first.outputs = [nbformat.v4.new_output("stream", name="stdout", text=session + "\n")]
    last = nbformat.v4.new_code_cell("run.finish()")
    last.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(f"{x}\n" for x in lines))]
    nb.cells = [first, nbformat.v4.new_markdown_cell("[metric] nb99/in_prose = 5"), last]
    path = tmp_path / "99_x.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_stored_run_gives_its_own_seed_and_printed_figures(seeds, tmp_path):
    path = executed(tmp_path, "TensorFlow 2.21.0, Keras 3.15.1; full mode, seed 7; CPU",
                    ["[metric] nb99/accuracy = 0.5", "[metric] nb99/accuracy = 0.9951", "[metric] nb99/run_time_s = 12 s"])
    seed, figures = seeds.stored_run(path)
    assert seed == 7
    assert figures == {"nb99/accuracy": 0.9951, "nb99/run_time_s": 12.0}  # the last value; prose is not output


@pytest.mark.parametrize("session, lines, why", [
    (None, ["[metric] nb99/accuracy = 0.9"], "no session line"),
    ("TensorFlow 2.21.0, Keras 3.15.1; full mode, seed 42; CPU", [], "no stored run"),
    ("TensorFlow 2.21.0, Keras 3.15.1; fast mode, seed 42; CPU", ["[metric] nb99/accuracy = 0.9"], "fast-mode run"),
])
def test_a_notebook_without_a_full_mode_run_is_refused(seeds, tmp_path, session, lines, why):
    with pytest.raises(SystemExit, match=why):
        seeds.stored_run(executed(tmp_path, session, lines))


def test_every_seed_must_meet_a_goal_and_relative_goals_compare_within_a_run(seeds):
    runs = {"08_t": {42: {"nb08/vit_test_accuracy": 0.985, "nb08/transformer_test_bits_per_char": 1.5,
                          "nb08/lstm_test_bits_per_char": 1.7},
                     43: {"nb08/vit_test_accuracy": 0.982, "nb08/transformer_test_bits_per_char": 1.6,
                          "nb08/lstm_test_bits_per_char": 1.65}}}
    rows = {row["figure"]: row for row in seeds.summarize(runs)}
    assert rows["nb08/vit_test_accuracy"]["every_seed_met"] is False  # 0.982 < 0.983 for seed 43
    assert rows["nb08/vit_test_accuracy"]["min"] == 0.982
    assert rows["nb08/transformer_test_bits_per_char"]["every_seed_met"] is True
    assert rows["nb08/lstm_test_bits_per_char"]["every_seed_met"] is None  # no goal of its own
    runs["08_t"][43]["nb08/transformer_test_bits_per_char"] = 1.66
    assert not {row["figure"]: row for row in seeds.summarize(runs)}["nb08/transformer_test_bits_per_char"]["every_seed_met"]
