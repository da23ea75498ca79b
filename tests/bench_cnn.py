"""Benchmark: training throughput of the MNIST CNN with ``fit`` and with the custom
``tf.GradientTape`` loop (both in ``tf.function``), and the test accuracy each reaches.

Run with ``make bench`` (or ``python tests/bench_cnn.py --epochs 6``); prints one JSON
object. Not collected by pytest: timings are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=60_000)
    args = parser.parse_args()

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

    # fit
    seeding.set_seed(0)
    with strategy.scope():
        model = models.mnist_cnn()
        model.compile(keras.optimizers.Adam(training.warmup_cosine(3e-3, steps)), loss_fn, metrics=["accuracy"])
    timer = training.epoch_timer()
    model.fit(dataset(), epochs=args.epochs, verbose=0, callbacks=[timer])
    fit = {"images_per_s": round(steps * args.batch_size / timer.seconds, 1),
           "train_seconds": round(timer.seconds, 2),
           "test_accuracy": round(training.accuracy(model, x_test, y_test), 4)}

    # custom loop, same model, seed, data order and schedule
    seeding.set_seed(0)
    with strategy.scope():
        model = models.mnist_cnn()
        optimizer = keras.optimizers.Adam(training.warmup_cosine(3e-3, steps))
        scaled = training.replica_loss(loss_fn, strategy)

        @tf.function
        def step_fn(x, y):
            with tf.GradientTape() as tape:
                loss = scaled(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        step = training.distribute_step(step_fn, strategy)
    distributed = strategy.experimental_distribute_dataset(dataset())
    watch = training.Stopwatch()
    for _ in range(args.epochs):
        with watch:
            for x, y in distributed:
                step(x, y)
    loop = {"images_per_s": round(steps * args.batch_size / watch.seconds, 1),
            "train_seconds": round(watch.seconds, 2),
            "test_accuracy": round(training.accuracy(model, x_test, y_test), 4)}

    print(json.dumps({
        "benchmark": "mnist_cnn training throughput",
        "epochs": args.epochs, "batch_size": args.batch_size, "train_images": len(x_train),
        "fit": fit, "custom_loop": loop,
        "custom_loop_vs_fit": round(loop["images_per_s"] / fit["images_per_s"], 3),
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(), "devices": hardware.describe(strategy),
        "date": time.strftime("%Y-%m-%d"),
    }, indent=1))


if __name__ == "__main__":
    main()
