"""Checks for ``labs/02_custom_dense_layer.ipynb``: a Dense layer written by hand,
a subclassed model, a model with a call-time flag, and convolution output sizes.

The checks compare behaviour with Keras's own layers given the same weights, so any
correct implementation passes, however it is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import CheckError, call, expect_close, fail, kind, matches, ok, to_array


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _find_weights(layer: Any, d: int, n: int) -> tuple[Any, Any]:
    """Return (kernel, bias) variables of a Dense-like layer, failing with a message
    that names what is wrong with their shapes."""
    weights = list(layer.trainable_weights)
    shapes = [tuple(int(s) for s in w.shape) for w in weights]
    if not weights:
        fail("Your layer has no trainable weights: create W and b in build() with self.add_weight(...).")
    kernels = [w for w, s in zip(weights, shapes) if s == (d, n)]
    if not kernels:
        if (n, d) in shapes:
            fail(
                f"W has shape {(n, d)} but for x of shape (batch, {d}) and {n} units it must be "
                f"{(d, n)} = (input features, units), so that x @ W has shape (batch, {n}). "
                f"(Your W is transposed.)"
            )
        fail(
            f"No weight of shape {(d, n)} = (input features, units) for x with {d} features and "
            f"{n} units; your weights have shapes {shapes}. Use input_shape[-1] for the features."
        )
    kernel = kernels[0]
    biases = [w for w, s in zip(weights, shapes) if w is not kernel and s in ((n,), (1, n))]
    if not biases:
        fail(
            f"No bias of shape ({n},) or (1, {n}); your weights have shapes {shapes}. "
            f"A Dense layer computes sigmoid(x @ W + b): create b with self.add_weight too."
        )
    return kernel, biases[0]


def dense_layer(layer_class: Callable[[int], Any]) -> None:
    """``layer_class(n_output_nodes)`` must be a Keras layer computing
    ``sigmoid(x @ W + b)`` with ``W`` of shape ``(features, units)``: the same as
    ``keras.layers.Dense(units, activation="sigmoid")`` with the same weights."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(2)
    for d, n in [(3, 4), (4, 4), (5, 2)]:
        layer = call(layer_class, n, what=f"{getattr(layer_class, '__name__', 'your class')}({n})")
        if not isinstance(layer, keras.layers.Layer):
            fail(f"{kind(layer)} is not a keras.layers.Layer: subclass keras.layers.Layer.")
        x = tf.constant(rng.normal(size=(6, d)), dtype=tf.float32)
        try:
            call(layer, x, what=f"your layer on x of shape (6, {d})",
                 hint=f"With {d} input features and {n} units W must be ({d}, {n}) and b ({n},).")
        except CheckError:
            if getattr(layer, "trainable_weights", None):
                _find_weights(layer, d, n)  # a message about the weights' shapes, if they are wrong
            raise
        kernel, bias = _find_weights(layer, d, n)
        w_np = rng.normal(size=(d, n)).astype("float32")
        b_np = rng.normal(loc=1.0, size=(n,)).astype("float32")
        kernel.assign(w_np)
        bias.assign(b_np.reshape(tuple(bias.shape)))
        got = to_array(call(layer, x, what=f"your layer on x of shape (6, {d})"), "layer(x)")
        if got.shape != (6, n):
            fail(f"layer(x) has shape {got.shape} for x of shape (6, {d}); expected (6, {n}) = (batch, units).")
        reference = keras.layers.Dense(n, activation="sigmoid")
        reference.build((None, d))
        reference.set_weights([w_np, b_np])
        expected = np.asarray(reference(x))
        if matches(got, expected):
            continue
        xn = x.numpy()
        z = xn @ w_np + b_np
        diagnoses = [
            (z, "no activation: apply the sigmoid to z = x @ W + b"),
            (np.maximum(z, 0), "ReLU is applied, but this layer uses the sigmoid"),
            (np.tanh(z), "tanh is applied, but this layer uses the sigmoid"),
            (_sigmoid(xn @ w_np), "the bias is missing: compute sigmoid(x @ W + b)"),
            (xn @ w_np, "no bias and no activation: compute sigmoid(x @ W + b)"),
        ]
        if d == n:
            diagnoses.append((_sigmoid(xn @ w_np.T + b_np), "W is used transposed: compute x @ W, not x @ W^T"))
        for candidate, why in diagnoses:
            if matches(got, candidate):
                fail(f"layer(x) does not match keras.layers.Dense(activation='sigmoid'): {why}.")
        expect_close(got, expected, "layer(x)", hint="Expected sigmoid(x @ W + b) with your layer's W and b.")
    ok("your Dense layer equals keras.layers.Dense(activation='sigmoid') with the same weights.")


def _affine_probe(model: Any, d: int, n: int, label: str, **kwargs: Any) -> np.ndarray:
    """Call ``model`` on probes and fail unless it is affine (x -> x @ W + b) with output
    ``(batch, n)`` and actually depends on x."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x1 = rng.normal(size=(5, d)).astype("float32")
    x2 = rng.normal(size=(5, d)).astype("float32")
    zero = np.zeros((5, d), dtype="float32")
    outs = []
    for x in (x1, x2, x1 + x2, zero, 3 * x1):
        out = call(model, tf.constant(x), what=f"{label} on x of shape (5, {d})", **kwargs)
        outs.append(to_array(out, f"{label}(x)"))
    y1, y2, y12, y0, y3 = outs
    if y1.shape != (5, n):
        fail(f"{label}(x) has shape {y1.shape} for x of shape (5, {d}); expected (5, {n}) = (batch, n_output_nodes).")
    if matches(y1, y0) and matches(y2, y0):
        fail(f"{label}(x) does not depend on x: pass the inputs through the Dense layer.")
    if not (matches(y12 - y0, (y1 - y0) + (y2 - y0), atol=1e-4) and matches(y3 - y0, 3 * (y1 - y0), atol=1e-4)):
        fail(
            f"{label}(x) is not x @ W + b: a single Dense layer without an activation is linear "
            f"(plus a bias). Remove the activation (Dense's default is none)."
        )
    return y1


def subclass_model(model_class: Callable[[int], Any]) -> None:
    """``model_class(n_output_nodes)`` must be a ``keras.Model`` whose ``call`` passes the
    inputs through one Dense layer with ``n_output_nodes`` units and no activation."""
    import keras

    for d, n in [(2, 3), (4, 1)]:
        model = call(model_class, n, what=f"{getattr(model_class, '__name__', 'your class')}({n})")
        if not isinstance(model, keras.Model):
            fail(f"{kind(model)} is not a keras.Model: subclass keras.Model.")
        _affine_probe(model, d, n, f"{type(model).__name__}({n})")
        if not model.trainable_weights:
            fail("The model has no trainable weights: create a keras.layers.Dense in __init__ and use it in call().")
    ok("your subclassed model maps (batch, d) to (batch, n_output_nodes) through a Dense layer.")


def _dense_sublayers(model: Any) -> list[Any]:
    import keras

    return [lay for lay in model._flatten_layers(include_self=False) if isinstance(lay, keras.layers.Dense)]


def identity_model(model_class: Callable[[int], Any]) -> None:
    """``model_class(n)(x, isidentity=True)`` must return ``x`` unchanged and
    ``model_class(n)(x)`` (``isidentity=False``, the default) the output of the model's
    Dense layer."""
    import keras
    import tensorflow as tf

    d, n = 3, 2
    model = call(model_class, n, what=f"{getattr(model_class, '__name__', 'your class')}({n})")
    if not isinstance(model, keras.Model):
        fail(f"{kind(model)} is not a keras.Model: subclass keras.Model.")
    x = tf.constant(np.random.default_rng(4).normal(size=(4, d)), dtype=tf.float32)
    default = to_array(call(model, x, what="model(x)"), "model(x)")
    explicit = to_array(call(model, x, isidentity=False, what="model(x, isidentity=False)"), "model(x, isidentity=False)")
    same = to_array(call(model, x, isidentity=True, what="model(x, isidentity=True)"), "model(x, isidentity=True)")
    if not matches(same, x.numpy(), rtol=0, atol=0):
        if same.shape == (4, n):
            fail("model(x, isidentity=True) went through the Dense layer: with the flag on, return the inputs unchanged.")
        fail(f"model(x, isidentity=True) has shape {same.shape}; with the flag on it must return x itself, shape {tuple(x.shape)}.")
    if matches(default, x.numpy()):
        fail("model(x) returned the inputs: with isidentity=False (the default) pass them through the Dense layer.")
    if not matches(explicit, default):
        fail("model(x) and model(x, isidentity=False) differ: the flag's default must be False.")
    if default.shape != (4, n):
        fail(f"model(x) has shape {default.shape} for x of shape (4, {d}); expected (4, {n}) from the Dense layer.")
    dense = _dense_sublayers(model)
    if not dense:
        fail("The model has no keras.layers.Dense: keep self.dense_layer from __init__ and use it in call().")
    outputs = [np.asarray(lay(x)) for lay in dense if lay.built]
    if not any(matches(default, out) for out in outputs):
        fail("model(x) is not the output of the model's Dense layer: return self.dense_layer(inputs).")
    ok("isidentity=True returns the inputs; the default passes them through the Dense layer.")


def conv_output_length(fn: Callable[[int, int, int, str], Any]) -> None:
    """``fn(input_length, kernel_size, stride, padding)`` must return the output length of
    a convolution along one axis, as Keras computes it, for ``"valid"`` and ``"same"``."""
    import keras

    cases = [
        (28, 3, 1, "valid"), (28, 3, 1, "same"), (28, 5, 2, "valid"), (28, 5, 2, "same"),
        (27, 3, 2, "valid"), (27, 3, 2, "same"), (10, 4, 3, "valid"), (10, 4, 3, "same"),
        (7, 7, 1, "valid"), (32, 2, 2, "valid"), (9, 2, 4, "same"),
    ]
    for n, k, s, padding in cases:
        layer = keras.layers.Conv1D(1, k, strides=s, padding=padding)
        expected = int(layer.compute_output_shape((None, n, 1))[1])
        label = f"conv_output_length({n}, kernel_size={k}, stride={s}, padding={padding!r})"
        got = call(fn, n, k, s, padding, what=label)
        if got is None:
            fail(f"{label} returned None. Did you forget a `return`?")
        try:
            value = float(got)
        except (TypeError, ValueError):
            fail(f"{label} returned {kind(got)}, expected a whole number.")
        if value != int(value):
            fail(f"{label} returned {value}, but a length is a whole number: round with // or math.ceil.")
        if int(value) != expected:
            why = ""
            if padding == "same" and int(value) == (n - k) // s + 1:
                why = " ('same' pads the input so the output length is ceil(n / stride), whatever the kernel)"
            elif padding == "valid" and int(value) == (n - k) // s:
                why = " (one short: after the first window, (n - k) // s more windows fit: add 1)"
            elif padding == "valid" and int(value) == math.ceil((n - k) / s) + 1:
                why = " (a window that runs past the end does not count with 'valid': round down)"
            elif int(value) == (n - k) + 1 or int(value) == n:
                why = " (the stride is ignored: the window moves `stride` steps at a time)"
            fail(f"{label} returned {int(value)}, Keras gives {expected}{why}.")
    ok("conv_output_length agrees with Keras for 'valid' and 'same' padding and strides 1-4.")
