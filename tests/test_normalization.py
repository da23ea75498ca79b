"""utils.normalization: the same batch norm forward, and second derivatives that match
finite differences (Keras's own batch norm on TensorFlow drops part of them)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.normalization import TwiceDifferentiableBatchNorm


def small_critic(norm: type) -> keras.Model:
    """Dense -> tanh -> Dense -> batch norm -> tanh -> Dense(1), in float64 (smooth: no kinks for
    finite differences). The nonlinearity before the batch norm matters: with only linear layers
    between the input and the batch norm, the dropped terms sum to zero over the batch."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((5,), dtype="float64"), keras.layers.Dense(8, dtype="float64"),
                             keras.layers.Activation("tanh", dtype="float64"), keras.layers.Dense(8, dtype="float64"),
                             norm(dtype="float64"), keras.layers.Activation("tanh", dtype="float64"),
                             keras.layers.Dense(1, dtype="float64")])


def r1(model: keras.Model, x: tf.Tensor) -> tf.Tensor:
    """The R1 penalty: mean over the batch of the squared input-gradient of the output."""
    with tf.GradientTape() as inner:
        inner.watch(x)
        total = tf.reduce_sum(model(x, training=True))
    return tf.reduce_mean(tf.reduce_sum(tf.square(inner.gradient(total, x)), axis=1))


def penalty_gradient(model: keras.Model, x: tf.Tensor) -> np.ndarray:
    kernel = model.layers[0].kernel
    with tf.GradientTape() as tape:
        penalty = r1(model, x)
    return tape.gradient(penalty, kernel).numpy()


def finite_differences(model: keras.Model, x: tf.Tensor, h: float = 1e-6) -> np.ndarray:
    kernel = model.layers[0].kernel
    start = kernel.numpy()
    out = np.zeros_like(start)
    for idx in np.ndindex(*start.shape):
        for sign in (1, -1):
            moved = start.copy()
            moved[idx] += sign * h
            kernel.assign(moved)
            out[idx] += sign * float(r1(model, x)) / (2 * h)
    kernel.assign(start)
    return out


X = tf.constant(np.random.default_rng(0).normal(size=(16, 5)))


def test_forward_and_moving_averages_match_keras() -> None:
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(32, 6, 6, 4)).astype("float32")
    ours, theirs = TwiceDifferentiableBatchNorm(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), atol=1e-5)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-5)


def test_first_derivatives_match_keras() -> None:
    x = tf.constant(np.random.default_rng(3).normal(size=(16, 5)))
    grads = []
    for norm in (TwiceDifferentiableBatchNorm, keras.layers.BatchNormalization):
        model = small_critic(norm)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(model(x, training=True)))
        grads.append(tape.gradient(loss, model.layers[0].kernel).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_gradient_penalty_matches_finite_differences() -> None:
    model = small_critic(TwiceDifferentiableBatchNorm)
    np.testing.assert_allclose(penalty_gradient(model, X), finite_differences(model, X), rtol=1e-5, atol=1e-8)


def test_keras_batch_norm_gets_the_penalty_gradient_wrong() -> None:
    """Why the layer exists. If this starts failing, TensorFlow's batch statistics have
    become twice differentiable and notebook 06 could go back to keras.layers.BatchNormalization."""
    model = small_critic(keras.layers.BatchNormalization)
    exact = finite_differences(model, X)
    error = np.abs(penalty_gradient(model, X) - exact).max() / np.abs(exact).max()  # 3e-3 here; ours: < 1e-8
    assert error > 1e-4, f"Keras's batch norm now gives the R1 gradient to {error:.1e}: the workaround is no longer needed"


def test_masked_inputs_use_keras_path() -> None:
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    ours, theirs = TwiceDifferentiableBatchNorm(), keras.layers.BatchNormalization()
    np.testing.assert_allclose(ours(x, training=True, mask=mask), theirs(x, training=True, mask=mask), atol=1e-6)


def test_round_trips_through_config() -> None:
    layer = TwiceDifferentiableBatchNorm(momentum=0.8, epsilon=1e-3)
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(again) is TwiceDifferentiableBatchNorm and again.momentum == pytest.approx(0.8)
