"""Checks for ``labs/02_custom_dense_layer.ipynb``: a Dense layer written by hand,
a subclassed model, a model with a call-time flag, and convolution output sizes.

The checks compare behaviour with Keras's own layers given the same weights (values,
and gradients where training depends on them), so any correct implementation passes,
however it is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import CheckError, TodoNotDone, call, expect_close, fail, kind, matches, ok, to_array


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in value.shape)


def _untracked(layer: Any) -> list[tuple[str, Any]]:
    """Tensors and variables stored on the layer that Keras does not track as weights
    (a raw ``tf.Variable``, a constant such as ``tf.zeros(...)``)."""
    import tensorflow as tf

    tracked = {id(w) for w in layer.weights}
    found = []
    for name, value in vars(layer).items():
        if name.startswith("_") or id(value) in tracked:
            continue
        if isinstance(value, (tf.Variable, np.ndarray)) or tf.is_tensor(value):
            found.append((name, value))
    return found


def _not_a_weight(role: str, shapes: tuple[tuple[int, ...], ...], layer: Any) -> None:
    """Fail with a message naming the real mistake when the ``role`` ("W"/"b") is stored
    on the layer but is not one of its trainable weights."""
    import tensorflow as tf

    for weight in layer.non_trainable_weights:
        if _shape(weight) in shapes:
            fail(
                f"{role} (shape {_shape(weight)}) was created with trainable=False: an optimizer only updates "
                f"trainable weights, so {role} would never learn. Leave `trainable` at its default (True)."
            )
    for name, value in _untracked(layer):
        if _shape(value) in shapes:
            what = "a tf.Variable made directly" if isinstance(value, tf.Variable) else f"a constant ({kind(value)})"
            fail(
                f"self.{name} (shape {_shape(value)}) is {what}, not a weight of the layer: Keras does not track "
                f"it, so it is not in layer.trainable_weights and training would never update it. "
                f"Create it with self.add_weight(...)."
            )


def _find_weights(layer: Any, d: int, n: int) -> tuple[Any, Any]:
    """Return (kernel, bias) variables of a Dense-like layer, failing with a message
    that names what is wrong with them (shape, trainable, tracked, dtype)."""
    weights = list(layer.trainable_weights)
    shapes = [_shape(w) for w in weights]
    kernels = [w for w, s in zip(weights, shapes) if s == (d, n)]
    if not kernels:
        _not_a_weight("W", ((d, n),), layer)
        if not weights:
            _not_a_weight("W", ((n, d),), layer)
            fail("Your layer has no trainable weights: create W and b in build() with self.add_weight(...).")
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
        _not_a_weight("b", ((n,), (1, n)), layer)
        fail(
            f"No bias of shape ({n},) or (1, {n}); your weights have shapes {shapes}. "
            f"A Dense layer computes sigmoid(x @ W + b): create b with self.add_weight too."
        )
    bias = biases[0]
    if _shape(bias) == (1, n):
        fail(f"b has shape (1, {n}); one value per unit is shape ({n},). It adds the same way, but the cells "
             f"below copy b into Keras's own Dense layer, whose bias has shape ({n},).")
    for role, weight in (("W", kernel), ("b", bias)):
        dtype = str(getattr(weight.dtype, "name", weight.dtype))
        if dtype != "float32":
            fail(
                f"{role} has dtype {dtype}, but the layer's inputs are float32 and TensorFlow does not mix "
                f"dtypes in one operation. Leave `dtype` out of add_weight (the layer's default is float32)."
            )
    return kernel, bias


def _dense_case(layer_class: Callable[[int], Any], d: int, n: int, batch: int, rng: np.random.Generator) -> None:
    import keras
    import tensorflow as tf

    layer = call(layer_class, n, what=f"{getattr(layer_class, '__name__', 'your class')}({n})")
    if not isinstance(layer, keras.layers.Layer):
        fail(f"{kind(layer)} is not a keras.layers.Layer: subclass keras.layers.Layer.")
    x = tf.constant(rng.normal(size=(batch, d)), dtype=tf.float32)
    label = f"your layer on x of shape ({batch}, {d})"
    try:
        call(layer, x, what=label)
    except TodoNotDone:
        raise
    except CheckError as err:
        if "cannot add new elements of state" in str(err):
            fail(f"{str(err).rstrip('.')}. Create every weight in build(), which runs once; call() only computes.")
        if getattr(layer, "weights", None) or _untracked(layer):
            _find_weights(layer, d, n)  # a message about the weights, if they are wrong
            fail(
                f"{str(err).rstrip('.')}. Your W ({d}, {n}) and b ({n},) have the right shapes, so the "
                f"problem is in call(): for x of shape (batch, {d}), x times W of shape ({d}, {n}) -- x "
                f"first, W as it is -- gives (batch, {n}), whatever the batch size."
            )
        fail(f"{str(err).rstrip('.')}. With {d} input features and {n} units W must be ({d}, {n}) and b ({n},).")
    kernel, bias = _find_weights(layer, d, n)
    if any(True for _ in layer._flatten_layers(include_self=False)):
        fail("Your layer holds another Keras layer, which creates the weights and does the computation for it: "
             "create W and b yourself in build() with self.add_weight, and compute the output from them in call().")
    for role, weight, shape in (("W", kernel, (d, n)), ("b", bias, (n,))):
        if getattr(layer, role, None) is not weight:
            fail(f"Your layer has a weight of shape {shape} but it is not stored as self.{role}: the TODO names the "
                 f"kernel self.W and the bias self.b, and the cells below read layer.W and layer.b.")
    count = len(layer.weights)
    w_np = rng.normal(size=(d, n)).astype("float32")
    b_np = rng.normal(loc=1.0, size=(n,)).astype("float32")
    kernel.assign(w_np)
    bias.assign(b_np.reshape(_shape(bias)))
    with tf.GradientTape() as tape:
        out = call(layer, x, what=label)
    got = to_array(out, "layer(x)")
    if got.shape != (batch, n):
        fail(f"layer(x) has shape {got.shape} for x of shape ({batch}, {d}); expected ({batch}, {n}) = (batch, units).")
    if len(layer.weights) != count:
        fail("Your layer creates new weights when it is called: create them once, in build().")
    reference = keras.layers.Dense(n, activation="sigmoid")
    reference.build((None, d))
    reference.set_weights([w_np, b_np])
    expected = np.asarray(reference(x))
    if not matches(got, expected):
        xn = x.numpy()
        z = xn @ w_np + b_np
        diagnoses = [
            (z, "no activation: apply the sigmoid to z = x @ W + b"),
            (np.maximum(z, 0), "ReLU is applied, but this layer uses the sigmoid"),
            (np.tanh(z), "tanh is applied, but this layer uses the sigmoid"),
            (_softmax(z), "softmax is applied, but this layer uses the sigmoid (one value per unit, each in (0, 1))"),
            (_sigmoid(xn @ w_np), "the bias is missing: compute sigmoid(x @ W + b)"),
            (_sigmoid(xn @ w_np) + b_np, "the bias is added after the sigmoid: it belongs inside, sigmoid(x @ W + b)"),
            (xn @ w_np, "no bias and no activation: compute sigmoid(x @ W + b)"),
            (_sigmoid(xn @ w_np - b_np), "the bias is subtracted: compute sigmoid(x @ W + b)"),
        ]
        if d == n:
            diagnoses.append((_sigmoid(xn @ w_np.T + b_np), "W is used transposed: compute x @ W, not x @ W^T"))
        for candidate, why in diagnoses:
            if matches(got, candidate):
                fail(f"layer(x) does not match keras.layers.Dense(activation='sigmoid'): {why}.")
        expect_close(got, expected, "layer(x)", hint="Expected sigmoid(x @ W + b) with your layer's W and b.")
    out_dtype = str(getattr(getattr(out, "dtype", None), "name", getattr(out, "dtype", "")))
    if tf.is_tensor(out) and out_dtype != "float32":
        fail(f"layer(x) returns {out_dtype}, but the layer's inputs and weights are float32: compute in float32 "
             f"(no casts), so that the layer fits into a float32 model.")
    weights_r = tf.constant(rng.normal(size=(batch, n)), dtype=tf.float32)
    grads = tape.gradient(out, [kernel, bias], output_gradients=weights_r) if tf.is_tensor(out) else [None, None]
    for role, grad in zip(("W", "b"), grads):
        if grad is None:
            fail(
                f"No gradient reaches {role} through your layer, so training could not change it: call() "
                f"must compute the output from x and the weights with TensorFlow operations (no .numpy(), "
                f"float() or NumPy functions)."
            )
    with tf.GradientTape() as ref_tape:
        ref_out = reference(x)
    ref_grads = ref_tape.gradient(ref_out, reference.trainable_weights, output_gradients=weights_r)
    expect_close(grads[0], ref_grads[0], "the gradient of W", rtol=1e-3, atol=1e-5,
                 hint="The values match Keras, so something in call() blocks the gradient (tf.stop_gradient?).")
    expect_close(np.reshape(grads[1], (n,)), ref_grads[1], "the gradient of b", rtol=1e-3, atol=1e-5,
                 hint="The values match Keras, so something in call() blocks the gradient (tf.stop_gradient?).")


def dense_layer(layer_class: Callable[[int], Any]) -> None:
    """``layer_class(n_output_nodes)`` must be a Keras layer computing
    ``sigmoid(x @ W + b)`` with ``W`` of shape ``(features, units)`` and ``b`` of shape
    ``(units,)``, both trainable weights: the same values and gradients as
    ``keras.layers.Dense(units, activation="sigmoid")`` with the same weights."""
    rng = np.random.default_rng(2)
    for d, n, batch in [(3, 4, 6), (4, 4, 1), (5, 2, 5)]:
        _dense_case(layer_class, d, n, batch, rng)
    ok("your Dense layer equals keras.layers.Dense(activation='sigmoid') with the same weights.")


def _is_affine(model: Any, d: int, label: str) -> bool:
    """Whether ``model`` maps x to x @ W + b for some W, b (probed on random inputs)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x1 = rng.normal(size=(5, d)).astype("float32")
    x2 = rng.normal(size=(5, d)).astype("float32")
    zero = np.zeros((5, d), dtype="float32")
    y1, y2, y12, y0, y3 = (
        to_array(call(model, tf.constant(x), what=f"{label} on x of shape (5, {d})"), f"{label}(x)")
        for x in (x1, x2, x1 + x2, zero, 3 * x1)
    )
    return matches(y12 - y0, (y1 - y0) + (y2 - y0), atol=1e-4) and matches(y3 - y0, 3 * (y1 - y0), atol=1e-4)


def _subclass_case(model_class: Callable[[int], Any], d: int, n: int) -> None:
    import keras
    import tensorflow as tf

    model = call(model_class, n, what=f"{getattr(model_class, '__name__', 'your class')}({n})")
    if not isinstance(model, keras.Model):
        fail(f"{kind(model)} is not a keras.Model: subclass keras.Model.")
    label = f"{type(model).__name__}({n})"
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(5, d)), dtype=tf.float32)
    out = call(model, x, what=f"{label} on x of shape (5, {d})")
    y = to_array(out, f"{label}(x)")
    if matches(y, x.numpy()):
        fail(f"{label}(x) returned its inputs unchanged: pass them through the Dense layer.")
    out_dtype = str(getattr(getattr(out, "dtype", None), "name", getattr(out, "dtype", "")))
    if out_dtype != "float32":
        fail(f"{label}(x) returns {out_dtype}, but the rest of the notebook computes in float32 (and TensorFlow does "
             f"not mix the two in one operation): leave the Dense layer's dtype at its default.")
    if y.shape != (5, n):
        fail(f"{label}(x) has shape {y.shape} for x of shape (5, {d}); expected (5, {n}) = (batch, n_output_nodes).")
    shapes = sorted(_shape(w) for w in model.trainable_weights)
    if not shapes:
        if model.non_trainable_weights:
            fail("The model's weights are not trainable (trainable=False): leave `trainable` at its default so "
                 "training can change them.")
        fail("The model has no trainable weights: create a keras.layers.Dense in __init__ and use it in call().")
    if shapes == [(d, n)]:
        fail(f"The Dense layer has a kernel ({d}, {n}) but no bias: leave use_bias at its default (True); "
             f"a dense layer computes x @ W + b.")
    if shapes != sorted([(d, n), (n,)]):
        fail(
            f"The model's trainable weights have shapes {shapes}; one Dense layer with {n} units on {d} "
            f"features has exactly a kernel ({d}, {n}) and a bias ({n},). Give the model one Dense layer."
        )
    kernel = next(w for w in model.trainable_weights if _shape(w) == (d, n))
    bias = next(w for w in model.trainable_weights if _shape(w) == (n,))
    w_np = rng.normal(size=(d, n)).astype("float32")
    b_np = rng.normal(size=(n,)).astype("float32")
    kernel.assign(w_np)
    bias.assign(b_np)
    got = to_array(call(model, x, what=f"{label} on x of shape (5, {d})"), f"{label}(x)")
    z = x.numpy() @ w_np + b_np
    if matches(got, z):
        return
    if matches(got, np.zeros_like(got)) or matches(got, np.broadcast_to(got[:1], got.shape)):
        fail(f"{label}(x) does not depend on x: pass the inputs through the Dense layer.")
    activations = {
        "relu": np.maximum(z, 0),
        "sigmoid": _sigmoid(z),
        "tanh": np.tanh(z),
        "softmax": _softmax(z),
        "leaky_relu": np.where(z > 0, z, 0.2 * z),
        "elu": np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    }
    for name, candidate in activations.items():
        if matches(got, candidate):
            fail(f"{label}(x) is {name}(x @ W + b): this model's output is the plain x @ W + b. "
                 f"Remove the activation (Dense's default is none).")
    if not _is_affine(model, d, label):
        fail(
            f"{label}(x) is not x @ W + b: a single Dense layer without an activation is linear "
            f"(plus a bias). Remove the activation (Dense's default is none)."
        )
    expect_close(got, z, f"{label}(x)", hint="Expected x @ W + b with the model's Dense kernel W and bias b.")


def subclass_model(model_class: Callable[[int], Any]) -> None:
    """``model_class(n_output_nodes)`` must be a ``keras.Model`` whose ``call`` passes the
    inputs through one Dense layer with ``n_output_nodes`` units, a bias and no activation:
    ``x @ W + b`` with that layer's weights."""
    for d, n in [(2, 3), (4, 1)]:
        _subclass_case(model_class, d, n)
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
    returned = call(model, x, isidentity=True, what="model(x, isidentity=True)")
    same = to_array(returned, "model(x, isidentity=True)")
    if not matches(same, x.numpy(), rtol=0, atol=0):
        if same.shape == (4, n):
            fail("model(x, isidentity=True) went through the Dense layer: with the flag on, return the inputs unchanged.")
        if same.shape == tuple(x.shape):
            fail("model(x, isidentity=True) changed the values of x: with the flag on, return the inputs unchanged.")
        fail(f"model(x, isidentity=True) has shape {same.shape}; with the flag on it must return x itself, shape {tuple(x.shape)}.")
    if not tf.is_tensor(returned):
        fail(f"model(x, isidentity=True) returned {kind(returned)}, not a tensor: hand back the inputs themselves, "
             f"still a tensor (the cell below calls .numpy() on the result, and the rest of a network computes "
             f"on tensors).")
    if matches(default, x.numpy()):
        fail("model(x) returned the inputs: with isidentity=False (the default) pass them through the Dense layer.")
    if not matches(explicit, default):
        again = to_array(call(model, x, what="model(x)"), "model(x)")
        if not matches(again, default):
            fail("model(x) gives a different result at every call: a layer created inside call() starts with new "
                 "random weights each time. Use the dense layer the model made once, in __init__ "
                 "(self.dense_layer).")
        fail("model(x) and model(x, isidentity=False) differ: the flag's default must be False.")
    if default.shape != (4, n):
        fail(f"model(x) has shape {default.shape} for x of shape (4, {d}); expected (4, {n}) from the Dense layer.")
    dense = _dense_sublayers(model)
    if not dense:
        fail("The model has no keras.layers.Dense: keep self.dense_layer from __init__ and use it in call().")
    outputs = [np.asarray(lay(x)) for lay in dense if lay.built]
    if not any(matches(default, out) for out in outputs):
        fail("model(x) is not the output of the model's Dense layer: with the flag off, pass the inputs "
             "through self.dense_layer and return what it gives.")
    ok("isidentity=True returns the inputs; the default passes them through the Dense layer.")


_CONV_CASES = [
    (28, 3, 1, "valid"), (28, 3, 1, "same"), (28, 5, 2, "valid"), (28, 5, 2, "same"),
    (27, 3, 2, "valid"), (27, 3, 2, "same"), (10, 4, 3, "valid"), (10, 4, 3, "same"),
    (7, 7, 1, "valid"), (32, 2, 2, "valid"), (9, 2, 4, "same"),
    # odd kernels where n / stride is just above a whole number (rounding to nearest fails)
    (10, 3, 3, "same"), (9, 5, 4, "same"), (13, 3, 4, "valid"),
    # even kernels, where a formula built for odd ones (padding k // 2 on each side) breaks
    (28, 2, 1, "same"), (28, 4, 2, "same"), (8, 4, 2, "same"), (15, 6, 3, "same"), (28, 2, 1, "valid"),
    (9, 4, 2, "valid"), (11, 6, 1, "same"),
]

_CONV_MISTAKES: list[tuple[Callable[[int, int, int, str, int], bool], str]] = [
    (lambda n, k, s, p, v: p == "same" and v == n // s,
     "'same' rounds up: a last, partial stride still gives an output position, so it is ceil(n / stride)"),
    (lambda n, k, s, p, v: p == "same" and v == (n - k) // s + 1,
     "'same' pads the input so the output length is ceil(n / stride), whatever the kernel"),
    (lambda n, k, s, p, v: p == "valid" and v == (n - k) // s,
     "one short: after the first window, (n - k) // s more windows fit: add 1"),
    (lambda n, k, s, p, v: p == "valid" and v == math.ceil((n - k) / s) + 1,
     "a window that runs past the end does not count with 'valid': round down"),
    (lambda n, k, s, p, v: v in ((n - k) + 1, n), "the stride is ignored: the window moves `stride` steps at a time"),
]


def _conv_length_value(fn: Callable[[int, int, int, str], Any], n: int, k: int, s: int, padding: str) -> int:
    """Call the learner's function; type check: a whole number of type int."""
    label = f"conv_output_length({n}, kernel_size={k}, stride={s}, padding={padding!r})"
    got = call(fn, n, k, s, padding, what=label)
    if got is None:
        fail(f"{label} returned None. Did you forget a `return`?")
    what = kind(got)
    if hasattr(got, "numpy") and np.ndim(got) == 0:
        got = got.numpy()
    if isinstance(got, (int, np.integer)) and not isinstance(got, (bool, np.bool_)):
        return int(got)
    if not isinstance(got, (float, np.floating)):
        fail(f"{label} returned {what}, expected a whole number (an int).")
    value = float(got)
    if value != int(value):
        fail(f"{label} returned {value}, but a length is a whole number: round with // or math.ceil.")
    fail(
        f"{label} returned {value!r}, a {what}: a length is a whole number of type int (it sizes "
        f"tensors and ranges). Floor-divide with // or round up with math.ceil, which give ints, or "
        f"convert with int()."
    )


def conv_output_length(fn: Callable[[int, int, int, str], Any]) -> None:
    """``fn(input_length, kernel_size, stride, padding)`` must return the output length of
    a convolution along one axis, as Keras computes it, for ``"valid"`` and ``"same"``
    padding, odd and even kernels: an ``int``."""
    import keras

    wrong = []
    for n, k, s, padding in _CONV_CASES:
        expected = int(keras.layers.Conv1D(1, k, strides=s, padding=padding).compute_output_shape((None, n, 1))[1])
        value = _conv_length_value(fn, n, k, s, padding)
        if value != expected:
            wrong.append((n, k, s, padding, value, expected))
    if not wrong:
        ok("conv_output_length agrees with Keras for 'valid' and 'same' padding, odd and even kernels, strides 1-4.")
        return
    n, k, s, padding, value, expected = wrong[0]
    label = f"conv_output_length({n}, kernel_size={k}, stride={s}, padding={padding!r})"
    if all(case[1] % 2 == 0 for case in wrong):
        fail(
            f"{label} returned {value}, Keras gives {expected}. Your formula is right for odd kernel sizes "
            f"but not for even ones: 'same' padding adds k - 1 positions in total (one more on one side "
            f"when k is even), so the output length is ceil(n / stride) whatever the kernel size."
        )
    same_padding = [case[:5] for case in wrong if case[3] == padding]
    explains_all = [why for test, why in _CONV_MISTAKES if all(test(*case) for case in same_padding)]
    explains_first = [why for test, why in _CONV_MISTAKES if test(n, k, s, padding, value)]
    why = (explains_all or explains_first or [""])[0]
    fail(f"{label} returned {value}, Keras gives {expected}" + (f" ({why})." if why else "."))
