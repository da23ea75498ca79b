"""The models in utils.models are the notebooks' solutions, not copies that drifted: each
notebook's solution function is run and its model compared layer by layer."""

from __future__ import annotations

import ast

import keras
import nbformat
import pytest

from tools.notebooks import python_source
from utils import ROOT, models


def solution_function(notebook: str, name: str):
    """Define the notebook's function ``name`` (from its code cell) and return it."""
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(python_source(cell.source)).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                namespace = {"keras": keras, "layers": keras.layers}
                exec(compile(ast.Module([node], []), notebook, "exec"), namespace)  # noqa: S102 - our own notebook
                return namespace[name]
    raise AssertionError(f"{notebook} defines no function {name}")


def layer_configs(model):
    drop = {"name", "dtype", "seed"}
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k not in drop})
            for layer in model.layers]


@pytest.mark.parametrize(
    "notebook, name, args, helper",
    [
        ("03_cnn_mnist.ipynb", "build_cnn", (), lambda: models.mnist_cnn()),
        ("04_music_lstm.ipynb", "build_model", (83, 64, 256, 0.3), lambda: models.char_lstm(83, 64, 256, 0.3)),
    ],
)
def test_helper_model_is_the_notebook_solution(notebook, name, args, helper):
    from_notebook, from_utils = solution_function(notebook, name)(*args), helper()
    assert layer_configs(from_notebook) == layer_configs(from_utils)
    assert from_notebook.count_params() == from_utils.count_params()
