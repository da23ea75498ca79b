"""Training helpers, and the CNN's training under MirroredStrategy over two logical CPUs
giving the same weights as on one device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import nbformat
import numpy as np
import pytest

from utils import ROOT, models, training


def test_image_dataset_shapes_and_shuffling():
    x = np.arange(10 * 4, dtype="float32").reshape(10, 2, 2, 1)
    y = np.arange(10)
    batches = list(training.image_dataset(x, y, batch_size=4, seed=1))
    assert [tuple(b[0].shape) for b in batches] == [(4, 2, 2, 1), (4, 2, 2, 1)]  # ragged batch dropped
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert len(set(seen)) == 8 and not np.array_equal(seen, np.arange(8))
    ordered = list(training.image_dataset(x, y, batch_size=4, shuffle=False))
    assert [len(b[1]) for b in ordered] == [4, 4, 2]
    with pytest.raises(ValueError, match="labels"):
        training.image_dataset(x, y[:3], batch_size=4)


def test_image_dataset_augmentation_is_fresh_each_epoch_and_reproducible_under_a_seed():
    x = np.zeros((64, 28, 28, 1), dtype="float32")
    x[:, 10:18, 10:18] = 1.0  # a centred square, so a shift shows
    y = np.arange(64)

    def two_epochs():
        shift = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=3)
        ds = training.image_dataset(x, y, batch_size=8, seed=1, augment=shift)
        return [np.concatenate([b[0].numpy() for b in ds]) for _ in range(2)]

    first, second = two_epochs()
    assert not np.array_equal(first, x) and first.shape == x.shape  # images moved, shapes kept
    assert not np.array_equal(first, second)  # new shifts every epoch
    again = two_epochs()
    np.testing.assert_array_equal(first, again[0])  # same seed, same shifts, run after run
    np.testing.assert_array_equal(second, again[1])


def test_replica_loss_divides_only_losses_that_do_not_scale_themselves():
    class Two:
        num_replicas_in_sync = 2

    class One:
        num_replicas_in_sync = 1

    assert training.replica_loss(lambda a, b: 3.0, Two())(None, None) == 1.5
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert training.replica_loss(keras_loss, Two()) is keras_loss  # Keras scales it itself
    summed = keras.losses.SparseCategoricalCrossentropy(reduction="sum")
    assert training.replica_loss(summed, Two()) is not summed
    plain = lambda a, b: 3.0  # noqa: E731
    assert training.replica_loss(plain, One()) is plain


def test_accuracy_with_logits_and_probabilities():
    x = np.eye(3, dtype="float32")
    logits_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, use_bias=False, kernel_initializer="identity")])
    probs_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, use_bias=False, kernel_initializer="identity", activation="softmax")])
    for model in (logits_model, probs_model):
        assert training.accuracy(model, x, np.array([0, 1, 2])) == 1.0
        assert training.accuracy(model, x, np.array([1, 1, 2])) == pytest.approx(2 / 3)
        np.testing.assert_allclose(training.predict_probabilities(model, x).sum(axis=1), 1.0, rtol=1e-6)


def test_warmup_cosine_shape():
    schedule = training.warmup_cosine(1e-3, 100)
    values = [float(schedule(s)) for s in (0, 5, 10, 55, 100)]
    assert values[0] == 0.0
    assert values[1] == pytest.approx(0.5e-3, rel=1e-5)  # halfway through the warm-up
    assert values[2] == pytest.approx(1e-3, rel=1e-5)  # the peak
    assert values[3] == pytest.approx(0.5e-3, rel=1e-5)  # halfway down the cosine
    assert values[4] == pytest.approx(0.0, abs=1e-9)  # zero at the last step
    with pytest.raises(ValueError):
        training.warmup_cosine(1e-3, 1)


def test_epoch_timer_excludes_validation():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    timer = training.epoch_timer()
    model.fit(np.zeros((8, 2)), np.zeros(8), epochs=2, verbose=0, callbacks=[timer], validation_data=(np.zeros((4, 2)), np.zeros(4)))
    assert 0 < timer.seconds < 30


def test_notebook_cnn_is_utils_models_mnist_cnn():
    """The CNN written out in notebook 03 and utils.models.mnist_cnn stay identical."""
    nb = nbformat.read(ROOT / "notebooks" / "03_cnn_mnist.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.cell_type == "code" and "def build_cnn" in c.source)
    namespace: dict = {"keras": keras, "layers": keras.layers}
    exec(source, namespace)  # noqa: S102 - our own notebook's code

    def config(model):
        return [(type(l).__name__, {k: v for k, v in l.get_config().items() if k != "name"}) for l in model.layers]

    assert config(namespace["build_cnn"]()) == config(models.mnist_cnn())


MIRRORED = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from utils import hardware, models, seeding, training

    (x, y) = (np.random.default_rng(0).random((256, 28, 28, 1), dtype=np.float32), np.random.default_rng(1).integers(0, 10, 256))

    def make_step(model, optimizer, loss_fn):
        @tf.function
        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return step

    def build(strategy):
        seeding.set_seed(0)
        def sync(layer):
            config = layer.get_config()
            if isinstance(layer, keras.layers.BatchNormalization):
                config["synchronized"] = True  # global-batch statistics, as on one device
            if isinstance(layer, keras.layers.Dropout):
                config["rate"] = 0.0  # compare the arithmetic, not random masks
            return layer.__class__.from_config(config)

        with strategy.scope():
            model = keras.models.clone_model(models.mnist_cnn(), clone_function=sync)
            optimizer = keras.optimizers.SGD(0.05)
        return model, optimizer

    def custom(strategy, hand_written=False):
        model, optimizer = build(strategy)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if hand_written:  # a plain function: replica_loss must divide it by the replicas
            loss_fn = lambda yb, logits: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, logits, from_logits=True))
        step = training.distribute_step(make_step(model, optimizer, training.replica_loss(loss_fn, strategy)), strategy)
        ds = strategy.experimental_distribute_dataset(training.image_dataset(x, y, 64, shuffle=False))
        losses = [float(step(a, b)) for a, b in ds]
        return model.get_weights(), losses

    def fit(strategy):
        model, optimizer = build(strategy)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(training.image_dataset(x, y, 64, shuffle=False), epochs=1, verbose=0)
        return model.get_weights()

    one, two = tf.distribute.get_strategy(), hardware.get_strategy(devices=["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    (w1, l1), (w2, l2) = custom(one), custom(two)
    (w3, l3) = custom(two, hand_written=True)
    f1, f2 = fit(one), fit(two)
    diff = lambda a, b: max(float(np.max(np.abs(p - q))) for p, q in zip(a, b))
    print(json.dumps({"custom_weights": diff(w1, w2), "custom_loss": max(abs(p - q) for p, q in zip(l1, l2)),
                      "fit_weights": diff(f1, f2), "custom_vs_fit_one_device": diff(w1, f1),
                      "hand_written_weights": diff(w1, w3), "hand_written_loss": max(abs(p - q) for p, q in zip(l1, l3))}))
    """
)


@pytest.mark.slow
def test_cnn_training_under_mirrored_strategy_matches_one_device():
    """Four steps of the notebook's CNN under MirroredStrategy over two logical CPUs give
    the same weights and losses as on one device, both for the custom loop (with
    replica_loss + distribute_step) and for fit. Batch norm is switched to
    ``synchronized=True`` for the comparison (by default each replica normalises its own
    half batch, as on real GPUs, which is a different -- equally valid -- computation)
    and dropout to 0. Tolerance: 1e-4 on losses, 1e-3 on weights (float32 round-off:
    the replicas' gradients are summed in a different order)."""
    done = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    diffs = json.loads(done.stdout.strip().splitlines()[-1])
    print(diffs)
    assert diffs["custom_vs_fit_one_device"] < 1e-4, diffs
    assert diffs["custom_loss"] < 1e-4 and diffs["custom_weights"] < 1e-3 and diffs["fit_weights"] < 1e-3, diffs
    assert diffs["hand_written_loss"] < 1e-4 and diffs["hand_written_weights"] < 1e-3, diffs


def _counting_model():
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.zeros((1, 1), "float32")])
    return model


def test_early_stopping_loop_restores_the_best_weights_in_memory(capsys):
    from utils import training

    model = _counting_model()

    def step(x, y):  # each step moves the weight by one, so the weight names the step
        model.set_weights([model.get_weights()[0] + 1])
        return 1.0

    scores = {5: 3.0, 10: 1.0, 15: 2.0, 20: 2.5, 25: 0.5}
    result = training.train_with_early_stopping(
        step, ((None, None) for _ in range(25)), model, lambda: scores[int(model.get_weights()[0][0, 0])],
        num_steps=25, eval_every=5, patience=2)
    assert (result.steps, result.best_step, result.stopped_early) == (20, 10, True)
    assert float(model.get_weights()[0][0, 0]) == 10.0  # the weights of step 10, not 20
    assert [h["step"] for h in result.history] == [5, 10, 15, 20]
    assert "restored the weights of step 10" in capsys.readouterr().out


def test_early_stopping_loop_evaluates_the_last_step_and_rejects_empty_input():
    from utils import training

    model = _counting_model()
    seen = []
    result = training.train_with_early_stopping(
        lambda x, y: 2.0, ((None, None) for _ in range(7)), model, lambda: seen.append(1) or float(len(seen)),
        num_steps=7, eval_every=5, patience=3, train_metric=lambda loss: loss / 2)
    assert [h["step"] for h in result.history] == [5, 7] and result.history[0]["train"] == 1.0
    assert not result.stopped_early and result.best_step == 5
    with pytest.raises(ValueError, match="nothing to train on"):
        training.train_with_early_stopping(lambda x, y: 0.0, iter([]), model, lambda: 0.0,
                                           num_steps=3, eval_every=1, patience=1)
