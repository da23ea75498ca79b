"""Checks of notebook 03 accept any consistent, reasonable answer and reject the
classic mistakes: softmax with from_logits=True (and the reverse), a regression loss,
raw pixels, a step that never applies gradients or applies them to the wrong
variables, a model with the wrong output size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils.checks import cnn
from utils.checks import TodoNotDone




@pytest.mark.parametrize(
    "normalize",
    [
        lambda a: (a.astype("float32") / 255)[..., None],
        lambda a: np.expand_dims((a / 255.0).astype("float64"), -1),
        lambda a: ((a.astype("float32") / 255 - 0.1307) / 0.3081)[..., None],
        lambda a: tf.cast(a, tf.float32)[..., tf.newaxis] / 255.0,
    ],
)
def test_normalized_accepts(normalize, capsys):
    cnn.normalized_images(normalize)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "normalize, fragment",
    [
        (lambda a: a[..., None], "dtype uint8"),
        (lambda a: a[..., None].astype("float32"), "not normalised"),
        (lambda a: a.astype("float32") / 255, "channel axis"),
        (lambda a: np.zeros((len(a), 28, 28, 1), "float32"), "constant"),
        (lambda a: (a.astype("float32") / 255)[..., None][::-1].copy() * 0 + np.random.rand(len(a), 28, 28, 1), "order"),
        (lambda a: (a.astype("float32") / 255).reshape(len(a), 784), "expected (512, 28, 28, 1)"),
    ],
)
def test_normalized_rejects(normalize, fragment, rejects):
    rejects(cnn.normalized_images, normalize, fragment=fragment)


def test_normalized_unfilled():
    def normalize(images):
        raise NotImplementedError("TODO 1")

    with pytest.raises(TodoNotDone, match="TODO 1"):
        cnn.normalized_images(normalize)


# --- models -------------------------------------------------------------------------


def mlp(*, softmax=False, hidden_activation="relu", out=10, conv=False, flatten=True):
    def build():
        stack = [keras.Input((28, 28, 1))]
        if conv:
            stack.append(layers.Conv2D(8, 3))
        if flatten:
            stack.append(layers.Flatten())
        stack += [layers.Dense(32, activation=hidden_activation), layers.Dense(out, activation="softmax" if softmax else None)]
        return keras.Sequential(stack)

    return build


def convnet(*, softmax=False, out=10, flatten=True):
    def build():
        stack = [keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D()]
        stack += [layers.Flatten()] if flatten else []
        stack += [layers.Dense(out, activation="softmax" if softmax else None)]
        return keras.Sequential(stack)

    return build


def functional_convnet():
    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, layers.Dense(10)(h))


@pytest.mark.parametrize("build", [mlp(), mlp(softmax=True), mlp(hidden_activation="gelu")])
def test_baseline_accepts(build, capsys):
    cnn.baseline_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (mlp(out=1), "expected (4, 10)"),
        (mlp(hidden_activation=None), "linear"),
        (mlp(conv=True), "fully connected"),
        (mlp(flatten=False), "Flatten"),
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10)]), "hidden Dense"),
        (lambda: keras.Sequential([keras.Input((784,)), layers.Dense(32, "relu"), layers.Dense(10)]), "(28, 28, 1)"),
    ],
)
def test_baseline_rejects(build, fragment, rejects):
    message = rejects(cnn.baseline_model, build, fragment=fragment)
    assert "Traceback" not in message


@pytest.mark.parametrize("build", [convnet(), convnet(softmax=True), functional_convnet])
def test_cnn_accepts(build, capsys):
    cnn.cnn_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (convnet(out=9), "expected (4, 10)"),
        (convnet(flatten=False), "Flatten"),
        (mlp(), "No Conv2D"),
        (lambda: None, "expected a keras.Model"),
    ],
)
def test_cnn_rejects(build, fragment, rejects):
    rejects(cnn.cnn_model, build, fragment=fragment)


# --- compile wiring -----------------------------------------------------------------


def compiler(loss, metrics=("accuracy",)):
    def compile_model(model, learning_rate):
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=list(metrics))

    return compile_model


@pytest.mark.parametrize(
    "compile_model, build",
    [
        (compiler(keras.losses.SparseCategoricalCrossentropy(from_logits=True)), convnet()),
        (compiler("sparse_categorical_crossentropy"), convnet(softmax=True)),
        (compiler(keras.losses.SparseCategoricalCrossentropy(), ["sparse_categorical_accuracy"]), mlp(softmax=True)),
    ],
)
def test_compile_accepts(compile_model, build, capsys):
    cnn.compile_wiring(compile_model, build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "compile_model, build, fragment",
    [
        (compiler(keras.losses.SparseCategoricalCrossentropy(from_logits=True)), convnet(softmax=True), "second softmax"),
        (compiler("sparse_categorical_crossentropy"), convnet(), "from_logits=True"),
        (compiler("mse"), convnet(), "regression loss"),
        (compiler(keras.losses.MeanSquaredError()), convnet(softmax=True), "regression loss"),
        (compiler(keras.losses.mean_absolute_error), convnet(), "regression loss"),
        (compiler("categorical_crossentropy"), convnet(softmax=True), "one-hot"),
        (compiler(keras.losses.CategoricalCrossentropy(from_logits=True)), convnet(), "one-hot"),
        (compiler(keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=()), convnet(), "accuracy"),
        (lambda model, learning_rate: None, convnet(), "not compiled"),
    ],
)
def test_compile_rejects(compile_model, build, fragment, rejects):
    rejects(cnn.compile_wiring, compile_model, build, fragment=fragment)


# --- the custom training step -------------------------------------------------------


def step_factory(*, apply=True, training=True, variables=lambda m: m.trainable_variables, sign=1.0, returns=True,
                 use_function=True, new_api=False):
    def make_train_step(model, optimizer, loss_fn):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=training))
                objective = sign * loss
            grads = tape.gradient(objective, model.trainable_variables)
            if apply:
                if new_api:
                    optimizer.apply(grads, variables(model))
                else:
                    optimizer.apply_gradients(zip(grads, variables(model)))
            return loss if returns else None

        return tf.function(step) if use_function else step

    return make_train_step


@pytest.mark.parametrize("factory", [step_factory(), step_factory(use_function=False, new_api=True)])
def test_train_step_accepts(factory, capsys):
    cnn.train_step(factory)
    assert "[ok]" in capsys.readouterr().out


def test_train_step_accepts_trainable_weights_spelling(capsys):
    cnn.train_step(step_factory(variables=lambda m: m.trainable_weights))
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "factory, fragment",
    [
        (step_factory(apply=False), "have not changed"),
        (step_factory(variables=lambda m: list(reversed(m.trainable_variables))), "train_step(x, y) raised"),
        (step_factory(variables=lambda m: m.trainable_variables[:2] + m.trainable_variables[2:][::-1]), "raised"),
        (step_factory(training=False), "training=True"),
        (step_factory(sign=-1.0), "uphill"),
        (step_factory(returns=False), "returned None"),
        (lambda m, o, l: None, "must return the step function"),
    ],
)
def test_train_step_rejects(factory, fragment, rejects):
    rejects(cnn.train_step, factory, fragment=fragment)


def test_train_step_rejects_gradients_to_a_subset(rejects):
    def make_train_step(model, optimizer, loss_fn):
        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            variables = model.layers[-1].trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        return step

    rejects(cnn.train_step, make_train_step, fragment="never changed")
