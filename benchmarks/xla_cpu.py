"""Benchmark: milliseconds per training step with and without XLA (``jit_compile``) on this machine.

Keras turns XLA off on machines without an accelerator ("auto" resolves to no XLA on a
CPU). This script times a few training steps of the course's models both ways, to check
that choice for them: notebook 06's GAN (its own cells: builders, losses, ``GAN`` with the
lazy R1 step, its params), notebook 08's ViT (its own cells and vit_config) and the CNN of notebooks
03 and 08.

Usage (from the repository root)::

    python benchmarks/xla_cpu.py gan vit cnn --steps 120

Not collected by pytest: it trains for real (a few minutes per model here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(which: str, jit: bool):
    """The model ``which``, compiled with ``jit_compile=jit``, and its endless training batches."""
    import keras
    import tensorflow as tf
    from keras import layers

    from benchmarks.gan_variants import notebook_gan
    from benchmarks.vit_variants import notebook_classes, notebook_vit_config
    from utils import data, models, seeding, training

    (x_train, y_train), _ = data.load_mnist(normalize=True)
    seeding.set_seed(42)
    if which == "gan":
        ns = notebook_gan(42)
        params, latent_dim = ns["params"], ns["latent_dim"]  # the notebook's recipe
        model = ns["GAN"](ns["build_generator"](latent_dim), ns["build_discriminator"](), latent_dim,
                          r1_weight=params["r1_weight"], r1_every=params["r1_every"])
        steps, peak = params["rounds"] * params["steps_per_round"], params["learning_rate"]
        adam = {"beta_1": params["beta_1"], "beta_2": params["beta_2"]}
        model.compile(
            d_optimizer=keras.optimizers.Adam(training.warmup_cosine(peak, steps + steps // params["r1_every"]), **adam),
            g_optimizer=keras.optimizers.Adam(training.warmup_cosine(peak, steps), **adam))
        model.jit_compile = jit  # the GAN's compile() takes no jit_compile argument
        batches = (tf.data.Dataset.from_tensor_slices(x_train[..., None] * 2 - 1).repeat()
                   .batch(params["batch_size"], drop_remainder=True).prefetch(4))
        return model, batches
    if which == "vit":
        config = notebook_vit_config()  # the notebook's ViT and recipe
        model = notebook_classes()["VisionTransformer"](**config["model"])
        batch_size = config["batch_size"]
        optimizer = keras.optimizers.AdamW(config["learning_rate"], weight_decay=config["weight_decay"])
    else:
        model, batch_size, optimizer = models.mnist_cnn(), 128, keras.optimizers.Adam(1e-3)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit)
    shift = layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=42)
    batches = training.image_dataset(x_train[..., None].astype("float32"), y_train, batch_size, seed=42,
                                     augment=shift).repeat()
    return model, batches


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", choices=["gan", "vit", "cnn"])
    p.add_argument("--steps", type=int, default=120, help="timed steps, after 15 untimed (tracing, compiling)")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
    for which in args.models:
        for jit in (False, True):
            model, batches = build(which, jit)
            model.fit(batches, epochs=1, steps_per_epoch=15, verbose=0)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(batches, epochs=1, steps_per_epoch=args.steps, verbose=0)
            wall, cpu = (time.perf_counter() - wall) / args.steps, (time.process_time() - cpu) / args.steps
            print(f"{which:4s} XLA {'on ' if jit else 'off'}: {1000 * wall:6.1f} ms a step, {1000 * cpu:6.1f} ms of CPU",
                  flush=True)


if __name__ == "__main__":
    main()
