"""Checks for ``labs/03_cnn_mnist.ipynb``: normalised images, a fully-connected
baseline, a CNN, the loss/compile wiring, and a custom training step.

The checks look at behaviour: the dtype and values of the images (an exact affine map of
the pixels onto [0, 1]), what a model returns (unbounded logits), whether its dropout acts in
training and not in inference, whether its batch norm is in the computation, whether the
network is non-linear, the learning rate (or schedule) the compiled optimizer really uses,
the loss and accuracy the compiled model actually computes, and the weights after a
training step compared with a reference step on a net with dropout and batch norm. Any
reasonable architecture passes.
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
)
from utils.checks._models import dropout_rates, expect_logits, expect_shapes_before_running
from utils.checks._steps import train_step_matches_reference

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MAX_PARAMS = 5_000_000


def normalized_images(normalize: Callable[[np.ndarray], Any]) -> None:
    """``normalize(images)`` must turn ``uint8`` images ``(n, 28, 28)`` into ``float32``
    images ``(n, 28, 28, 1)`` whose values are the pixels mapped onto ``[0, 1]``
    (``0 -> 0``, ``255 -> 1``, every grey level kept)."""
    from utils import data

    (x_train, _), (x_test, _) = data.load_mnist()
    arrays = {}
    for name, raw in (("x_train", x_train[:512]), ("x_test", x_test[:512])):
        label = f"normalize({name}[:512])"
        result = call(normalize, raw.copy(), what=label)
        array = to_array(result, label, what="an array of images")
        if not isinstance(result, np.ndarray):
            fail(f"{label} returned {kind(result)}; the images stay NumPy arrays here (the cells below use "
                 f"their NumPy methods and indexing, and Keras takes NumPy arrays as they are): use NumPy "
                 f"operations throughout.")
        if array.ndim != 4 or array.shape[1:] != INPUT_SHAPE:
            hint = " Add a channel axis of length 1 at the end." if array.shape[1:] == (28, 28) else ""
            fail(f"{label} has shape {array.shape}, expected (512, 28, 28, 1) = (images, height, width, channels).{hint}")
        if not np.issubdtype(array.dtype, np.floating):
            fail(f"{label} has dtype {array.dtype}; convert the pixels to float32 before scaling them.")
        if array.dtype == np.float16:
            fail(f"{label} has dtype float16, expected float32: half precision keeps about three significant "
                 f"digits, and Keras layers compute in float32. Convert with float32.")
        if array.dtype != np.float32:
            fail(f"{label} has dtype {array.dtype}, expected float32 (the dtype Keras layers compute in; "
                 f"{array.dtype} doubles the memory). Dividing a uint8 array by a Python float gives float64: "
                 f"convert to float32 first, or after.")
        pixels, values = raw.reshape(-1).astype(np.float64), array.reshape(-1).astype(np.float64)
        if len(np.unique(values)) < len(np.unique(pixels)):
            fail(f"{label} has only {len(np.unique(values))} different values for {len(np.unique(pixels))} grey levels "
                 f"in the images: the scaling rounded them away (integer division, or dividing before converting "
                 f"to float?).")
        slope, intercept = np.polyfit(pixels, values, 1)
        if slope <= 0 or np.max(np.abs(slope * pixels + intercept - values)) > 1e-3 * max(abs(slope) * 255, 1e-9):
            fail(f"{label} is not the pixels scaled one way for all: a brighter pixel must stay brighter by the same "
                 f"factor everywhere (one division for every image and pixel, in the images' own order).")
        low, high = intercept, slope * 255 + intercept
        if not (abs(low) < 1e-4 and abs(high - 1) < 1e-4):
            if high > 20:
                fail(f"{label} is not normalised: its values reach {float(np.max(array)):.0f}. Divide the pixel "
                     f"values by 255 so they lie in [0, 1].")
            fail(f"{label} maps pixel 0 to {low:.4g} and pixel 255 to {high:.4g}; the TODO asks for [0, 1], "
                 f"0 -> 0 and 255 -> 1: divide by 255, without shifting.")
        arrays[name] = array
    std = float(np.std(arrays["x_train"]))
    ok(f"normalize gives float32 images of shape (n, 28, 28, 1) in [0, 1], mean {float(np.mean(arrays['x_train'])):.3f}, "
       f"std {std:.3f}.")


def _build(builder: Callable[[], Any], label: str) -> Any:
    import keras

    model = call(builder, what=f"{label}()")
    if not isinstance(model, keras.Model):
        fail(f"{label}() returned {kind(model)}; expected a keras.Model (e.g. keras.Sequential([...])).")
    expect_shapes_before_running(
        model, f"The model from {label}() does not start with a keras.Input of the image shape, so its layers' "
               f"output shapes and its parameter count are unknown until it first runs -- and the cells below "
               f"print them before any training. Start the model with keras.Input(shape=(28, 28, 1)).")
    return model


def _no_second_scaling(model: Any, label: str) -> None:
    """``normalize`` (TODO 1) already scales the pixels to [0, 1]: a rescaling layer in the
    model would scale them a second time."""
    import keras

    for layer in _layers(model):
        if isinstance(layer, keras.layers.Rescaling) and not (
                np.allclose(np.asarray(layer.scale, dtype="float64"), 1.0)
                and np.allclose(np.asarray(layer.offset, dtype="float64"), 0.0)):
            fail(f"The model from {label}() rescales its inputs (Rescaling, scale {layer.scale}), but normalize "
                 f"already brought the pixels to [0, 1]: they would be scaled twice -- nearly black images, and a "
                 f"network that learns far worse. Leave the scaling to normalize.")


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


def _probe_images(batch: int = 16) -> Any:
    import tensorflow as tf

    return tf.random.uniform((batch, *INPUT_SHAPE), seed=3)


def _expect_nonlinear(model: Any, label: str) -> None:
    """In inference mode a network without a non-linearity is affine: f(a + b) = f(a) + f(b) - f(0)."""
    import tensorflow as tf

    a, b = _probe_images(8), tf.reverse(_probe_images(8), axis=[1])
    zero = tf.zeros_like(a)
    fa, fb, fab, f0 = (np.asarray(model(t, training=False), dtype=np.float64) for t in (a, b, a + b, zero))
    if np.allclose(fab, fa + fb - f0, rtol=1e-4, atol=1e-4 * max(1.0, float(np.max(np.abs(fab))))):
        fail(f"{label}() is linear: its hidden layers have no activation, so the whole network is one linear map "
             f"(however many layers). Give the hidden layer a ReLU.")


def _expect_dropout(model: Any, label: str, asked: tuple[float, float], rate_text: str) -> None:
    """Dropout present, active in training, off in inference, not on the logits, at the asked rate."""
    x = _probe_images()
    infer = [np.asarray(model(x, training=False)) for _ in range(2)]
    if not np.allclose(infer[0], infer[1]):
        fail(f"{label}() gives a different output at each call in inference mode: dropout must be off there "
             f"(use a Dropout layer, which follows the training flag).")
    train = [np.asarray(model(x, training=True)) for _ in range(2)]
    rates = dropout_rates(model)
    if np.allclose(train[0], train[1]) or not rates or max(rates) == 0:
        fail(f"{label}() has no active dropout: in training mode two calls give the same output. Add a Dropout "
             f"layer ({rate_text}) after the hidden dense layer.")
    # Dropout on the logits zeroes single scores; dropout before the output layer can at most
    # zero a whole row (every hidden feature dropped, and no bias yet).
    zero = train[0] == 0
    partial = zero & ~np.all(zero, axis=-1, keepdims=True)
    if np.mean(partial) > 0.05 and not np.any(infer[0] == 0):
        fail(f"{label}() zeroes some of its logits in training: the Dropout comes after the output layer. Put it "
             f"before the last Dense layer, on the hidden features.")
    low, high = asked
    if not any(low - 1e-9 <= r <= high + 1e-9 for r in rates):
        fail(f"{label}() uses dropout rate(s) {sorted(set(round(r, 3) for r in rates))}; the TODO asks for "
             f"{rate_text}. The rate is the fraction dropped, not the fraction kept.")


def baseline_model(build_baseline: Callable[[], Any]) -> None:
    """A fully-connected network: images ``(28, 28, 1)`` -> 10 logits, a hidden Dense
    layer with a non-linearity, dropout at rate 0.2 active in training only, no
    convolutions."""
    import keras

    model = _build(build_baseline, "build_baseline")
    _no_second_scaling(model, "build_baseline")
    _forward(model, "build_baseline")
    layers = _layers(model)
    if any(isinstance(lay, keras.layers.Conv2D) for lay in layers):
        fail("The baseline is fully connected: leave the convolutions for the CNN below.")
    dense = [lay for lay in layers if isinstance(lay, keras.layers.Dense)]
    if len(dense) < 2:
        fail(f"Found {len(dense)} Dense layer(s): the baseline needs a hidden Dense layer before the output layer.")
    _expect_nonlinear(model, "build_baseline")
    order = [lay for lay in layers if isinstance(lay, (keras.layers.Dense, keras.layers.Dropout))]
    if order and isinstance(order[0], keras.layers.Dropout):
        fail("The baseline's dropout comes before its hidden Dense layer, so it drops input pixels: the TODO puts "
             "it after the hidden layer, on the features that layer computes.")
    _expect_logits_dropout_and_size(model, "The baseline's", "build_baseline", (0.15, 0.25), "a rate of 0.2")
    ok(f"baseline: {len(dense)} Dense layers, {model.count_params():,} parameters, dropout in training only, "
       f"outputs logits.")


def _expect_logits_dropout_and_size(model: Any, whose: str, builder: str, rates: tuple[float, float],
                                    rate_words: str) -> None:
    """What the baseline and the CNN share: ten logits out, dropout at a rate in ``rates``
    acting in training only, and a size MNIST needs."""
    expect_logits(model, _probe_images(), whose,
                  "The last Dense layer takes no activation: the loss applies the softmax itself.")
    _expect_dropout(model, builder, rates, rate_words)
    if model.count_params() > MAX_PARAMS:
        fail(f"{model.count_params():,} parameters is far more than MNIST needs (keep it under {MAX_PARAMS:,}).")


def _activations(layers: list[Any]) -> int:
    """How many layers apply a non-linearity (an activation argument or an activation layer)."""
    import keras

    linear = keras.activations.linear
    count = 0
    for lay in layers:
        act = getattr(lay, "activation", None)
        if isinstance(lay, (keras.layers.Conv2D, keras.layers.Dense)) and act is not None and act is not linear:
            count += 1
        elif isinstance(lay, keras.layers.Activation) and act is not linear:
            count += 1
        elif isinstance(lay, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)):
            count += 1
        elif isinstance(lay, keras.layers.Lambda) and _bends(lay):
            count += 1
    return count


def _bends(layer: Any) -> bool:
    """Whether a layer without weights (a ``Lambda``) is not affine on a few probe values."""
    probe = np.linspace(-2.0, 2.0, 9, dtype="float32").reshape(1, 9)
    try:
        out = np.asarray(layer(probe), dtype=np.float64).reshape(-1)
    except Exception:  # noqa: BLE001 -- a layer for other shapes: not counted
        return False
    if out.shape != (9,):
        return False
    fit = np.polyval(np.polyfit(probe.reshape(-1), out, 1), probe.reshape(-1))
    return bool(np.max(np.abs(fit - out)) > 1e-3 * max(1.0, float(np.max(np.abs(out)))))


def cnn_model(build_cnn: Callable[[], Any]) -> None:
    """A convolutional network: images ``(28, 28, 1)`` -> 10 logits, with convolutions,
    batch norm (momentum at most 0.95, in the computation), non-linearities, a hidden
    dense layer and dropout active in training only."""
    import keras

    model = _build(build_cnn, "build_cnn")
    _no_second_scaling(model, "build_cnn")
    _forward(model, "build_cnn")
    layers = _layers(model)
    convs = [lay for lay in layers if isinstance(lay, keras.layers.Conv2D)]
    if not convs:
        fail("No Conv2D layer: a CNN starts with convolutions (layers.Conv2D(filters, kernel_size)).")
    dense = [lay for lay in layers if isinstance(lay, keras.layers.Dense)]
    if len(dense) < 2:
        fail(f"Found {len(dense)} Dense layer(s): after Flatten the table has a hidden dense block (Dense(128), "
             f"batch norm, ReLU) before the output layer.")
    norms = [lay for lay in layers if isinstance(lay, keras.layers.BatchNormalization)]
    if not norms:
        fail("No BatchNormalization layer: each block of the table normalises its outputs (Conv2D -> "
             "BatchNormalization -> ReLU -> pooling).")
    slow = [lay for lay in norms if float(lay.momentum) > 0.95]
    if slow:
        fail(f"A BatchNormalization has momentum {float(slow[0].momentum):g}: its running averages then need "
             f"hundreds of steps to catch up, and a short run scores badly at test time. Use momentum=0.9, as "
             f"explained above the table.")
    before = [np.asarray(v).copy() for lay in norms for v in lay.non_trainable_weights]
    call(model, _probe_images(), training=True, what="the model from build_cnn() in training mode")
    after = [np.asarray(v) for lay in norms for v in lay.non_trainable_weights]
    if all(np.array_equal(a, b) for a, b in zip(before, after)):
        fail("The BatchNormalization layers are not in the computation (their running averages never change in "
             "training): the model must pass its features through them.")
    if _activations(layers) < 1:
        fail("No non-linearity in the network: after each batch norm comes a ReLU (layers.ReLU() or "
             "activation='relu').")
    _expect_logits_dropout_and_size(model, "The CNN's", "build_cnn", (0.1, 0.5),
                                    "a rate of 0.25 (anything from 0.1 to 0.5 passes)")
    ok(f"CNN: {len(convs)} convolution layer(s), {len(norms)} batch norm(s), {model.count_params():,} parameters, "
       f"dropout in training only, outputs logits.")


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


_METRIC_HINT = ("The metric must fit integer labels and ten scores per image: use 'accuracy' or "
                "SparseCategoricalAccuracy (keras.metrics.Accuracy and regression metrics such as 'mae' compare "
                "outputs and labels value by value).")


def compile_wiring(compile_model: Callable[[Any, Any], Any], build_model: Callable[[], Any]) -> None:
    """``compile_model(model, learning_rate)`` must compile ``build_model()`` with an optimizer, a
    classification loss that matches the model's outputs (logits with
    ``from_logits=True``, softmax probabilities with ``from_logits=False``) and an
    accuracy metric."""
    import tensorflow as tf

    import keras

    label = getattr(build_model, "__name__", "build_model")
    model = _build(build_model, label)
    probabilities = outputs_probabilities(_forward(model, label))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.0234, decay_steps=10, decay_rate=0.5)
    call(compile_model, model, schedule, what="compile_model(model, learning_rate=a schedule)")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        fail("The model is not compiled: call the model's compile with an optimizer, a loss and the metric.")
    optimizer = model.optimizer
    if not isinstance(optimizer, keras.optimizers.Adam):
        fail(f"The optimizer is {type(optimizer).__name__}; the TODO asks for Adam.")
    rate_now = float(np.asarray(optimizer.learning_rate))
    optimizer.iterations.assign(10)
    rate_later = float(np.asarray(optimizer.learning_rate))
    optimizer.iterations.assign(0)
    if not (np.isclose(rate_now, 0.0234, rtol=1e-4) and np.isclose(rate_later, 0.0117, rtol=1e-4)):
        fail(f"Given a learning-rate schedule (0.0234, halving every 10 steps), the optimizer uses {rate_now:.4g} "
             f"at step 0 and {rate_later:.4g} at step 10: the schedule was dropped. Build the Adam optimizer "
             f"yourself and give it the learning_rate argument (the string 'adam' uses the default rate, 0.001).")
    model = _build(build_model, label)
    call(compile_model, model, 0.0123, what="compile_model(model, learning_rate=0.0123)")
    rate = float(np.asarray(model.optimizer.learning_rate))
    if not np.isclose(rate, 0.0123, rtol=1e-4):
        fail(f"compile_model(model, 0.0123) gives an optimizer with learning rate {rate:.4g}: pass the "
             f"learning_rate argument to Adam.")
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
    got_array = to_array(got, "compiled loss", what="a number")
    if got_array.size != 1:
        fail(f"The compiled loss gives {got_array.size} numbers for a batch of {len(y)}, one per image: the loss was "
             f"built with reduction=None. Leave the reduction out -- by default the loss averages over the batch, "
             f"which fit and its printed loss expect.")
    got = float(got_array.reshape(()))
    expected = _sce(y, _softmax(logits))
    if not np.isclose(got, expected, rtol=1e-3, atol=1e-4):
        as_logits = _sce(y, _softmax(y_pred))
        as_probs = _sce(y, y_pred / y_pred.sum(axis=-1, keepdims=True)) if np.all(y_pred > 0) else None
        mse = float(np.mean((y_pred - y[:, None]) ** 2))
        if np.isclose(got, expected * len(y), rtol=1e-3):
            fail("The compiled loss is the sum over the batch, not the mean: keep the loss's default reduction, "
                 "so that the step size does not depend on the batch size.")
        if np.isclose(got, mse, rtol=1e-3):
            fail("The loss is a regression loss (mean squared error); classifying digits needs "
                 "SparseCategoricalCrossentropy.")
        if probabilities and np.isclose(got, as_logits, rtol=1e-3):
            fail("Your model ends in a softmax (it outputs probabilities) but the loss has "
                 "from_logits=True, which applies a second softmax. Use from_logits=False, or drop the softmax.")
        if not probabilities and as_probs is not None and np.isclose(got, as_probs, rtol=1e-3):
            fail("Your model outputs logits but the loss expects probabilities (from_logits=False): "
                 "tell the loss that its inputs are logits.")
        if not probabilities:
            fail(
                f"For logits the loss should be {expected:.4f} here, the compiled loss gives {got:.4f}. "
                f"Your model outputs logits: use the sparse categorical cross-entropy, told that its inputs are "
                f"logits."
            )
        fail(f"For these predictions the cross-entropy is {expected:.4f}, the compiled loss gives {got:.4f}.")
    x = tf.random.uniform((8, *INPUT_SHAPE), seed=2)
    scores = call(model.evaluate, x, tf.constant(y[:8]), verbose=0, return_dict=True, what="model.evaluate",
                  hint=_METRIC_HINT)
    if not any("acc" in name for name in scores):
        fail(f"No accuracy metric (the model reports {sorted(scores)}): add the 'accuracy' metric to compile.")
    # Predictions whose best class is right for 5 of 8 images: the accuracy must say 0.625.
    labels = np.arange(8) % NUM_CLASSES
    guess = labels.copy()
    guess[:3] = (guess[:3] + 1) % NUM_CLASSES
    scores_pred = np.eye(NUM_CLASSES, dtype="float32")[guess] * 4.0 - 1.0
    if probabilities:
        scores_pred = _softmax(scores_pred).astype("float32")
    model.reset_metrics()
    metrics = call(model.compute_metrics, x, tf.constant(labels), tf.constant(scores_pred), None,
                   what="the compiled metrics",
                   hint=_METRIC_HINT)
    accuracy = {name: float(np.asarray(value)) for name, value in metrics.items() if "acc" in name}
    model.reset_metrics()
    if not any(np.isclose(value, 0.625) for value in accuracy.values()):
        name, value = next(iter(accuracy.items()))
        fail(f"When the best score is the right digit for 5 of 8 images, the metric {name} reports {value:.3f}, "
             f"not 0.625: it does not fit integer labels and ten scores. Use 'accuracy' (or "
             f"SparseCategoricalAccuracy); CategoricalAccuracy expects one-hot labels, Accuracy exact equality.")
    ok(f"Adam follows the given learning rate or schedule; the loss matches the model's "
       f"{'probabilities' if probabilities else 'logits'}; accuracy is measured right.")


def _tiny_model(seed: int) -> Any:
    """A small classifier with batch norm and dropout, so training mode matters."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dropout(0.3),
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
    train_step_matches_reference(make_train_step, _tiny_model, x, y, loss_fn)


__all__ = ["baseline_model", "cnn_model", "compile_wiring", "normalized_images", "train_step"]
