"""Properties of a learner's Keras model, shared by the CNN (03), music (04) and GAN (06)
checks: its outputs are logits, its dropout rates, and its layer shapes known before it runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks._core import fail, outputs_probabilities


def _last_weighted_layer(model: Any) -> Any:
    """The last layer, in the model's own order, that has weights: the output layer."""
    layers = [lay for lay in model._flatten_layers(include_self=False) if lay.weights]
    return layers[-1] if layers else None


def _scaled_outputs(model: Any, x: np.ndarray, factor: float) -> np.ndarray | None:
    """The model's outputs with its last weighted layer's weights multiplied by ``factor``:
    logits scale with them, an activation after them stays bounded."""
    last = _last_weighted_layer(model)
    if last is None:
        return None
    saved = last.get_weights()
    last.set_weights([w * factor for w in saved])
    try:
        return np.asarray(model(x, training=False))
    finally:
        last.set_weights(saved)


def expect_logits(model: Any, x: Any, label: str, fix: str) -> None:
    """``model``'s outputs must be logits: negative values occur, rows need not sum to 1,
    and they grow without bound when the output layer's weights grow."""
    out = np.asarray(model(x, training=False))
    flat = out.reshape(-1, out.shape[-1])
    if outputs_probabilities(flat):
        fail(f"{label} outputs probabilities (each row sums to 1): a softmax ends the model. {fix}")
    big = _scaled_outputs(model, x, 200.0)
    big = flat if big is None else big.reshape(-1, out.shape[-1])
    if np.all(big >= 0):
        fail(f"{label} outputs are never negative, even with large output weights: an activation such as ReLU "
             f"(or sigmoid) ends the model, but logits take any sign. {fix}")
    if np.all(np.abs(big) <= 1.0 + 1e-6):
        fail(f"{label} outputs stay within [-1, 1] even with large output weights: a tanh (or another bounded "
             f"activation) ends the model, but logits are unbounded. {fix}")


def expect_shapes_before_running(model: Any, message: str) -> None:
    """Fail with ``message`` unless ``model``, never called yet, knows every layer's
    output shape and its parameter count -- which a model that starts with a
    ``keras.Input`` does, and a subclassed model or a ``Sequential`` without one does not.
    The notebooks print those (a layer table) before the model first runs."""
    try:
        [layer.output for layer in model.layers]
        model.count_params()
    except (AttributeError, ValueError):
        fail(message)


def dropout_rates(model: Any) -> list[float]:
    """The rate of every Dropout layer of ``model`` (and of a recurrent layer's own dropout)."""
    import keras

    rates = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dropout):
            rates.append(float(layer.rate))
        for attr in ("dropout", "recurrent_dropout"):
            value = getattr(layer, attr, None) if hasattr(layer, "cell") else None
            if isinstance(value, (int, float)) and value > 0:
                rates.append(float(value))
    return rates


__all__ = ["dropout_rates", "expect_logits"]
