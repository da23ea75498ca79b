"""Benchmark: training throughput of the MNIST CNN with ``fit`` and with the custom
``tf.GradientTape`` loop (both in ``tf.function``), and the test accuracy each reaches.

Run with ``make bench`` (or ``python benchmarks/cnn_throughput.py --epochs 6``); prints one JSON
object. The two methods train side by side, an epoch each in turn, and the median
throughput over the timed epochs is reported. Not collected by pytest: timings are
measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per method; the first is not timed")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=60_000)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch traces and is not timed)")
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")

    import keras
    import tensorflow as tf

    from utils import data, hardware, models, seeding, training

    (x_train, y_train), (x_test, y_test) = data.load_mnist(normalize=True)
    x_train, y_train = x_train[: args.train_size, ..., None], y_train[: args.train_size]
    x_test = x_test[..., None]
    strategy = hardware.get_strategy()
    steps = args.epochs * (len(x_train) // args.batch_size)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def dataset():
        return training.image_dataset(x_train, y_train, args.batch_size, seed=0)

    # Both models train side by side, one epoch each in turn, so that slow spells of a
    # shared machine hit both alike; epoch 1 (tracing) is not timed.
    seeding.set_seed(0)
    with strategy.scope():
        fit_model = models.mnist_cnn()
        fit_model.compile(keras.optimizers.Adam(training.warmup_cosine(3e-3, steps)), loss_fn, metrics=["accuracy"])
    seeding.set_seed(0)
    with strategy.scope():
        loop_model = models.mnist_cnn()
        optimizer = keras.optimizers.Adam(training.warmup_cosine(3e-3, steps))
        scaled = training.replica_loss(loss_fn, strategy)

        @tf.function
        def step_fn(x, y):
            with tf.GradientTape() as tape:
                loss = scaled(y, loop_model(x, training=True))
            grads = tape.gradient(loss, loop_model.trainable_variables)
            optimizer.apply_gradients(zip(grads, loop_model.trainable_variables))
            return loss

        step = training.distribute_step(step_fn, strategy)
    fit_ds = dataset()
    loop_ds = strategy.experimental_distribute_dataset(dataset())
    images = (len(x_train) // args.batch_size) * args.batch_size
    fit_rates, loop_rates = [], []
    for epoch in range(args.epochs):
        timer = training.epoch_timer()
        fit_model.fit(fit_ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0, callbacks=[timer])
        watch = training.Stopwatch()
        with watch:
            for x, y in loop_ds:
                step(x, y)
        if epoch > 0:
            fit_rates.append(images / timer.seconds)
            loop_rates.append(images / watch.seconds)

    def summary(rates, model):
        return {"images_per_s_median": round(statistics.median(rates), 1),
                "images_per_s_per_epoch": [round(r, 1) for r in rates],
                "test_accuracy": round(training.accuracy(model, x_test, y_test), 4)}

    fit, loop = summary(fit_rates, fit_model), summary(loop_rates, loop_model)
    print(json.dumps({
        "benchmark": "mnist_cnn training throughput",
        "epochs": args.epochs, "batch_size": args.batch_size, "train_images": len(x_train),
        "fit": fit, "custom_loop": loop,
        "custom_loop_vs_fit": round(loop["images_per_s_median"] / fit["images_per_s_median"], 3),
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(), "devices": hardware.describe(strategy),
        "date": time.strftime("%Y-%m-%d"),
    }, indent=1))


if __name__ == "__main__":
    main()
