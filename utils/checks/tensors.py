"""Checks for ``labs/01_tensors_gradienttape.ipynb``: tensors, a computation graph,
gradients with ``tf.GradientTape``, a hand-derived chain rule, and one SGD step.

Each check tests behaviour (values against a reference computation, properties that must
hold), so any correct way of writing the answer passes: eagerly, inside ``tf.function``
and under a tape where the notebook later uses the answer that way.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from utils.checks._core import (
    CheckError,
    TodoNotDone,
    call,
    expect_close,
    expect_shape,
    fail,
    filled,
    kind,
    matches,
    ok,
    to_array,
)

_IMAGES_SHAPE = (10, 256, 256, 3)


def image_batch(images: Any) -> None:
    """``images`` must be a float32 TensorFlow tensor of zeros holding 10 RGB images of
    256x256, channels last: shape ``(10, 256, 256, 3)``."""
    import tensorflow as tf

    filled(images, "images")
    if images is None:
        fail("`images` is None, expected a TensorFlow tensor.")
    if isinstance(images, np.ndarray):
        fail("`images` is a NumPy array, expected a TensorFlow tensor: make it with TensorFlow (tf.zeros), not NumPy.")
    import keras

    if isinstance(images, keras.Variable):
        fail("`images` is a keras.Variable, a container for weights that training changes; a batch of data is "
             "a plain TensorFlow tensor (tf.zeros makes one).")
    if not (isinstance(images, tf.Variable) or tf.is_tensor(images)) or isinstance(images, (tf.SparseTensor, tf.RaggedTensor)):
        fail(f"`images` is a {kind(images)}, expected a TensorFlow tensor (tf.zeros makes one).")
    dtype = tf.as_dtype(images.dtype)
    if dtype != tf.float32:
        what = "a float type, but not the one asked for" if dtype.is_floating else "not a float type"
        fail(
            f"`images` has dtype {dtype.name} ({what}); expected float32, the dtype Keras layers "
            f"compute in. Ask for it explicitly or rely on the default dtype of tf.zeros."
        )
    shape = tuple(int(s) for s in images.shape)
    if shape != _IMAGES_SHAPE and sorted(shape) == sorted(_IMAGES_SHAPE):
        fail(
            f"`images` has shape {shape}: the right sizes in the wrong order. A batch of images is "
            f"(batch, height, width, channels) = {_IMAGES_SHAPE}, colour channels last."
        )
    array = to_array(images, "images")
    expect_shape(
        array,
        _IMAGES_SHAPE,
        "images",
        hint="A batch of images is (batch, height, width, channels): 10 images, 256 x 256 "
        "pixels, 3 colour channels last.",
    )
    if np.any(array != 0):
        fail("`images` should be all zeros, but some values are not 0.")
    ok("images: a float32 tensor of shape (10, 256, 256, 3), all zeros.")


def _graph_expected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) * (b - 1)


def computation_graph(func: Callable[[Any, Any], Any]) -> None:
    """``func(a, b)`` must compute ``c = a + b``, ``d = b - 1``, ``e = c * d`` and return
    ``e`` with TensorFlow operations: element-wise on tensors of any shape, traceable by
    ``tf.function`` (the notebook traces it next) and differentiable by a tape."""
    import tensorflow as tf

    cases = [(1.5, 2.5), (-3.0, 0.5), (0.0, 1.0), (4.0, -2.0)]
    for a, b in cases:
        got = call(func, tf.constant(a), tf.constant(b), what=f"func({a}, {b})",
                   hint="e = c * d multiplies two tensors element by element.")
        if isinstance(got, (tuple, list)):
            fail(f"func({a}, {b}) returned a Python {type(got).__name__}; return only e, one tensor.")
        value = to_array(got, f"func({a}, {b})")
        expected = (a + b) * (b - 1)
        if value.shape != ():
            fail(f"func({a}, {b}) returned shape {value.shape}; for two scalars e is a scalar.")
        wrong = {
            "c = a + b (you returned c, not e = c * d)": a + b,
            "d = b - 1 (you returned d, not e = c * d)": b - 1,
            "c + d (e multiplies c and d)": (a + b) + (b - 1),
            "(a + b) * (b + 1) (d subtracts 1 from b)": (a + b) * (b + 1),
            "(a + b) * (1 - b) (d is b - 1, not 1 - b)": (a + b) * (1 - b),
            "(a - b) * (b - 1) (c adds a and b)": (a - b) * (b - 1),
            "(a + b) * (a - 1) (d is computed from b)": (a + b) * (a - 1),
        }
        if not math.isclose(float(value), expected, rel_tol=1e-5, abs_tol=1e-6):
            for what, candidate in wrong.items():
                if math.isclose(float(value), candidate, rel_tol=1e-5, abs_tol=1e-6):
                    fail(f"func({a}, {b}) = {float(value):g}, which is {what}. Expected {expected:g}.")
            fail(f"func({a}, {b}) = {float(value):g}, expected (a + b) * (b - 1) = {expected:g}.")
    a = tf.constant([1.0, 2.0, 3.0])
    b = tf.constant([0.5, -1.0, 2.0])
    expected = _graph_expected(a.numpy(), b.numpy())
    element_wise = "Use element-wise operations so func works on tensors of any shape."
    got = call(func, a, b, what="func on vectors of length 3", hint=element_wise)
    if isinstance(got, (tuple, list)):
        fail(f"func(vector, vector) returned a Python {type(got).__name__}; return only e, one tensor.")
    expect_close(to_array(got, "func(vector, vector)"), expected, "func(vector, vector)", hint=element_wise)

    cut = ("Build e from TensorFlow operations on the tensors a and b only: .numpy(), float() and "
           "NumPy functions turn a tensor into plain numbers that no graph or tape can follow.")
    traced = call(tf.function(func), a, b, what="tf.function(func) on vectors (the notebook traces func next)",
                  hint=cut)
    expect_close(to_array(traced, "tf.function(func)(a, b)"), expected, "tf.function(func)(a, b)", hint=cut)
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        e = call(func, a, b, what="func under a GradientTape")
    grads = call(tape.gradient, e, [a, b], what="tape.gradient(e, [a, b])", hint=cut)
    if grads is None or any(g is None for g in grads):
        fail(f"func's result does not carry gradients back to a and b. {cut}")
    expect_close(grads[0], b.numpy() - 1, "de/da", hint="e = (a + b) * (b - 1), so de/da = b - 1.")
    expect_close(grads[1], 2 * b.numpy() + a.numpy() - 1, "de/db", hint="de/db = (b - 1) + (a + b).")
    ok("func computes e = (a + b) * (b - 1), eagerly, as a tf.function and under a tape.")


def _reference_cases() -> list[tuple[str, Callable[[Any], Any], float, float]]:
    import tensorflow as tf

    return [
        ("x**2 at x=3", lambda x: x * x, 3.0, 6.0),
        ("sin(x) at x=0.5", tf.sin, 0.5, math.cos(0.5)),
        ("x**3 at x=-2", lambda x: x**3, -2.0, 12.0),
        ("exp(2x) at x=0.25", lambda x: tf.exp(2.0 * x), 0.25, 2.0 * math.exp(0.5)),
    ]


class _Recorder:
    """Wraps f to record what the learner's derivative passed to it."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f
        self.arguments: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.arguments.append(x)
        return self.f(x)

    def saw_plain_number(self) -> bool:
        import tensorflow as tf

        return any(not (tf.is_tensor(x) or isinstance(x, tf.Variable)) for x in self.arguments)


def _tape_probe() -> tuple[Callable[[Any], Any], float, float, float]:
    """A function whose value is x**2 but whose recorded gradient is x + 10: only
    ``tape.gradient`` sees the recorded one; a finite difference sees the slope 2x."""
    import tensorflow as tf

    @tf.custom_gradient
    def recorded(x: Any) -> Any:
        def grad(upstream: Any, variables: Any = None) -> Any:
            # a keras.Variable x is read through the tf.Variable it wraps, which the tape
            # then lists as a captured variable: its gradient arrives through x already
            if variables:
                return upstream * (x + 10.0), [None for _ in variables]
            return upstream * (x + 10.0)

        return x * x, grad

    def f(x: Any) -> Any:
        return recorded(x if tf.is_tensor(x) or isinstance(x, tf.Variable) else tf.constant(x, tf.float32))

    x = 1.5
    return f, x, x + 10.0, 2 * x


def _none_message(label: str, recorder: _Recorder) -> str:
    if not recorder.arguments:
        return f"derivative returned None for f = {label} and never called f: compute y = f(x) under the tape."
    if recorder.saw_plain_number():
        return (
            f"derivative returned None for f = {label}: f was called with a plain number "
            f"({kind(recorder.arguments[-1])}), so the tape had nothing to record. Call f on the "
            f"tensor the tape watches."
        )
    import tensorflow as tf

    argument = recorder.arguments[-1]
    if not tf.as_dtype(argument.dtype).is_floating:
        return (
            f"derivative returned None for f = {label}: x has dtype {tf.as_dtype(argument.dtype).name}, "
            f"and a tape only differentiates with respect to float tensors. Make x a float32 (or "
            f"float64) tensor."
        )
    if isinstance(argument, tf.Variable) and not argument.trainable:
        return (
            f"derivative returned None for f = {label}. Your x is a tf.Variable made with trainable=False, "
            f"which a tape does not watch by itself: watch it explicitly (tape.watch), or use a trainable "
            f"variable or a tensor you watch."
        )
    if isinstance(argument, tf.Variable):
        return (
            f"derivative returned None for f = {label}. Your x is a tf.Variable, which the tape "
            f"watches by itself, so either y = f(x) was computed outside the `with` block (compute "
            f"it inside) or the arguments of the tape's gradient method are swapped (first what to "
            f"differentiate, then with respect to what)."
        )
    return (
        f"derivative returned None for f = {label}. tape.gradient gives None when the tape "
        f"did not watch x (a tensor that is not a tf.Variable is recorded only after "
        f"tape.watch(x) inside the `with` block; compute y = f(x) inside it too) or when its "
        f"arguments are swapped (first what to differentiate, then with respect to what)."
    )


def _call_derivative(derivative_fn: Callable[..., Any], recorder: _Recorder, x: float, what: str) -> Any:
    """The learner's derivative; an error after f saw a plain number is named as that."""
    try:
        return call(derivative_fn, recorder, x, what=what)
    except TodoNotDone:
        raise
    except CheckError as err:
        if recorder.saw_plain_number():
            fail(
                f"{err}. f was called with a plain number ({kind(recorder.arguments[-1])}), not a tensor, "
                f"so the tape had nothing to record: call f on the tensor the tape watches, inside the "
                f"`with` block, and keep the result a tensor."
            )
        raise


def _derivative_value(got: Any, label: str) -> float:
    if isinstance(got, (list, tuple)) and len(got) == 1:
        fail(
            f"derivative for {label} returned a Python {type(got).__name__} holding one gradient: "
            f"asked for the gradient with respect to a list, the tape answers with a list. Differentiate "
            f"with respect to x itself and return that one value."
        )
    dtype = str(getattr(getattr(got, "dtype", None), "name", getattr(got, "dtype", "")))
    if dtype in ("float16", "bfloat16"):
        fail(
            f"derivative for {label} came back as {dtype}, which keeps only about three significant "
            f"digits: make x a float32 (or float64) tensor."
        )
    return _real_scalar(got, f"derivative for {label}",
                        "the derivative at one x is one number, a scalar of shape () -- which float() in the cells "
                        "below can read. Make x a scalar tensor, not a list or an array of one value.")


def _real_scalar(value: Any, label: str, fix: str) -> float:
    """``value`` as a float: a real number of shape ``()``, or a message (``fix``) naming its shape."""
    array = to_array(value, label, what="a number")
    if array.ndim != 0:
        fail(f"{label} has shape {array.shape}; {fix}")
    if np.iscomplexobj(array):
        fail(f"{label} is a complex number; with real inputs it is real.")
    return float(array.reshape(()))


def derivative(derivative_fn: Callable[[Callable[[Any], Any], float], Any]) -> None:
    """``derivative_fn(f, x)`` must return df/dx at ``x`` computed with ``tf.GradientTape``:
    exact for x**2, sin, x**3 and exp(2x), and equal to the gradient the tape records even
    where that differs from the numerical slope (which tells a tape from a finite
    difference)."""
    for label, f, x, expected in _reference_cases():
        recorder = _Recorder(f)
        got = _call_derivative(derivative_fn, recorder, x, f"derivative(f, {x}) for f = {label.split(' at')[0]}")
        if got is None:
            fail(_none_message(label, recorder))
        value = _derivative_value(got, label)
        if math.isclose(value, float(np.asarray(f(np.float32(x)))), rel_tol=1e-4, abs_tol=1e-6) and not math.isclose(
            value, expected, rel_tol=1e-4
        ):
            fail(f"derivative for {label} returned f(x) = {value:.6g}, not df/dx = {expected:.6g}.")
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
            near = math.isclose(value, expected, rel_tol=0.1)
            fail(
                f"derivative for {label} is {value:.6g}, expected {expected:.6g}."
                + (" Close, but not exact: a finite difference (f(x + h) - f(x)) / h only approximates "
                   "the derivative; let tf.GradientTape compute it exactly." if near else "")
            )
    probe, x, recorded, slope = _tape_probe()
    recorder = _Recorder(probe)
    got = _call_derivative(derivative_fn, recorder, x, f"derivative(f, {x}) for a function with a recorded gradient")
    if got is None:
        fail(_none_message("a function with a recorded gradient", recorder))
    value = _derivative_value(got, "a function with a recorded gradient")
    if not math.isclose(value, recorded, rel_tol=1e-4, abs_tol=1e-5):
        if math.isclose(value, slope, rel_tol=1e-2, abs_tol=1e-3):
            fail(
                f"derivative did not come from tf.GradientTape. The check passed it f(x) = x**2 whose "
                f"gradient, as recorded for the tape (tf.custom_gradient), is x + 10 = {recorded:g} at "
                f"x = {x}; your derivative gave the numerical slope {value:.6g} instead, as a finite "
                f"difference (f(x + h) - f(x)) / h would. Let the tape record f at x and return the "
                f"gradient it plays back."
            )
        fail(
            f"derivative for a function whose tape-recorded gradient at x = {x} is {recorded:g} "
            f"returned {value:.6g}: return the gradient the tape gives back, unchanged."
        )
    ok("derivative matches the exact derivative of x**2, sin, x**3 and exp(2x), taken by the tape.")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@contextlib.contextmanager
def _tape_use_recorded() -> Iterator[list[str]]:
    """Record TensorFlow's automatic differentiation while the block runs: the tape's
    ``gradient``/``jacobian``, ``tf.gradients`` (in a ``tf.function``) and forward mode."""
    import tensorflow as tf

    used: list[str] = []
    targets = [(tf.GradientTape, "gradient"), (tf.GradientTape, "jacobian"), (tf, "gradients"),
               (tf.autodiff.ForwardAccumulator, "jvp")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in targets]

    def recording(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            used.append(name)
            return original(*args, **kwargs)

        return method

    try:
        for owner, name, original in originals:
            setattr(owner, name, recording(name, original))
        yield used
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _pair(got: Any, args: str) -> tuple[float, float]:
    """Type, then shape: ``got`` must be two numbers (a tuple/list, or an array of 2)."""
    import tensorflow as tf

    if got is None:
        fail(f"hand_gradient({args}) returned None, expected the pair (dL_dw, dL_db). Did you forget a `return`?")
    if isinstance(got, np.ndarray) or tf.is_tensor(got):
        shape = tuple(int(s) for s in np.shape(got))
        if shape != (2,):
            fail(f"hand_gradient({args}) returned {kind(got)} of shape {shape}; expected the pair (dL_dw, dL_db): "
                 f"two numbers, one for w and one for b.")
        got = list(np.asarray(got))
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        size = f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""
        fail(f"hand_gradient({args}) returned {kind(got)}{size}; expected a pair (dL_dw, dL_db).")
    fix = ("for numbers w, b, x and t it is one number, a scalar of shape () -- which float() and the cells below "
           "can read. Compute with the numbers themselves, without wrapping them in a list or an array.")
    dw, db = (_real_scalar(item, f"{name} from hand_gradient({args})", fix)
              for name, item in zip(("dL_dw", "dL_db"), got))
    return dw, db


def chain_rule(hand_gradient: Callable[..., Any]) -> None:
    """``hand_gradient(w, b, x, t)`` must return ``(dL/dw, dL/db)`` for
    ``L = (sigmoid(w*x + b) - t)**2``, derived by hand without a tape (checked against
    GradientTape)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    points = [(0.5, -0.3, 2.0, 1.0), *rng.uniform(-2, 2, size=(4, 4)).tolist()]
    for w, b, x, t in points:
        wv, bv = tf.Variable(w, dtype=tf.float64), tf.Variable(b, dtype=tf.float64)
        with tf.GradientTape() as tape:
            loss = (tf.sigmoid(wv * x + bv) - t) ** 2
        ref_w, ref_b = (float(g) for g in tape.gradient(loss, [wv, bv]))
        args = f"w={w:.3g}, b={b:.3g}, x={x:.3g}, t={t:.3g}"
        with _tape_use_recorded() as used:
            got = call(hand_gradient, w, b, x, t, what=f"hand_gradient({args})")
        if used:
            fail("hand_gradient used TensorFlow's automatic differentiation (a GradientTape, tf.gradients or "
                 "forward mode): this TODO derives the gradient by hand. Multiply the local derivatives of the "
                 "chain rule with plain arithmetic.")
        gw, gb = _pair(got, args)
        z = w * x + b
        y = float(_sigmoid(np.float64(z)))
        y_neg = float(_sigmoid(np.float64(-z)))
        local = y * (1 - y)
        hints = [
            (ref_b, ref_w, "the pair is in the wrong order: return (dL_dw, dL_db)"),
            (2 * (y - t) * x, 2 * (y - t), "you left out dy_hat/dz = y_hat * (1 - y_hat), the sigmoid's derivative"),
            ((y - t) * local * x, (y - t) * local, "you left out the factor 2 from d/dy_hat (y_hat - t)**2"),
            (-ref_w, -ref_b, "the sign is flipped: dL/dy_hat = 2 * (y_hat - t), not 2 * (t - y_hat)"),
            (ref_b, ref_b, "dL/dw needs the extra factor dz/dw = x"),
            (ref_w, ref_w, "dL/db has dz/db = 1, so it has no factor x"),
            (ref_b * w, ref_b, "dz/dw is x, the input, not w"),
            (2 * (y - t) * z * (1 - z) * x, 2 * (y - t) * z * (1 - z),
             "dy_hat/dz is y_hat * (1 - y_hat) with y_hat = sigmoid(z), not z * (1 - z)"),
            (2 * (z - t) * x, 2 * (z - t), "y_hat is sigmoid(w * x + b), not w * x + b"),
            (2 * (y_neg - t) * y_neg * (1 - y_neg) * x, 2 * (y_neg - t) * y_neg * (1 - y_neg),
             "the sigmoid is 1 / (1 + exp(-z)), with a minus sign in the exponent"),
        ]
        if not (math.isclose(gw, ref_w, rel_tol=1e-4, abs_tol=1e-7) and math.isclose(gb, ref_b, rel_tol=1e-4, abs_tol=1e-7)):
            for cw, cb, why in hints:
                if matches(np.array([gw, gb]), np.array([cw, cb]), rtol=1e-4, atol=1e-7):
                    fail(f"hand_gradient({args}) = ({gw:.6g}, {gb:.6g}): {why}.")
            fail(
                f"hand_gradient({args}) = ({gw:.6g}, {gb:.6g}); GradientTape gives ({ref_w:.6g}, {ref_b:.6g}). "
                f"Chain rule: dL/dw = dL/dy_hat * dy_hat/dz * dz/dw."
            )
    ok("hand_gradient agrees with GradientTape on 5 random points.")


def _sgd_case(step_fn: Callable[..., Any], lr: float, graph: bool) -> None:
    """One call of ``step_fn`` on fresh variables of three shapes; every variable must move
    by -lr * its own gradient."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    starts = [rng.normal(size=(3,)), rng.normal(size=(2, 2)), np.array(0.7)]
    grads_np = [rng.normal(size=s.shape) for s in starts]
    variables = [tf.Variable(s, dtype=tf.float32) for s in starts]
    grads = [tf.constant(g, dtype=tf.float32) for g in grads_np]
    passed = list(variables)  # the learner may rebind the list's entries; the check keeps its own references
    where = "inside tf.function" if graph else ""
    what = f"sgd_step(variables, grads, learning_rate={lr}){' ' + where if where else ''}"
    pairing = "Each variable moves by -learning_rate * its own gradient (pair them in order)."
    if graph:

        def one_step() -> Any:
            return step_fn(passed, grads, lr)

        returned = call(tf.function(one_step), what=what, hint=(
            "The line fit runs sgd_step inside a tf.function: update the variables with their own "
            "methods on tensors, without .numpy(), and create nothing there (no optimizer, no new "
            "tf.Variable: a tf.function may create variables only on its first call). " + pairing))
    else:
        returned = call(step_fn, passed, grads, lr, what=what, hint=pairing)
    for i, (v, s, g) in enumerate(zip(variables, starts, grads_np)):
        new = v.numpy()
        expected = s - lr * g
        name = f"variable {i} after one step (learning_rate={lr}{', in tf.function' if graph else ''})"
        if matches(new, s.astype(np.float32)):
            moved = [j for j, (w, w0) in enumerate(zip(variables, starts)) if not matches(w.numpy(), w0.astype(np.float32))]
            if moved:
                fail(
                    f"{name} did not change, while variable {moved[0]} did: update every variable in the "
                    f"list, each with its own gradient."
                )
            if any(p is not v for p, v in zip(passed, variables)):
                fail(
                    f"{name} did not change: sgd_step put new values into the list `variables` "
                    f"instead of updating the variables themselves, so the model's variables keep "
                    f"their old values. Update each tf.Variable in place (assign_sub or assign)."
                )
            if not graph and isinstance(returned, (list, tuple)) and len(returned) == len(starts):
                fail(
                    f"{name} did not change: sgd_step returned the new values but left the variables "
                    f"as they were. Update each tf.Variable in place (assign_sub or assign)."
                )
            fail(
                f"{name} did not change. Update the variable in place with v.assign_sub(...) "
                f"(or v.assign(...)); `v = v - ...` only rebinds a local name."
            )
        if matches(new, s + lr * g):
            fail(f"{name} moved uphill: a gradient step subtracts learning_rate * grad.")
        if matches(new, s - g):
            fail(f"{name} ignored the learning rate: subtract learning_rate * grad, not grad.")
        if g.size > 1 and (matches(new, s - lr * g.mean()) or matches(new, s - lr * np.sum(g))):
            fail(f"{name} moved every entry by the same amount: subtract learning_rate * grad element by element.")
        if matches(new, s - 2 * lr * g):
            fail(f"{name} moved twice as far as one step: apply each gradient once.")
        if matches(new, -lr * g):
            fail(f"{name} was replaced by -learning_rate * grad: subtract it from the variable's current value.")
        expect_close(new, expected, name, hint=pairing)


def sgd_step(step_fn: Callable[..., Any]) -> None:
    """``step_fn(variables, grads, learning_rate)`` must update every variable in place:
    ``v <- v - learning_rate * g``, eagerly and inside ``tf.function`` (where the
    notebook's line fit calls it)."""
    for lr in (0.1, 0.03):
        _sgd_case(step_fn, lr, graph=False)
    _sgd_case(step_fn, 0.05, graph=True)
    ok("sgd_step moves every variable by -learning_rate * gradient, eagerly and in tf.function.")

