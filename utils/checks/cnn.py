"""Checks for ``labs/03_cnn_mnist.ipynb``: normalised images, a fully-connected
baseline, a CNN, the loss/compile wiring, and a custom training step.

The checks look at behaviour: shapes of what a model returns, whether its outputs are
logits or probabilities, the loss the compiled model actually computes, and the weights
after a training step compared with a reference step. Any reasonable architecture and
either output convention (logits with ``from_logits=True``, probabilities with
``from_logits=False``) pass, as long as they are used consistently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import (
    call,
    fail,
    kind,
    ok,
    outputs_probabilities,
    to_array,
    train_step_against_reference,
)

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MAX_PARAMS = 5_000_000


def normalized_images(normalize: Callable[[np.ndarray], Any]) -> None:
    """``normalize(images)`` must turn ``uint8`` images ``(n, 28, 28)`` into floats with
    a channel axis, ``(n, 28, 28, 1)``, on a small scale (``[0, 1]`` or standardised)."""
    from utils import data

    (x_train, _), (x_test, _) = data.load_mnist()
    arrays = {}
    for name, raw in (("x_train", x_train[:512]), ("x_test", x_test[:512])):
        label = f"normalize({name}[:512])"
        array = to_array(call(normalize, raw.copy(), what=label), label, what="an array of images")
        if array.ndim != 4 or array.shape[1:] != INPUT_SHAPE:
            hint = " Add the channel axis: x[..., None] or np.expand_dims(x, -1)." if array.shape[1:] == (28, 28) else ""
            fail(f"{label} has shape {array.shape}, expected (512, 28, 28, 1) = (images, height, width, channels).{hint}")
        if not np.issubdtype(array.dtype, np.floating):
            fail(f"{label} has dtype {array.dtype}; convert to float32 before scaling (x.astype('float32') / 255).")
        if float(np.max(np.abs(array))) > 20:
            fail(
                f"{label} is not normalised: its values reach {float(np.max(array)):.0f}. "
                f"Divide the pixel values by 255 so they lie in [0, 1]."
            )
        arrays[name] = array
    std = float(np.std(arrays["x_train"]))
    if std < 1e-3:
        fail("normalize returns (almost) constant images: the normalisation erased them.")
    order = np.argsort(x_train[:512].reshape(512, -1), axis=None, kind="stable")
    flat = arrays["x_train"].reshape(-1)[order]
    if np.any(np.diff(flat) < -1e-6):
        fail("normalize does not keep the order of pixel values (a brighter pixel must stay brighter): "
             "use one scale and shift for every pixel.")
    ok(f"normalize gives float images of shape (n, 28, 28, 1), mean {float(np.mean(arrays['x_train'])):.3f}, std {std:.3f}.")


def _build(builder: Callable[[], Any], label: str) -> Any:
    import keras

    model = call(builder, what=f"{label}()")
    if not isinstance(model, keras.Model):
        fail(f"{label}() returned {kind(model)}; expected a keras.Model (e.g. keras.Sequential([...])).")
    return model


def _forward(model: Any, label: str, batch: int = 4) -> np.ndarray:
    import tensorflow as tf

    x = tf.random.uniform((batch, *INPUT_SHAPE), seed=1)
    out = to_array(
        call(model, x, what=f"the model from {label}() on images of shape {(batch, *INPUT_SHAPE)}",
             hint="The first layer must take inputs of shape (28, 28, 1): keras.Input(shape=(28, 28, 1))."),
        f"{label}() output",
    )
    if out.shape != (batch, NUM_CLASSES):
        extra = ""
        if out.ndim > 2:
            extra = " Flatten the feature maps (layers.Flatten()) before the last Dense layer."
        elif out.ndim == 2:
            extra = f" The last layer needs one output per digit: Dense({NUM_CLASSES})."
        fail(f"{label}() gives outputs of shape {out.shape} for a batch of {batch} images; expected ({batch}, 10).{extra}")
    return out


def _layers(model: Any) -> list[Any]:
    return list(model._flatten_layers(include_self=False))


def baseline_model(build_baseline: Callable[[], Any]) -> None:
    """A fully-connected network: images ``(28, 28, 1)`` -> 10 outputs, at least one
    hidden Dense layer with a non-linearity, no convolutions."""
    import keras

    model = _build(build_baseline, "build_baseline")
    out = _forward(model, "build_baseline")
    layers = _layers(model)
    if any(isinstance(lay, keras.layers.Conv2D) for lay in layers):
        fail("The baseline is fully connected: leave the convolutions for the CNN below.")
    dense = [lay for lay in layers if isinstance(lay, keras.layers.Dense)]
    if len(dense) < 2:
        fail(f"Found {len(dense)} Dense layer(s): the baseline needs a hidden Dense layer before the output layer.")
    linear = keras.activations.linear
    nonlinear = any(lay.activation is not linear for lay in dense[:-1]) or any(
        isinstance(lay, (keras.layers.ReLU, keras.layers.Activation, keras.layers.LeakyReLU)) for lay in layers
    )
    if not nonlinear:
        fail("The hidden Dense layers have no activation, so the whole network is linear: use activation='relu'.")
    if model.count_params() > MAX_PARAMS:
        fail(f"{model.count_params():,} parameters is far more than MNIST needs (keep it under {MAX_PARAMS:,}).")
    style = "probabilities (softmax)" if outputs_probabilities(out) else "logits"
    ok(f"baseline: {len(dense)} Dense layers, {model.count_params():,} parameters, outputs {style}.")


def cnn_model(build_cnn: Callable[[], Any]) -> None:
    """A convolutional network: images ``(28, 28, 1)`` -> 10 outputs, with Conv2D layers."""
    import keras

    model = _build(build_cnn, "build_cnn")
    out = _forward(model, "build_cnn")
    convs = [lay for lay in _layers(model) if isinstance(lay, keras.layers.Conv2D)]
    if not convs:
        fail("No Conv2D layer: a CNN starts with convolutions (layers.Conv2D(filters, kernel_size)).")
    if model.count_params() > MAX_PARAMS:
        fail(f"{model.count_params():,} parameters is far more than MNIST needs (keep it under {MAX_PARAMS:,}).")
    style = "probabilities (softmax)" if outputs_probabilities(out) else "logits"
    ok(f"CNN: {len(convs)} convolution layer(s), {model.count_params():,} parameters, outputs {style}.")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sce(y: np.ndarray, probs: np.ndarray) -> float:
    return float(np.mean(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


_REGRESSION = ("mean_squared", "mse", "mean_absolute", "mae", "huber", "log_cosh", "logcosh", "squared_hinge")


def _loss_name(loss: Any) -> str:
    """A lower-case name for a compiled loss: a string, a Loss object or a function."""
    if isinstance(loss, str):
        return loss.lower()
    config = getattr(loss, "get_config", lambda: {})() if not callable(loss) or hasattr(loss, "get_config") else {}
    name = (config or {}).get("name") or getattr(loss, "__name__", None) or type(loss).__name__
    return f"{name} {type(loss).__name__}".lower()


def compile_wiring(compile_model: Callable[[Any, Any], Any], build_model: Callable[[], Any]) -> None:
    """``compile_model(model, learning_rate)`` must compile ``build_model()`` with an optimizer, a
    classification loss that matches the model's outputs (logits with
    ``from_logits=True``, softmax probabilities with ``from_logits=False``) and an
    accuracy metric."""
    import tensorflow as tf

    model = _build(build_model, getattr(build_model, "__name__", "build_model"))
    probabilities = outputs_probabilities(_forward(model, getattr(build_model, "__name__", "build_model")))
    call(compile_model, model, 1e-3, what="compile_model(model, learning_rate=1e-3)")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        fail("The model is not compiled: call model.compile(optimizer=..., loss=..., metrics=['accuracy']).")
    name = _loss_name(model.loss)
    if any(word in name for word in _REGRESSION):
        fail(f"The loss ({name.split()[0]}) is a regression loss; classifying digits needs "
             f"SparseCategoricalCrossentropy.")
    if "categorical" in name and "sparse" not in name:
        fail("categorical_crossentropy expects one-hot labels, but the labels are integers 0-9: "
             "use SparseCategoricalCrossentropy (sparse_categorical_crossentropy).")
    rng = np.random.default_rng(5)
    y = rng.integers(0, NUM_CLASSES, size=64)
    logits = rng.normal(scale=3.0, size=(64, NUM_CLASSES)).astype("float32")
    y_pred = _softmax(logits).astype("float32") if probabilities else logits
    got = call(model.compute_loss, y=tf.constant(y), y_pred=tf.constant(y_pred), what="the compiled loss",
               hint="The labels are integers 0-9 (not one-hot): use sparse categorical cross-entropy.")
    got = float(to_array(got, "compiled loss", what="a number"))
    expected = _sce(y, _softmax(logits))
    if not np.isclose(got, expected, rtol=1e-3, atol=1e-4):
        as_logits = _sce(y, _softmax(y_pred))
        as_probs = _sce(y, y_pred / y_pred.sum(axis=-1, keepdims=True)) if np.all(y_pred > 0) else None
        mse = float(np.mean((y_pred - y[:, None]) ** 2))
        if np.isclose(got, mse, rtol=1e-3):
            fail("The loss is a regression loss (mean squared error); classifying digits needs "
                 "SparseCategoricalCrossentropy.")
        if probabilities and np.isclose(got, as_logits, rtol=1e-3):
            fail("Your model ends in a softmax (it outputs probabilities) but the loss has "
                 "from_logits=True, which applies a second softmax. Use from_logits=False, or drop the softmax.")
        if not probabilities and as_probs is not None and np.isclose(got, as_probs, rtol=1e-3):
            fail("Your model outputs logits but the loss expects probabilities (from_logits=False): "
                 "use SparseCategoricalCrossentropy(from_logits=True).")
        if not probabilities:
            fail(
                f"For logits the loss should be {expected:.4f} here, the compiled loss gives {got:.4f}. "
                f"Your model outputs logits: use SparseCategoricalCrossentropy(from_logits=True)."
            )
        fail(f"For these predictions the cross-entropy is {expected:.4f}, the compiled loss gives {got:.4f}.")
    x = tf.random.uniform((8, *INPUT_SHAPE), seed=2)
    scores = call(model.evaluate, x, tf.constant(y[:8]), verbose=0, return_dict=True, what="model.evaluate")
    if not any("acc" in name for name in scores):
        fail(f"No accuracy metric (the model reports {sorted(scores)}): add metrics=['accuracy'] to compile.")
    ok(f"loss matches the model's {'probabilities' if probabilities else 'logits'}; accuracy is tracked.")


def _tiny_model(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(3),
        ]
    )


def train_step(make_train_step: Callable[[Any, Any, Any], Callable[[Any, Any], Any]]) -> None:
    """``make_train_step(model, optimizer, loss_fn)`` must return ``step(x, y)`` that runs
    the model in training mode under a ``GradientTape``, applies the gradients of the loss
    to all of ``model.trainable_variables`` with ``optimizer``, and returns the loss."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(16, 6)), dtype=tf.float32)
    y = tf.constant(rng.integers(0, 3, size=16))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_step_against_reference(make_train_step, _tiny_model, x, y, loss_fn)


__all__ = ["baseline_model", "cnn_model", "compile_wiring", "normalized_images", "train_step"]
