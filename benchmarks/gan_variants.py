"""Benchmark: notebook 06's GAN trained once, its generator scored several ways.

What the averaged generator is worth depends on two choices made after the training
recipe: the decay of the exponential moving average (EMA) of the generator's weights, and
the batch-norm statistics the averaged generator samples with (the notebook copies the
training generator's moving statistics; BigGAN's "standing statistics" recompute them
for the averaged weights from a large batch of noise). Both can be compared on one
training run: this script trains the notebook's own GAN (its builders, losses and ``GAN``
class are read from the notebook's cells; the notebook's schedule, batches and R1
settings), keeps one extra EMA per ``--decays`` value beside the notebook's own, and
scores every generator (the raw one and each average, with copied and with recomputed
statistics) on ``--sets`` sets of 5,000 samples, as the notebook's final measurement does.

Usage (from the repository root; prints one JSON object, appended to ``--json`` if given)::

    python benchmarks/gan_variants.py --seed 42
    python benchmarks/gan_variants.py --seed 42 --steps 1200 --decays 0.99   # a quick try
    python benchmarks/gan_variants.py --seed 42 --r1-weight 5 --decays       # another recipe
    python benchmarks/gan_variants.py --seed 42 --beta-2 0.999 --decays      # Keras's default beta_2
    python benchmarks/gan_variants.py --seed 42 --beta-1 0 --decays          # StyleGAN2's beta_1
    python benchmarks/gan_variants.py --seed 42 --d-lr-scale 2 --decays      # a faster discriminator (TTUR)

Not collected by pytest: it trains for real (about 15-20 minutes per run here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
NOTEBOOK = ROOT / "notebooks" / "06_gan.ipynb"


CELLS = ("latent_dim", "def build_discriminator", "cross_entropy", "def generator_loss", "class GAN", "params = {")


def notebook_gan(seed: int) -> dict:
    """Notebook 06's ``latent_dim``, builders, losses, ``GAN`` class and training ``params``,
    from its own cells (``run.seed``, which the class reads, set to ``seed``; ``params`` in the
    mode ``LABS_FAST`` selects, full by default; its cell's tracking is not started)."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers

    from benchmarks._common import notebook_namespace
    from utils import mode, normalization

    return notebook_namespace(
        NOTEBOOK, CELLS, {"keras": keras, "layers": layers, "tf": tf, "np": np, "normalization": normalization,
                          "mode": mode, "run": types.SimpleNamespace(seed=seed, track=lambda *a, **k: None)},
        {"latent_dim", "build_generator", "build_discriminator", "GAN", "params"})


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the notebook's)")
    p.add_argument("--r1-weight", type=float, default=None, help="R1's gamma (default: the notebook's)")
    p.add_argument("--beta-1", type=float, default=None, help="both Adams' beta_1 (default: the notebook's)")
    p.add_argument("--beta-2", type=float, default=None, help="both Adams' beta_2 (default: the notebook's)")
    p.add_argument("--d-lr-scale", type=float, default=1.0,
                   help="the discriminator's peak learning rate as a multiple of the generator's (TTUR; the notebook: 1)")
    p.add_argument("--decays", type=float, nargs="*", default=[0.9995, 0.9998],
                   help="EMA decays kept beside the notebook's own")
    p.add_argument("--sets", type=int, default=3, help="sets of 5,000 samples scored per generator")
    p.add_argument("--json", type=Path, default=None, help="append the result as one JSON line")
    return p.parse_args(argv)


def recompute_statistics(generator, latent_dim: int, n: int = 10_000) -> None:
    """Set every batch norm's moving statistics of ``generator`` to those of one batch of
    ``n`` noise vectors ("standing statistics"), by a training-mode call with momentum 0."""
    import keras

    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        generator(keras.random.normal((n, latent_dim), seed=12345), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    import warnings

    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks._common import record
    from utils import data, scoring, seeding, training

    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
    ns = notebook_gan(args.seed)
    latent_dim, decays, params = ns["latent_dim"], list(args.decays), ns["params"]
    # the notebook's recipe, where no switch changes it (recorded with the result)
    if args.steps is None:
        args.steps = params["rounds"] * params["steps_per_round"]
    if args.r1_weight is None:
        args.r1_weight = params["r1_weight"]
    if args.beta_1 is None:
        args.beta_1 = params["beta_1"]
    if args.beta_2 is None:
        args.beta_2 = params["beta_2"]

    class ManyAverages(ns["GAN"]):
        """The notebook's GAN, with one more averaged generator per extra decay."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.averages = [(d, keras.models.clone_model(self.generator)) for d in decays]
            for _, average in self.averages:
                average.set_weights(self.generator.get_weights())

        def update_ema(self):
            super().update_ema()
            for decay, model in self.averages:
                for average, current in zip(model.weights, self.generator.weights):
                    average.assign(decay * average + (1.0 - decay) * current if current.trainable else current)

    (x_train, _), (x_test, _) = data.load_mnist(normalize=True)
    n_scored = 5_000
    reference, _ = scoring.split_test_set(x_test[..., None], size=n_scored, seed=args.seed)
    scorer = scoring.Scorer(reference=reference)
    seeding.set_seed(args.seed)
    gan = ManyAverages(ns["build_generator"](latent_dim), ns["build_discriminator"](), latent_dim,
                       ema_decay=params["ema_decay"], r1_weight=args.r1_weight, r1_every=params["r1_every"])
    d_updates = args.steps + args.steps // params["r1_every"]
    peak, adam = params["learning_rate"], {"beta_1": args.beta_1, "beta_2": args.beta_2}
    gan.compile(d_optimizer=keras.optimizers.Adam(training.warmup_cosine(args.d_lr_scale * peak, d_updates), **adam),
                g_optimizer=keras.optimizers.Adam(training.warmup_cosine(peak, args.steps), **adam))
    real = (x_train[..., None] * 2.0 - 1.0)[: params["n_train"]]
    batches = (tf.data.Dataset.from_tensor_slices(real).shuffle(len(real), seed=args.seed).repeat()
               .batch(params["batch_size"], drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    started, cpu = time.perf_counter(), time.process_time()
    gan.fit(batches, epochs=params["rounds"], steps_per_epoch=args.steps // params["rounds"], verbose=2)
    train_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu

    def measure(generator) -> dict:
        sets = []
        for k in range(args.sets):  # the notebook's final noise vectors
            z = keras.random.normal((n_scored, latent_dim), seed=args.seed + 1 + 1000 * k)
            sets.append(scorer((generator(z, training=False).numpy() + 1) / 2))
        return {"score": round(float(np.mean([s.score for s in sets])), 4),
                "frechet": round(float(np.mean([s.frechet for s in sets])), 4),
                "confident": round(float(np.mean([s.confident for s in sets])), 4)}

    generators = {"raw": gan.generator, f"ema {params['ema_decay']}": gan.ema_generator,
                  **{f"ema {d}": model for d, model in gan.averages}}
    scores = {}
    for name, generator in generators.items():
        scores[f"{name}, copied statistics"] = measure(generator)
        if name != "raw":
            recompute_statistics(generator, latent_dim)
            scores[f"{name}, standing statistics"] = measure(generator)
    return record(args, {"scores": scores, "train_s": round(train_s, 1), "cpu_s": round(cpu_s, 1)}, indent=1)

if __name__ == "__main__":
    main()
