"""Checks of notebook 01 accept correct answers written differently and reject plausible
wrong ones with a message that names the mistake."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils import checks
from utils.checks import CheckError, TodoNotDone

# --- TODO: image batch --------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: tf.zeros([10, 256, 256, 3]),
        lambda: tf.constant(np.zeros((10, 256, 256, 3)), dtype=tf.float32),
        lambda: tf.fill((10, 256, 256, 3), 0.0),
        lambda: tf.Variable(tf.zeros((10, 256, 256, 3))),
        lambda: tf.zeros((10, 256, 256, 3), dtype="float32"),
        lambda: tf.ones([10, 256, 256, 3]) * 0,
        lambda: tf.zeros_like(tf.ones((10, 256, 256, 3))),
        lambda: tf.cast(tf.zeros((10, 256, 256, 3), tf.int32), tf.float32),
        lambda: keras.ops.zeros((10, 256, 256, 3)),
        lambda: tf.reshape(tf.zeros(10 * 256 * 256 * 3), (10, 256, 256, 3)),
    ],
)
def test_image_batch_accepts(make, capsys):
    checks.tensors.image_batch(make())
    assert capsys.readouterr().out.startswith("[ok]")


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: tf.zeros([256, 256, 3]), "expected (10, 256, 256, 3)"),
        (lambda: tf.zeros([10, 3, 256, 256]), "channels last"),
        (lambda: tf.zeros([10, 256, 256, 3], dtype=tf.int32), "dtype int32"),
        (lambda: tf.zeros([10, 256, 256, 3], dtype=tf.float16), "dtype float16"),
        (lambda: tf.zeros([10, 256, 256, 3], dtype=tf.float64), "expected float32"),
        (lambda: tf.Variable(tf.zeros([10, 256, 256, 3], dtype=tf.float64)), "expected float32"),
        (lambda: tf.zeros([10, 256, 256, 3], dtype=tf.bfloat16), "expected float32"),
        (lambda: tf.zeros([10, 256, 256, 3], dtype=tf.uint8), "dtype uint8"),
        (lambda: tf.ones([10, 256, 256, 3]), "all zeros"),
        (lambda: tf.random.normal([10, 256, 256, 3]), "all zeros"),
        (lambda: np.zeros((10, 256, 256, 3), dtype=np.float32), "NumPy array"),
        (lambda: [[0.0]], "expected a TensorFlow tensor"),
        (lambda: None, "None"),
        (lambda: tf.zeros([256, 256, 3, 10]), "wrong order"),
        (lambda: tf.zeros([10, 256, 3, 256]), "channels last"),
        (lambda: tf.zeros([10, 256, 256]), "expected (10, 256, 256, 3)"),
        (lambda: tf.zeros([1, 256, 256, 3]), "expected (10, 256, 256, 3)"),
        (lambda: tf.zeros([10, 256, 256, 1]), "3 colour channels"),
        (lambda: keras.Variable(np.zeros((10, 256, 256, 3), "float32")), "keras.Variable"),
    ],
)
def test_image_batch_rejects(make, fragment, rejects):
    rejects(checks.tensors.image_batch, make(), fragment=fragment)


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


@tf.function
def func_decorated(a, b):
    return tf.math.multiply(tf.math.add(a, b), tf.math.subtract(b, tf.constant(1.0)))


def func_keras_ops(a, b):
    return keras.ops.multiply(keras.ops.add(a, b), keras.ops.subtract(b, 1))


@pytest.mark.parametrize("func", [func_ops, func_operators, func_decorated, func_keras_ops])
def test_computation_graph_accepts(func, capsys):
    checks.tensors.computation_graph(func)
    assert "[ok]" in capsys.readouterr().out


def func_numpy(a, b):
    return np.multiply(np.add(a, b), np.subtract(b, 1))


def func_dot_numpy(a, b):
    return tf.constant((a.numpy() + b.numpy()) * (b.numpy() - 1))


def func_floats(a, b):
    return (float(a) + float(b)) * (float(b) - 1)


def func_all_three(a, b):
    c, d = a + b, b - 1
    return c, d, c * d


@pytest.mark.parametrize(
    "func, fragment",
    [
        (lambda a, b: a + b, "you returned c"),
        (lambda a, b: (a + b) + (b - 1), "c + d"),
        (lambda a, b: (a + b) * (b + 1), "d subtracts 1"),
        (lambda a, b: (a + b) * (1 - b), "not 1 - b"),
        (lambda a, b: (a - b) * (b - 1), "c adds a and b"),
        (lambda a, b: (a + b) * (a - 1), "d is computed from b"),
        (lambda a, b: (a + b) / (b - 1), "expected (a + b) * (b - 1)"),
        (lambda a, b: None, "None"),
        (lambda a, b: tf.constant(float((a + b) * (b - 1)) if tf.rank(a) == 0 else 0.0), "func(vector, vector)"),
        (lambda a, b: tf.reduce_sum((a + b) * (b - 1)), "func(vector, vector)"),
        (lambda a, b: tf.matmul(a + b, b - 1), "element by element"),
        (func_all_three, "return only e"),
        (func_numpy, "NumPy functions"),
        (func_dot_numpy, "tf.function"),
        (func_floats, "func on vectors"),
        (lambda a, b: tf.stop_gradient((a + b) * (b - 1)), "does not carry gradients"),
    ],
)
def test_computation_graph_rejects(func, fragment, rejects):
    rejects(checks.tensors.computation_graph, func, fragment=fragment)


def test_computation_graph_unfilled_names_the_todo():
    def func(a, b):
        raise NotImplementedError("TODO 2")

    with pytest.raises(TodoNotDone, match="TODO 2 is not filled in yet"):
        checks.tensors.computation_graph(func)


def test_tensorflow_not_implemented_error_is_not_taken_for_an_unfilled_todo():
    """TensorFlow raises NotImplementedError for NumPy on a symbolic tensor: a mistake to
    name, not a TODO to fill in."""
    with pytest.raises(CheckError) as info:
        checks.tensors.computation_graph(func_numpy)
    assert not isinstance(info.value, TodoNotDone)
    assert "symbolic" in str(info.value) and "\x1b" not in str(info.value)


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


def derivative_persistent_float(f, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    return float(tape.gradient(y, x))


def derivative_jacobian(f, x):
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.jacobian(y, v)


def derivative_keras_variable(f, x):
    v = keras.Variable(x)
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.gradient(y, v)


def derivative_one_element(f, x):
    # a correct gradient, but of shape (1,): float() in the check cell cannot read it
    v = tf.Variable([x])
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.gradient(y, v)


def derivative_jacobian_one_element(f, x):
    v = tf.Variable([x])
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.jacobian(y, v)


@pytest.mark.parametrize("fn", [derivative_watch, derivative_variable, derivative_persistent_float, derivative_jacobian,
                                derivative_keras_variable])
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


def derivative_central_difference(f, x):
    h = 1e-3
    return (f(tf.constant(x + h, tf.float64)) - f(tf.constant(x - h, tf.float64))) / (2 * h)


def derivative_forward_mode(f, x):
    x = tf.constant(x)
    with tf.autodiff.ForwardAccumulator(x, tf.constant(1.0)) as acc:
        y = f(x)
    return acc.jvp(y)


def derivative_of_plain_number(f, x):
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = f(v.numpy())
    return tape.gradient(y, v)


def derivative_fixed_point(f, x):
    return derivative_watch(f, 3.0)


def derivative_outside_tape(f, x):
    x = tf.Variable(x)
    y = f(x)
    with tf.GradientTape() as tape:
        pass
    return tape.gradient(y, x)


def derivative_gradient_list(f, x):
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = f(v)
    return tape.gradient(y, [v])


def derivative_float16(f, x):
    x = tf.constant(x, tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x)


def derivative_int(f, x):
    x = tf.constant(int(x))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x)


def derivative_untrainable_variable(f, x):
    x = tf.Variable(x, trainable=False)  # a tape watches trainable variables only
    with tf.GradientTape() as tape:
        y = f(x)
    return tape.gradient(y, x)


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (derivative_untrainable_variable, "trainable=False, which a tape does not watch"),
        (derivative_gradient_list, "the tape answers with a list"),
        (derivative_float16, "came back as float16"),
        (derivative_int, "x has dtype int32"),
        (derivative_unwatched, "tape.watch"),
        (derivative_returns_value, "returned f(x)"),
        (derivative_swapped, "swapped (first what to differentiate"),
        (derivative_coarse_difference, "finite difference"),
        (derivative_central_difference, "did not come from tf.GradientTape"),
        (derivative_forward_mode, "did not come from tf.GradientTape"),
        (derivative_of_plain_number, "plain number"),
        (derivative_fixed_point, "expected 0.877583"),
        (derivative_outside_tape, "outside the `with` block"),
        (derivative_one_element, "has shape (1,)"),
        (derivative_jacobian_one_element, "has shape (1, 1)"),
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


def hand_math(w, b, x, t):
    import math

    y_hat = 1.0 / (1.0 + math.exp(-(w * x + b)))
    dl_dy = 2.0 * (y_hat - t)
    dy_dz = y_hat * (1.0 - y_hat)
    return dl_dy * dy_dz * x, dl_dy * dy_dz


def hand_array(w, b, x, t):
    return np.array(hand_numpy(w, b, x, t))


def hand_float32(w, b, x, t):
    y = tf.sigmoid(tf.constant(w, tf.float32) * x + b)
    g = 2.0 * (y - t) * y * (1.0 - y)
    return g * x, g


def hand_with_tf_gradients(w, b, x, t):
    @tf.function
    def grads():
        wv, bv = tf.constant(w), tf.constant(b)
        loss = (tf.sigmoid(wv * x + bv) - t) ** 2
        return tf.gradients(loss, [wv, bv])

    return tuple(float(g) for g in grads())


def hand_forward_mode(w, b, x, t):
    out = []
    for which in range(2):
        primals = [tf.constant(w), tf.constant(b)]
        with tf.autodiff.ForwardAccumulator(primals[which], tf.constant(1.0)) as acc:
            loss = (tf.sigmoid(primals[0] * x + primals[1]) - t) ** 2
        out.append(float(acc.jvp(loss)))
    return tuple(out)


@pytest.mark.parametrize("fn", [hand_numpy, hand_tf, hand_math, hand_array, hand_float32])
def test_chain_rule_accepts(fn, capsys):
    checks.tensors.chain_rule(fn)
    assert "[ok]" in capsys.readouterr().out


def hand_with_tape(w, b, x, t):
    wv, bv = tf.Variable(w, dtype=tf.float64), tf.Variable(b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = (tf.sigmoid(wv * x + bv) - t) ** 2
    return tuple(tape.gradient(loss, [wv, bv]))


def hand_z_not_y(w, b, x, t):
    z = w * x + b
    y = sigmoid(z)
    g = 2 * (y - t) * z * (1 - z)
    return g * x, g


def hand_linear(w, b, x, t):
    z = w * x + b
    return 2 * (z - t) * x, 2 * (z - t)


def hand_sigmoid_sign(w, b, x, t):
    y = 1 / (1 + np.exp(w * x + b))
    g = 2 * (y - t) * y * (1 - y)
    return g * x, g


def hand_dz_dw_is_w(w, b, x, t):
    g = hand_numpy(w, b, x, t)[1]
    return g * w, g


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda w, b, x, t: (2 * (sigmoid(w * x + b) - t) * x, 2 * (sigmoid(w * x + b) - t)), "sigmoid's derivative"),
        (lambda w, b, x, t: tuple(v / 2 for v in hand_numpy(w, b, x, t)), "factor 2"),
        (lambda w, b, x, t: tuple(-v for v in hand_numpy(w, b, x, t)), "sign is flipped"),
        (lambda w, b, x, t: (hand_numpy(w, b, x, t)[1], hand_numpy(w, b, x, t)[1]), "dz/dw = x"),
        (lambda w, b, x, t: (hand_numpy(w, b, x, t)[0], hand_numpy(w, b, x, t)[0]), "no factor x"),
        (lambda w, b, x, t: hand_numpy(w, b, x, t)[0], "expected a pair"),
        (lambda w, b, x, t: hand_numpy(w, b, x, t)[::-1], "wrong order"),
        (lambda w, b, x, t: (*hand_numpy(w, b, x, t), 0.0), "of length 3"),
        (lambda w, b, x, t: np.array([*hand_numpy(w, b, x, t), 0.0]), "shape (3,)"),
        (lambda w, b, x, t: tuple(np.full(3, v) for v in hand_numpy(w, b, x, t)), "dL_dw from hand_gradient"),
        (lambda w, b, x, t: np.stack([np.full(2, v) for v in hand_numpy(w, b, x, t)]), "shape (2, 2)"),
        (lambda w, b, x, t: {"w": 0.0, "b": 0.0}, "expected a pair"),
        (lambda w, b, x, t: None, "forget a `return`"),
        (hand_with_tape, "used TensorFlow's automatic differentiation"),
        (hand_with_tf_gradients, "used TensorFlow's automatic differentiation"),
        (hand_forward_mode, "used TensorFlow's automatic differentiation"),
        (hand_z_not_y, "not z * (1 - z)"),
        (hand_linear, "not w * x + b"),
        (hand_sigmoid_sign, "minus sign"),
        (hand_dz_dw_is_w, "not w"),
        (lambda w, b, x, t: tuple(np.array([v]) for v in hand_numpy(w, b, x, t)), "a scalar of shape ()"),
    ],
)
def test_chain_rule_rejects(fn, fragment, rejects):
    rejects(checks.tensors.chain_rule, fn, fragment=fragment)


def test_chain_rule_leaves_the_tape_as_it_was():
    before = (tf.GradientTape.gradient, tf.GradientTape.jacobian)
    with pytest.raises(CheckError):
        checks.tensors.chain_rule(hand_with_tape)
    assert (tf.GradientTape.gradient, tf.GradientTape.jacobian) == before


# --- TODO: one SGD step -------------------------------------------------------------


def sgd_assign_sub(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v.assign_sub(learning_rate * g)


def sgd_assign(variables, grads, learning_rate):
    for i in range(len(variables)):
        variables[i].assign(variables[i] - grads[i] * learning_rate)


def sgd_tf_ops(variables, grads, learning_rate):
    for i, v in enumerate(variables):
        v.assign(tf.subtract(v, tf.multiply(learning_rate, grads[i])))
    return variables


@pytest.mark.parametrize("fn", [sgd_assign_sub, sgd_assign, sgd_tf_ops])
def test_sgd_step_accepts(fn, capsys):
    checks.tensors.sgd_step(fn)
    assert "[ok]" in capsys.readouterr().out


def sgd_rebinds(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v = v - learning_rate * g


def sgd_first_only(variables, grads, learning_rate):
    variables[0].assign_sub(learning_rate * grads[0])


def sgd_replaces_list_entries(variables, grads, learning_rate):
    for i, g in enumerate(grads):
        variables[i] = variables[i] - learning_rate * g


def sgd_returns_new_values(variables, grads, learning_rate):
    return [v - learning_rate * g for v, g in zip(variables, grads)]


def sgd_numpy(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v.assign(v.numpy() - learning_rate * g.numpy())


def sgd_mispaired(variables, grads, learning_rate):
    for v, g in zip(variables, reversed(grads)):
        v.assign_sub(learning_rate * g)


def sgd_mean_gradient(variables, grads, learning_rate):
    for v, g in zip(variables, grads):
        v.assign(v - learning_rate * tf.reduce_mean(g))


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda vs, gs, lr: [v.assign_add(lr * g) for v, g in zip(vs, gs)], "uphill"),
        (lambda vs, gs, lr: [v.assign_sub(g) for v, g in zip(vs, gs)], "ignored the learning rate"),
        (lambda vs, gs, lr: [v.assign_sub(2 * lr * g) for v, g in zip(vs, gs)], "twice"),
        (lambda vs, gs, lr: [v.assign(-lr * g) for v, g in zip(vs, gs)], "replaced by -learning_rate * grad"),
        (lambda vs, gs, lr: [v.assign_sub(lr * g * g) for v, g in zip(vs, gs)], "expected"),
        (sgd_rebinds, "did not change"),
        (sgd_first_only, "variable 1 after one step (learning_rate=0.1) did not change, while variable 0 did"),
        (sgd_replaces_list_entries, "instead of updating the variables themselves"),
        (sgd_returns_new_values, "returned the new values"),
        (sgd_numpy, "inside tf.function"),
        (sgd_mispaired, "its own gradient"),
        (sgd_mean_gradient, "same amount"),
    ],
)
def test_sgd_step_rejects(fn, fragment, rejects):
    message = rejects(checks.tensors.sgd_step, fn, fragment=fragment)
    assert "{{node" not in message and "AssignSubVariableOp" not in message


# --- messages: plain text -----------------------------------------------------------


def test_failed_check_renders_as_plain_text():
    """IPython shows _render_traceback_ instead of a traceback: no terminal colour codes,
    also when the message quotes a library error that carried some."""
    from utils.checks._core import CheckError as Core

    assert Core("Keras said \x1b[1mno\x1b[0m")._render_traceback_() == ["CheckError: Keras said no"]


def test_short_error_drops_graph_node_text_and_colour():
    from utils.checks._core import short_error

    graph = ValueError(
        "in user code:\n\n    File \"x.py\", line 3, in step  *\n        v.assign_sub(g)\n\n"
        "    ValueError: Shapes must be equal rank, but are 1 and 0 for '{{node AssignSubVariableOp}} = "
        "AssignSubVariableOp[dtype=DT_FLOAT](AssignSubVariableOp/resource, mul)' with input shapes: [], [].\n"
    )
    assert short_error(graph) == "ValueError: Shapes must be equal rank, but are 1 and 0."
    keras_style = ValueError("Exception encountered when calling L.call().\n\n\x1b[1mYou cannot add new elements "
                             "of state\x1b[0m\n\nArguments received by L.call():")
    assert short_error(keras_style) == "ValueError: You cannot add new elements of state"
