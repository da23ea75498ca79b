"""Checks of notebook 02 accept any correct layer/model and reject plausible mistakes."""

from __future__ import annotations

import math

import keras
import pytest
import tensorflow as tf

from utils import checks
from utils.checks import CheckError, TodoNotDone




def dense_class(build_fn, call_fn):
    """A Dense-like layer class from a build and a call function (variants under test)."""

    class Layer(keras.layers.Layer):
        def __init__(self, n_output_nodes):
            super().__init__()
            self.n_output_nodes = n_output_nodes

        def build(self, input_shape):
            build_fn(self, int(input_shape[-1]), self.n_output_nodes)

        def call(self, x):
            return call_fn(self, x)

    return Layer


def w_dn(self, d, n):
    self.W = self.add_weight(shape=(d, n), initializer="glorot_uniform")
    self.b = self.add_weight(shape=(n,), initializer="zeros")


def w_dn_row_bias(self, d, n):
    self.W = self.add_weight(shape=(d, n), name="weight")
    self.b = self.add_weight(shape=(1, n), name="bias", initializer="random_normal")


def w_nd(self, d, n):
    self.W = self.add_weight(shape=(n, d))
    self.b = self.add_weight(shape=(n,))


def w_no_bias(self, d, n):
    self.W = self.add_weight(shape=(d, n))


def w_dd(self, d, n):
    self.W = self.add_weight(shape=(d, d))
    self.b = self.add_weight(shape=(n,))


CORRECT = [
    dense_class(w_dn, lambda s, x: tf.sigmoid(tf.matmul(x, s.W) + s.b)),
    dense_class(w_dn_row_bias, lambda s, x: keras.activations.sigmoid(tf.add(x @ s.W, s.b))),
    dense_class(w_dn, lambda s, x: 1.0 / (1.0 + tf.exp(-(keras.ops.matmul(x, s.W) + s.b)))),
]


@pytest.mark.parametrize("cls", CORRECT)
def test_dense_layer_accepts(cls, capsys):
    checks.layers.dense_layer(cls)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W)), "bias is missing"),
        (dense_class(w_no_bias, lambda s, x: tf.sigmoid(x @ s.W)), "No bias"),
        (dense_class(w_dn, lambda s, x: tf.nn.relu(x @ s.W + s.b)), "ReLU"),
        (dense_class(w_dn, lambda s, x: tf.tanh(x @ s.W + s.b)), "tanh"),
        (dense_class(w_dn, lambda s, x: x @ s.W + s.b), "no activation"),
        (dense_class(w_nd, lambda s, x: tf.sigmoid(x @ tf.transpose(s.W) + s.b)), "transposed"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ tf.transpose(s.W) + s.b)), "shape"),
        (dense_class(w_dd, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "No weight of shape (3, 4)"),
        (dense_class(w_nd, lambda s, x: tf.sigmoid(tf.matmul(x, s.W) + s.b)), "shape"),
    ],
)
def test_dense_layer_rejects(cls, fragment, rejects):
    message = rejects(checks.layers.dense_layer, cls, fragment=fragment)
    assert "Traceback" not in message and "function_node" not in message


def test_dense_layer_square_transposed_is_named():
    """With as many inputs as units, shapes cannot tell a transposed W: values must."""

    def build(self, d, n):
        self.W = self.add_weight(shape=(n, d))
        self.b = self.add_weight(shape=(n,))

    cls = dense_class(build, lambda s, x: tf.sigmoid(x @ tf.transpose(s.W) + s.b))
    # Non-square cases fail on shapes first; check the square diagnosis directly.
    with pytest.raises(CheckError, match="transposed"):
        checks.layers.dense_layer(cls)


def test_dense_layer_wrong_shape_message_is_about_shapes(rejects):
    message = rejects(checks.layers.dense_layer, dense_class(w_nd, lambda s, x: tf.sigmoid(tf.matmul(x, s.W) + s.b)), fragment="shape")
    assert "(3, 4)" in message or "(4, 3)" in message


def test_dense_layer_unfilled():
    def build(self, d, n):
        raise NotImplementedError("TODO 1")

    with pytest.raises(TodoNotDone, match="TODO 1 is not filled in yet"):
        checks.layers.dense_layer(dense_class(build, lambda s, x: x))


def test_dense_layer_rejects_non_layer(rejects):
    rejects(checks.layers.dense_layer, lambda n: object(), fragment="not a keras.layers.Layer")


# --- subclassed model ---------------------------------------------------------------


def model_class(make_layers, call_fn):
    class Model(keras.Model):
        def __init__(self, n_output_nodes):
            super().__init__()
            make_layers(self, n_output_nodes)

        def call(self, inputs):
            return call_fn(self, inputs)

    return Model


def one_dense(self, n):
    self.dense_layer = keras.layers.Dense(n)


def dense_in_sequential(self, n):
    self.body = keras.Sequential([keras.layers.Dense(units=n, kernel_initializer="ones", bias_initializer="ones")])


@pytest.mark.parametrize(
    "cls",
    [
        model_class(one_dense, lambda s, x: s.dense_layer(x)),
        model_class(dense_in_sequential, lambda s, x: s.body(x)),
    ],
)
def test_subclass_model_accepts(cls, capsys):
    checks.layers.subclass_model(cls)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (model_class(lambda s, n: setattr(s, "d", keras.layers.Dense(n, activation="relu")), lambda s, x: s.d(x)), "not x @ W + b"),
        (model_class(lambda s, n: setattr(s, "d", keras.layers.Dense(1)), lambda s, x: s.d(x)), "expected (5, 3)"),
        (model_class(one_dense, lambda s, x: x), "shape"),
        (model_class(one_dense, lambda s, x: tf.sigmoid(s.dense_layer(x))), "not x @ W + b"),
        (model_class(one_dense, lambda s, x: tf.zeros((tf.shape(x)[0], 3))), "does not depend on x"),
    ],
)
def test_subclass_model_rejects(cls, fragment, rejects):
    rejects(checks.layers.subclass_model, cls, fragment=fragment)


# --- identity flag ------------------------------------------------------------------


def identity_class(call_fn, activation="sigmoid"):
    class IdentityModel(keras.Model):
        def __init__(self, n_output_nodes):
            super().__init__()
            self.dense_layer = keras.layers.Dense(n_output_nodes, activation=activation)

        def call(self, inputs, isidentity=False):
            return call_fn(self, inputs, isidentity)

    return IdentityModel


@pytest.mark.parametrize(
    "cls",
    [
        identity_class(lambda s, x, flag: x if flag else s.dense_layer(x)),
        identity_class(lambda s, x, flag: tf.identity(x) if flag is True else s.dense_layer(x), activation=None),
    ],
)
def test_identity_model_accepts(cls, capsys):
    checks.layers.identity_model(cls)
    assert "[ok]" in capsys.readouterr().out


def identity_default_true():
    class IdentityModel(keras.Model):
        def __init__(self, n_output_nodes):
            super().__init__()
            self.dense_layer = keras.layers.Dense(n_output_nodes)

        def call(self, inputs, isidentity=True):
            return inputs if isidentity else self.dense_layer(inputs)

    return IdentityModel


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (identity_class(lambda s, x, flag: s.dense_layer(x) if flag else x), "went through the Dense layer"),
        (identity_class(lambda s, x, flag: s.dense_layer(x)), "went through the Dense layer"),
        (identity_class(lambda s, x, flag: x), "returned the inputs"),
        (identity_default_true(), "returned the inputs"),
        (identity_class(lambda s, x, flag: x if flag else tf.sigmoid(x[:, :2])), "not the output of the model's Dense"),
    ],
)
def test_identity_model_rejects(cls, fragment, rejects):
    rejects(checks.layers.identity_model, cls, fragment=fragment)


# --- convolution output length ------------------------------------------------------


def length_floor(n, k, s, padding):
    return (n - k) // s + 1 if padding == "valid" else (n + s - 1) // s


def length_ceil(n, k, s, padding):
    return math.floor((n - k) / s) + 1 if padding == "valid" else math.ceil(n / s)


@pytest.mark.parametrize("fn", [length_floor, length_ceil])
def test_conv_output_length_accepts(fn, capsys):
    checks.layers.conv_output_length(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda n, k, s, p: n - k + 1 if p == "valid" else n, "stride is ignored"),
        (lambda n, k, s, p: (n - k) // s if p == "valid" else math.ceil(n / s), "one short"),
        (lambda n, k, s, p: math.ceil((n - k) / s) + 1 if p == "valid" else math.ceil(n / s), "round down"),
        (lambda n, k, s, p: (n - k) // s + 1, "'same' pads"),
        (lambda n, k, s, p: (n - k) / s + 1 if p == "valid" else n / s, "whole number"),
        (lambda n, k, s, p: None, "None"),
    ],
)
def test_conv_output_length_rejects(fn, fragment, rejects):
    rejects(checks.layers.conv_output_length, fn, fragment=fragment)
