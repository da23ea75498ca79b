"""Checks of notebook 02 accept any correct layer/model and reject plausible mistakes."""

from __future__ import annotations

import math

import keras
import numpy as np
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


def w_initializer_objects(self, d, n):
    self.W = self.add_weight(name="kernel", shape=[d, n], initializer=keras.initializers.RandomNormal(),
                             trainable=True, dtype="float32")
    self.b = self.add_weight(name="bias", shape=[n], initializer=keras.initializers.Zeros())


def w_keras_names(self, d, n):
    """Keras's own attribute names, not the ones the TODO asks for (the next cell reads layer.W)."""
    self.kernel = self.add_weight(shape=(d, n))
    self.bias = self.add_weight(shape=(n,))


def w_wrapped_dense(self, d, n):
    """A keras.layers.Dense inside: the weights and the computation are not the learner's."""
    self.dense = keras.layers.Dense(n, activation="sigmoid")
    self.dense.build((None, d))


def w_trainable_false_bias(self, d, n):
    self.W = self.add_weight(shape=(d, n))
    self.b = self.add_weight(shape=(n,), initializer="zeros", trainable=False)


def w_trainable_false_kernel(self, d, n):
    self.W = self.add_weight(shape=(d, n), trainable=False)
    self.b = self.add_weight(shape=(n,), initializer="zeros")


def w_raw_variable_bias(self, d, n):
    self.W = self.add_weight(shape=(d, n))
    self.b = tf.Variable(tf.zeros((n,)))


def w_constant_bias(self, d, n):
    self.W = self.add_weight(shape=(d, n))
    self.b = tf.zeros((n,))


def w_float64(self, d, n):
    self.W = self.add_weight(shape=(d, n), dtype="float64")
    self.b = self.add_weight(shape=(n,), dtype="float64")


def w_hard_coded_features(self, d, n):
    self.W = self.add_weight(shape=(2, n))
    self.b = self.add_weight(shape=(n,))


CORRECT = [
    dense_class(w_dn, lambda s, x: tf.sigmoid(tf.matmul(x, s.W) + s.b)),
    dense_class(w_dn, lambda s, x: 1.0 / (1.0 + tf.exp(-(keras.ops.matmul(x, s.W) + s.b)))),
    dense_class(w_initializer_objects, lambda s, x: tf.nn.sigmoid(tf.nn.bias_add(tf.einsum("bd,dn->bn", x, s.W), s.b))),
    dense_class(w_dn, lambda s, x: keras.ops.sigmoid(tf.tensordot(x, s.W, axes=1) + s.b)),
    dense_class(w_dn, lambda s, x: tf.transpose(tf.sigmoid(tf.matmul(s.W, x, transpose_a=True, transpose_b=True) + s.b[:, None]))),
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
        (dense_class(w_trainable_false_bias, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "b (shape (4,)) was created with trainable=False"),
        (dense_class(w_trainable_false_kernel, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "W (shape (3, 4)) was created with trainable=False"),
        (dense_class(w_raw_variable_bias, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "self.b (shape (4,)) is a tf.Variable made directly"),
        (dense_class(w_constant_bias, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "self.b (shape (4,)) is a constant"),
        (dense_class(w_float64, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "W has dtype float64"),
        (dense_class(w_hard_coded_features, lambda s, x: tf.sigmoid(x @ s.W + s.b)), "Use input_shape[-1]"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(tf.matmul(s.W, x) + s.b)), "x first, W as it is"),
        (dense_class(w_dn, lambda s, x: tf.nn.softmax(x @ s.W + s.b)), "softmax is applied"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W) + s.b), "added after the sigmoid"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W - s.b)), "bias is subtracted"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W + s.b) * 2), "layer(x)` is wrong"),
        (dense_class(w_dn, lambda s, x: tf.constant(tf.sigmoid(x @ s.W + s.b).numpy())), "No gradient reaches W"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ tf.stop_gradient(s.W) + s.b)), "No gradient reaches W"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W + tf.stop_gradient(s.b))), "No gradient reaches b"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(tf.reshape(x @ s.W + s.b, (6, -1)))), "the problem is in call()"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(x @ s.W + s.b)[:, :2]), "expected (6, 4)"),
        (dense_class(w_keras_names, lambda s, x: tf.sigmoid(x @ s.kernel + s.bias)), "not stored as self.W"),
        (dense_class(w_wrapped_dense, lambda s, x: s.dense(x)), "holds another Keras layer"),
        # the MIT lab's (1, n) bias adds the same way, but Keras's Dense (cell 10 copies b into one) takes (n,)
        (dense_class(w_dn_row_bias, lambda s, x: keras.activations.sigmoid(tf.add(x @ s.W, s.b))), "b has shape (1, 4)"),
        (dense_class(w_dn, lambda s, x: tf.sigmoid(tf.cast(x, "float64") @ tf.cast(s.W, "float64")
                                                   + tf.cast(s.b, "float64"))), "float64"),
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


def dense_zero_kernel(self, n):
    self.dense_layer = keras.layers.Dense(n, activation="linear", kernel_initializer="zeros")


@pytest.mark.parametrize(
    "cls",
    [
        model_class(one_dense, lambda s, x: s.dense_layer(x)),
        model_class(dense_in_sequential, lambda s, x: s.body(x)),
        model_class(dense_zero_kernel, lambda s, x: s.dense_layer(x)),
        model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(units=n, activation=None)), lambda s, x: s.dense_layer(x)),
    ],
)
def test_subclass_model_accepts(cls, capsys):
    checks.layers.subclass_model(cls)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (model_class(lambda s, n: setattr(s, "d", keras.layers.Dense(n, activation="relu")), lambda s, x: s.d(x)), "is relu(x @ W + b)"),
        (model_class(lambda s, n: setattr(s, "d", keras.layers.Dense(1)), lambda s, x: s.d(x)), "expected (5, 3)"),
        (model_class(one_dense, lambda s, x: x), "returned its inputs unchanged"),
        (model_class(one_dense, lambda s, x: tf.sigmoid(s.dense_layer(x))), "is sigmoid(x @ W + b)"),
        (model_class(one_dense, lambda s, x: tf.zeros((tf.shape(x)[0], 3))), "no trainable weights"),
        (model_class(one_dense, lambda s, x: s.dense_layer(tf.zeros_like(x))), "does not depend on x"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, activation="softmax")), lambda s, x: s.dense_layer(x)), "is softmax"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, activation="tanh")), lambda s, x: s.dense_layer(x)), "is tanh"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, activation="gelu")), lambda s, x: s.dense_layer(x)), "not x @ W + b"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, use_bias=False)), lambda s, x: s.dense_layer(x)), "no bias"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, trainable=False)), lambda s, x: s.dense_layer(x)), "not trainable"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.Sequential([keras.layers.Dense(n), keras.layers.Dense(n)])),
                     lambda s, x: s.dense_layer(x)), "exactly a kernel"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(3)), lambda s, x: s.dense_layer(x)), "expected (5, 1)"),
        (model_class(one_dense, lambda s, x: s.dense_layer(x) * 2), "Expected x @ W + b"),
        (model_class(one_dense, lambda s, x: s.dense_layer(x)[:, :1]), "expected (5, 3)"),
        (model_class(lambda s, n: setattr(s, "dense_layer", keras.layers.Dense(n, dtype="float64")),
                     lambda s, x: s.dense_layer(x)), "returns float64"),
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
        (identity_class(lambda s, x, flag: tf.sigmoid(x) if flag else s.dense_layer(x)), "changed the values of x"),
        (identity_class(lambda s, x, flag: x[:, :1] if flag else s.dense_layer(x)), "must return x itself"),
        (identity_class(lambda s, x, flag: (x, s.dense_layer(x))), "Python tuple"),
        (identity_class(lambda s, x, flag: x.numpy() if flag else s.dense_layer(x)), "not a tensor"),
        (identity_class(lambda s, x, flag: np.asarray(x) if flag else s.dense_layer(x)), "not a tensor"),
        (identity_class(lambda s, x, flag: x if flag else keras.layers.Dense(2, activation="sigmoid")(x)),
         "a layer created inside call()"),
    ],
)
def test_identity_model_rejects(cls, fragment, rejects):
    rejects(checks.layers.identity_model, cls, fragment=fragment)


# --- convolution output length ------------------------------------------------------


def length_floor(n, k, s, padding):
    return (n - k) // s + 1 if padding == "valid" else (n + s - 1) // s


def length_ceil(n, k, s, padding):
    return math.floor((n - k) / s) + 1 if padding == "valid" else math.ceil(n / s)


def length_range(n, k, s, padding):
    return len(range(0, n - k + 1, s)) if padding == "valid" else len(range(0, n, s))


def length_numpy(n, k, s, padding):
    return int(np.floor((n - k) / s) + 1) if padding == "valid" else int(np.ceil(n / s))


def length_tensor(n, k, s, padding):
    return tf.constant((n - k) // s + 1 if padding == "valid" else -(-n // s))


def length_same_from_padding(n, k, s, padding):
    pad = 0 if padding == "valid" else max((math.ceil(n / s) - 1) * s + k - n, 0)
    return (n + pad - k) // s + 1


@pytest.mark.parametrize("fn", [length_floor, length_ceil, length_range, length_numpy, length_tensor, length_same_from_padding])
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
        (lambda n, k, s, p: (n - k) // s + 1 if p == "valid" else (n + 2 * (k // 2) - k) // s + 1, "even ones"),
        (lambda n, k, s, p: (n - k) // s + 1 if p == "valid" else (n + 2 * ((k - 1) // 2) - k) // s + 1, "even ones"),
        (lambda n, k, s, p: (n - k) // s + 1 if p == "valid" else round(n / s), "'same' rounds up"),
        (lambda n, k, s, p: (n - k) // s + 1 if p == "valid" else n // s, "'same' rounds up"),
        (lambda n, k, s, p: math.floor((n - k) / s) + 1 if p == "valid" else np.ceil(n / s), "a numpy.float64"),
        (lambda n, k, s, p: (n - k + 1) // s if p == "valid" else -(-n // s), "Keras gives"),
        (lambda n, k, s, p: ((n - k) // s + 1, 1), "expected a whole number"),
        (lambda n, k, s, p: str((n - k) // s + 1), "expected a whole number"),
    ],
)
def test_conv_output_length_rejects(fn, fragment, rejects):
    rejects(checks.layers.conv_output_length, fn, fragment=fragment)


def test_keras_error_reaches_the_learner_without_colour_codes(rejects):
    """Keras puts terminal colour codes in its errors (weights created in call())."""

    class LateWeights(keras.layers.Layer):
        def __init__(self, n_output_nodes):
            super().__init__()
            self.n_output_nodes = n_output_nodes

        def build(self, input_shape):
            self.W = self.add_weight(shape=(int(input_shape[-1]), self.n_output_nodes))

        def call(self, x):
            self.b = self.add_weight(shape=(self.n_output_nodes,))
            return tf.sigmoid(x @ self.W + self.b)

    message = rejects(checks.layers.dense_layer, LateWeights, fragment="Create every weight in build()")
    assert "\x1b" not in message
