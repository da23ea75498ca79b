"""Checks for ``labs/01_tensors_gradienttape.ipynb``: tensors, a computation graph,
gradients with ``tf.GradientTape``, a hand-derived chain rule, and one SGD step.

Each check tests behaviour (values against a reference computation), so any correct
way of writing the answer passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import call, expect_close, expect_shape, fail, filled, kind, matches, ok, to_array


def image_batch(images: Any) -> None:
    """``images`` must be a float tensor of zeros holding 10 RGB images of 256x256,
    channels last: shape ``(10, 256, 256, 3)``."""
    import tensorflow as tf

    filled(images, "images")
    if not isinstance(images, (tf.Tensor, tf.Variable)):
        fail(f"`images` is a {kind(images)}, expected a TensorFlow tensor (try tf.zeros).")
    array = to_array(images, "images")
    expect_shape(
        array,
        (10, 256, 256, 3),
        "images",
        hint="A batch of images is (batch, height, width, channels): 10 images, 256 x 256 "
        "pixels, 3 colour channels last.",
    )
    if not images.dtype.is_floating:
        fail(f"`images` has dtype {images.dtype.name}; pixel tensors for a network are floats (float32).")
    if np.any(array != 0):
        fail("`images` should be all zeros (tf.zeros), but some values are not 0.")
    ok("images: a rank-4 tensor of shape (10, 256, 256, 3).")


def computation_graph(func: Callable[[Any, Any], Any]) -> None:
    """``func(a, b)`` must compute ``c = a + b``, ``d = b - 1``, ``e = c * d`` and return ``e``."""
    import tensorflow as tf

    cases = [(1.5, 2.5), (-3.0, 0.5), (0.0, 1.0), (4.0, -2.0)]
    for a, b in cases:
        got = call(func, tf.constant(a), tf.constant(b), what=f"func({a}, {b})")
        value = to_array(got, f"func({a}, {b})")
        expected = (a + b) * (b - 1)
        if value.shape != ():
            fail(f"func({a}, {b}) returned shape {value.shape}; for two scalars e is a scalar.")
        wrong = {
            "c = a + b (you returned c, not e = c * d)": a + b,
            "d = b - 1 (you returned d, not e = c * d)": b - 1,
            "c + d (e multiplies c and d)": (a + b) + (b - 1),
            "(a + b) * (b + 1) (d subtracts 1 from b)": (a + b) * (b + 1),
            "(a - b) * (b - 1) (c adds a and b)": (a - b) * (b - 1),
        }
        if not math.isclose(float(value), expected, rel_tol=1e-5, abs_tol=1e-6):
            for what, candidate in wrong.items():
                if math.isclose(float(value), candidate, rel_tol=1e-5, abs_tol=1e-6):
                    fail(f"func({a}, {b}) = {float(value):g}, which is {what}. Expected {expected:g}.")
            fail(f"func({a}, {b}) = {float(value):g}, expected (a + b) * (b - 1) = {expected:g}.")
    a = tf.constant([1.0, 2.0, 3.0])
    b = tf.constant([0.5, -1.0, 2.0])
    got = to_array(call(func, a, b, what="func on vectors"), "func(vector, vector)")
    expect_close(got, (a.numpy() + b.numpy()) * (b.numpy() - 1), "func(vector, vector)",
                 hint="Use element-wise operations so func works on tensors of any shape.")
    ok("func computes e = (a + b) * (b - 1).")


def _reference_cases() -> list[tuple[str, Callable[[Any], Any], float, float]]:
    import tensorflow as tf

    return [
        ("x**2 at x=3", lambda x: x * x, 3.0, 6.0),
        ("sin(x) at x=0.5", tf.sin, 0.5, math.cos(0.5)),
        ("x**3 at x=-2", lambda x: x**3, -2.0, 12.0),
        ("exp(2x) at x=0.25", lambda x: tf.exp(2.0 * x), 0.25, 2.0 * math.exp(0.5)),
    ]


def derivative(derivative_fn: Callable[[Callable[[Any], Any], float], Any]) -> None:
    """``derivative_fn(f, x)`` must return df/dx at ``x`` computed with ``tf.GradientTape``."""
    for label, f, x, expected in _reference_cases():
        got = call(derivative_fn, f, x, what=f"derivative(f, {x}) for f = {label.split(' at')[0]}")
        if got is None:
            fail(
                f"derivative returned None for f = {label}. tape.gradient gives None when the tape "
                f"did not watch x (make x a tf.Variable or call tape.watch(x) inside the `with` "
                f"block, and compute y = f(x) inside it too) or when its arguments are swapped "
                f"(it is tape.gradient(y, x): what to differentiate, then with respect to what)."
            )
        value = to_array(got, f"derivative for {label}", what="a number")
        if value.size != 1:
            fail(f"derivative for {label} has shape {value.shape}; the derivative at one x is one number.")
        value = float(value.reshape(()))
        if math.isclose(value, float(np.asarray(f(np.float32(x)))), rel_tol=1e-4, abs_tol=1e-6) and not math.isclose(
            value, expected, rel_tol=1e-4
        ):
            fail(f"derivative for {label} returned f(x) = {value:.6g}, not df/dx = {expected:.6g}.")
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
            fail(f"derivative for {label} is {value:.6g}, expected {expected:.6g}.")
    ok("derivative matches the exact derivative of x**2, sin, x**3 and exp(2x).")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def chain_rule(hand_gradient: Callable[..., Any]) -> None:
    """``hand_gradient(w, b, x, t)`` must return ``(dL/dw, dL/db)`` for
    ``L = (sigmoid(w*x + b) - t)**2``, derived by hand (checked against GradientTape)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for w, b, x, t in [(0.5, -0.3, 2.0, 1.0), *rng.uniform(-2, 2, size=(4, 4)).tolist()]:
        wv, bv = tf.Variable(w, dtype=tf.float64), tf.Variable(b, dtype=tf.float64)
        with tf.GradientTape() as tape:
            loss = (tf.sigmoid(wv * x + bv) - t) ** 2
        ref_w, ref_b = (float(g) for g in tape.gradient(loss, [wv, bv]))
        got = call(hand_gradient, w, b, x, t, what=f"hand_gradient(w={w:.3g}, b={b:.3g}, x={x:.3g}, t={t:.3g})")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"hand_gradient returned {kind(got)}; expected a pair (dL_dw, dL_db).")
        gw = float(to_array(got[0], "dL_dw", "a number").reshape(()))
        gb = float(to_array(got[1], "dL_db", "a number").reshape(()))
        y = float(_sigmoid(np.float64(w * x + b)))
        hints = [
            (2 * (y - t) * x, 2 * (y - t), "you left out dy/dz = y * (1 - y), the sigmoid's derivative"),
            ((y - t) * y * (1 - y) * x, (y - t) * y * (1 - y), "you left out the factor 2 from d/dy (y - t)**2"),
            (-ref_w, -ref_b, "the sign is flipped: dL/dy = 2 * (y - t), not 2 * (t - y)"),
            (ref_b, ref_b, "dL/dw needs the extra factor dz/dw = x"),
            (ref_w, ref_w, "dL/db has dz/db = 1, so it has no factor x"),
        ]
        if not (math.isclose(gw, ref_w, rel_tol=1e-4, abs_tol=1e-7) and math.isclose(gb, ref_b, rel_tol=1e-4, abs_tol=1e-7)):
            for cw, cb, why in hints:
                if matches(np.array([gw, gb]), np.array([cw, cb]), rtol=1e-4, atol=1e-7):
                    fail(f"hand_gradient(w={w:.3g}, b={b:.3g}, x={x:.3g}, t={t:.3g}) = ({gw:.6g}, {gb:.6g}): {why}.")
            fail(
                f"hand_gradient(w={w:.3g}, b={b:.3g}, x={x:.3g}, t={t:.3g}) = ({gw:.6g}, {gb:.6g}); "
                f"GradientTape gives ({ref_w:.6g}, {ref_b:.6g}). Chain rule: dL/dw = dL/dy * dy/dz * dz/dw."
            )
    ok("hand_gradient agrees with GradientTape on 5 random points.")


def sgd_step(step_fn: Callable[..., Any]) -> None:
    """``step_fn(variables, grads, learning_rate)`` must update every variable in place:
    ``v <- v - learning_rate * g``."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    starts = [rng.normal(size=(3,)), rng.normal(size=(2, 2)), np.array(0.7)]
    grads_np = [rng.normal(size=s.shape) for s in starts]
    for lr in (0.1, 0.03):
        variables = [tf.Variable(s, dtype=tf.float32) for s in starts]
        grads = [tf.constant(g, dtype=tf.float32) for g in grads_np]
        call(step_fn, variables, grads, lr, what=f"sgd_step(variables, grads, learning_rate={lr})")
        for i, (v, s, g) in enumerate(zip(variables, starts, grads_np)):
            new = v.numpy()
            expected = s - lr * g
            name = f"variable {i} after one step (learning_rate={lr})"
            if matches(new, s.astype(np.float32)):
                fail(
                    f"{name} did not change. Update the variable in place with v.assign_sub(...) "
                    f"(or v.assign(...)); `v = v - ...` only rebinds a local name."
                )
            if matches(new, s + lr * g):
                fail(f"{name} moved uphill: a gradient step subtracts learning_rate * grad.")
            if matches(new, s - g):
                fail(f"{name} ignored the learning rate: subtract learning_rate * grad, not grad.")
            expect_close(new, expected, name, hint="Each variable moves by -learning_rate * its own gradient.")
    ok("sgd_step moves every variable by -learning_rate * gradient.")
