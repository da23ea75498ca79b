"""Checks of notebook 01 accept correct answers written differently and reject plausible
wrong ones with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from utils import checks
from utils.checks import TodoNotDone




# --- TODO: image batch --------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: tf.zeros([10, 256, 256, 3]),
        lambda: tf.constant(np.zeros((10, 256, 256, 3)), dtype=tf.float32),
        lambda: tf.fill((10, 256, 256, 3), 0.0),
        lambda: tf.Variable(tf.zeros((10, 256, 256, 3), dtype=tf.float64)),
    ],
)
def test_image_batch_accepts(make, capsys):
    checks.tensors.image_batch(make())
    assert capsys.readouterr().out.startswith("[ok]")


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (tf.zeros([256, 256, 3]), "expected (10, 256, 256, 3)"),
        (tf.zeros([10, 3, 256, 256]), "channels last"),
        (tf.zeros([10, 256, 256, 3], dtype=tf.int32), "dtype int32"),
        (tf.ones([10, 256, 256, 3]), "all zeros"),
        (np.zeros((10, 256, 256, 3)), "expected a TensorFlow tensor"),
        ([[0.0]], "expected a TensorFlow tensor"),
    ],
)
def test_image_batch_rejects(answer, fragment, rejects):
    rejects(checks.tensors.image_batch, answer, fragment=fragment)


def test_image_batch_unfilled_says_todo():
    with pytest.raises(TodoNotDone, match="still `...`"):
        checks.tensors.image_batch(...)


# --- TODO: computation graph --------------------------------------------------------


def func_ops(a, b):
    return tf.multiply(tf.add(a, b), tf.subtract(b, 1))


def func_operators(a, b):
    c = a + b
    d = b - 1.0
    return c * d


@pytest.mark.parametrize("func", [func_ops, func_operators])
def test_computation_graph_accepts(func, capsys):
    checks.tensors.computation_graph(func)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "func, fragment",
    [
        (lambda a, b: a + b, "you returned c"),
        (lambda a, b: (a + b) + (b - 1), "c + d"),
        (lambda a, b: (a + b) * (b + 1), "d subtracts 1"),
        (lambda a, b: (a - b) * (b - 1), "c adds a and b"),
        (lambda a, b: None, "None"),
        (lambda a, b: tf.constant(float((a + b) * (b - 1)) if tf.rank(a) == 0 else 0.0), "func(vector, vector)"),
    ],
)
def test_computation_graph_rejects(func, fragment, rejects):
    rejects(checks.tensors.computation_graph, func, fragment=fragment)


def test_computation_graph_unfilled_names_the_todo():
    def func(a, b):
        raise NotImplementedError("TODO 2")

    with pytest.raises(TodoNotDone, match="TODO 2 is not filled in yet"):
        checks.tensors.computation_graph(func)


# --- TODO: derivative with GradientTape ---------------------------------------------


def derivative_watch(f, x):
    x = tf.constant(x, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x)


def derivative_variable(f, x):
    v = tf.Variable(float(x), dtype=tf.float64)
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.gradient(y, v).numpy()


@pytest.mark.parametrize("fn", [derivative_watch, derivative_variable])
def test_derivative_accepts(fn, capsys):
    checks.tensors.derivative(fn)
    assert "[ok]" in capsys.readouterr().out


def derivative_unwatched(f, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        y = f(x)
    return tape.gradient(y, x)


def derivative_returns_value(f, x):
    x = tf.Variable(x)
    with tf.GradientTape():
        y = f(x)
    return y


def derivative_swapped(f, x):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = f(x)
    return tape.gradient(x, y)


def derivative_coarse_difference(f, x):
    return (f(x + 0.5) - f(x)) / 0.5


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (derivative_unwatched, "tape.watch"),
        (derivative_returns_value, "returned f(x)"),
        (derivative_swapped, "tape.gradient(y, x)"),
        (derivative_coarse_difference, "expected 6"),
    ],
)
def test_derivative_rejects(fn, fragment, rejects):
    rejects(checks.tensors.derivative, fn, fragment=fragment)


# --- TODO: the chain rule by hand ---------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def hand_numpy(w, b, x, t):
    y = sigmoid(w * x + b)
    g = 2 * (y - t) * y * (1 - y)
    return g * x, g


def hand_tf(w, b, x, t):
    y = tf.sigmoid(tf.constant(w * x + b, tf.float64))
    dl_dy, dy_dz = 2 * (y - t), y * (1 - y)
    return [dl_dy * dy_dz * x, dl_dy * dy_dz * 1.0]


@pytest.mark.parametrize("fn", [hand_numpy, hand_tf])
def test_chain_rule_accepts(fn, capsys):
    checks.tensors.chain_rule(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda w, b, x, t: (2 * (sigmoid(w * x + b) - t) * x, 2 * (sigmoid(w * x + b) - t)), "sigmoid's derivative"),
        (lambda w, b, x, t: tuple(v / 2 for v in hand_numpy(w, b, x, t)), "factor 2"),
        (lambda w, b, x, t: tuple(-v for v in hand_numpy(w, b, x, t)), "sign is flipped"),
        (lambda w, b, x, t: (hand_numpy(w, b, x, t)[1], hand_numpy(w, b, x, t)[1]), "dz/dw = x"),
        (lambda w, b, x, t: hand_numpy(w, b, x, t)[0], "expected a pair"),
    ],
)
def test_chain_rule_rejects(fn, fragment, rejects):
    rejects(checks.tensors.chain_rule, fn, fragment=fragment)


# --- TODO: one SGD step -------------------------------------------------------------


def sgd_assign_sub(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v.assign_sub(learning_rate * g)


def sgd_assign(variables, grads, learning_rate):
    for i in range(len(variables)):
        variables[i].assign(variables[i] - grads[i] * learning_rate)


@pytest.mark.parametrize("fn", [sgd_assign_sub, sgd_assign])
def test_sgd_step_accepts(fn, capsys):
    checks.tensors.sgd_step(fn)
    assert "[ok]" in capsys.readouterr().out


def sgd_rebinds(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v = v - learning_rate * g  # noqa: F841 - the mistake under test


def sgd_first_only(variables, grads, learning_rate):
    variables[0].assign_sub(learning_rate * grads[0])


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda vs, gs, lr: [v.assign_add(lr * g) for v, g in zip(vs, gs)], "uphill"),
        (lambda vs, gs, lr: [v.assign_sub(g) for v, g in zip(vs, gs)], "ignored the learning rate"),
        (sgd_rebinds, "did not change"),
        (sgd_first_only, "variable 1"),
        (lambda vs, gs, lr: [v.assign_sub(lr * gs[0][..., None][:1].shape[0] * g * 2) for v, g in zip(vs, gs)], "wrong"),
    ],
)
def test_sgd_step_rejects(fn, fragment, rejects):
    rejects(checks.tensors.sgd_step, fn, fragment=fragment)
