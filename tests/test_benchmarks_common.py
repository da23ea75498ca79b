"""The benchmarks read the lessons' own cells: the reader, and that the cells are still there."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import notebook_namespace


def notebook(tmp_path: Path, sources: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x = 'not code'")] + [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    return path


def test_runs_the_chosen_code_cells_in_order_and_no_other(tmp_path):
    path = notebook(tmp_path, ["x = 1", "def f():\n    return x + 1", "x = 5", "y = f()", "raise RuntimeError"])
    ns = notebook_namespace(path, ("x =", "def f", "y ="), {}, {"f", "y"})
    assert ns["y"] == 6  # the second "x =" ran before "y = f()"; the raising cell did not run
    assert notebook_namespace(path, ("x = 1",), {}, {"x"})["x"] == 1


def test_a_name_no_cell_defines_stops_with_a_message_naming_it(tmp_path):
    path = notebook(tmp_path, ["x = 1"])
    with pytest.raises(SystemExit, match=r"no cell defining \['Model'\].*restructured"):
        notebook_namespace(path, ("x =", "class Model"), {}, {"x", "Model"})


def test_the_gan_benchmark_builds_notebook_06s_gan_from_its_cells():
    from benchmarks.gan_variants import notebook_gan

    ns = notebook_gan(seed=7)
    gan = ns["GAN"](ns["build_generator"](ns["latent_dim"]), ns["build_discriminator"](), ns["latent_dim"])
    assert gan.generator(gan.sample_latent(2)).shape == (2, 28, 28, 1)
    assert gan.discriminator(gan.generator(gan.sample_latent(2))).shape == (2, 1)
    # the recipe the benchmark trains with is read from the notebook's params cell, key by key
    assert {"n_train", "rounds", "steps_per_round", "batch_size", "learning_rate", "beta_1", "beta_2", "ema_decay",
            "r1_weight", "r1_every"} <= set(ns["params"])


def test_the_vit_benchmark_builds_notebook_08s_vit_from_its_cells():
    import numpy as np

    from benchmarks.vit_variants import notebook_classes

    vit = notebook_classes()["VisionTransformer"](patch_size=7, d_model=16, num_heads=2, ff_dim=32, num_layers=1)
    assert vit(np.zeros((3, 28, 28, 1), "float32")).shape == (3, 10)


def test_the_vit_benchmark_reads_notebook_08s_recipe_from_its_vit_config_cell():
    import inspect

    from benchmarks.vit_variants import notebook_classes, notebook_vit_config

    config = notebook_vit_config()
    # the keys main() reads: a renamed key in the notebook fails here, not after minutes of training
    assert {"num_epochs", "batch_size", "learning_rate", "weight_decay", "model"} <= set(config)
    init = inspect.signature(notebook_classes()["VisionTransformer"].__init__).parameters
    assert set(config["model"]) <= set(init), "vit_config['model'] holds a key the ViT does not take"
    assert {"patch_size", "d_model", "num_heads", "ff_dim", "num_layers", "dropout"} <= set(config["model"])
    assert isinstance(config["num_epochs"], int) and config["num_epochs"] >= 1


def test_a_result_is_printed_and_appended_as_one_json_line_with_the_machine(tmp_path, capsys):
    import argparse
    import json

    from benchmarks._common import record

    out = tmp_path / "runs" / "bench.jsonl"
    args = argparse.Namespace(seed=3, json=out)
    first = record(args, {"test_accuracy": 0.98})
    record(argparse.Namespace(seed=4, json=out), {"test_accuracy": 0.97})
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["test_accuracy"]) for r in lines] == [(3, 0.98), (4, 0.97)]
    assert lines[0]["json"] == str(out) and "CPUs" in lines[0]["machine"] and "load" in lines[0]
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == first
    record(argparse.Namespace(seed=5, json=None), {})  # no file: printed only
    assert len(out.read_text().splitlines()) == 2


def test_standing_statistics_are_one_noise_batch_s_moments_and_momentum_is_restored():
    import keras
    import numpy as np

    from benchmarks.gan_variants import recompute_statistics

    keras.utils.set_random_seed(0)
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(momentum=0.9)])
    norm = generator.layers[-1]
    norm.moving_mean.assign([5.0, 5.0, 5.0])  # statistics far from any batch's
    norm.moving_variance.assign([9.0, 9.0, 9.0])
    recompute_statistics(generator, latent_dim=4, n=512)
    hidden = generator.layers[0](keras.random.normal((512, 4), seed=12345)).numpy()  # the noise it drew
    np.testing.assert_allclose(norm.moving_mean.numpy(), hidden.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), hidden.var(axis=0), rtol=1e-3)
    assert norm.momentum == 0.9
