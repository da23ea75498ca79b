"""Benchmark: notebook 08's ViT (or its CNN) trained alone on MNIST, with switches.

Notebook 08 trains four models in one run, so trying a ViT configuration there costs the
whole notebook (about 20 minutes on a 2-core CPU). This script trains only the image
model, the way the notebook does (``training.image_dataset`` shuffled from the seed,
AdamW with warm-up and cosine decay for the ViT, Adam for the CNN, all 10,000 test
digits scored, both on notebook 03's shifted digits), with the switches the notebook's
``vit_config`` holds plus the shift (``--shift 0`` trains on the digits as they are). The
defaults are the notebook's: the ViT's classes and its ``vit_config`` (epochs, batch, learning
rate, weight decay, size) are read from the notebook's own cells, so the benchmark trains
exactly the model and recipe the lesson teaches.

Usage (from the repository root; prints one JSON object, appended to ``--json`` if given)::

    python benchmarks/vit_variants.py --seed 42                       # notebook 08's ViT
    python benchmarks/vit_variants.py --seed 42 --epochs 7 --dropout 0.1 --shift 0   # ... as it was on 2026-12-01
    python benchmarks/vit_variants.py --model cnn --seed 42           # notebook 08's CNN

Not collected by pytest: it trains for real (about 5 minutes per run here).
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
NOTEBOOK = ROOT / "notebooks" / "08_transformers.ipynb"


def notebook_classes(path: Path = NOTEBOOK) -> dict:
    """``EncoderBlock`` and ``VisionTransformer`` as notebook 08 defines them (its solution cells)."""
    import keras
    from keras import layers, ops

    from benchmarks._common import notebook_namespace

    return notebook_namespace(path, ("class EncoderBlock", "class VisionTransformer"),
                              {"keras": keras, "layers": layers, "ops": ops}, {"EncoderBlock", "VisionTransformer"})


def notebook_vit_config(path: Path = NOTEBOOK) -> dict:
    """Notebook 08's ``vit_config`` (the ViT's recipe and the epochs both image models train),
    evaluated from its own cell in the mode ``LABS_FAST`` selects (full by default)."""
    import ast

    import nbformat

    from utils import mode

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "vit_config = dict(" in cell.source:
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["vit_config"]:
                    return eval(compile(ast.Expression(node.value), f"{path.name}:vit_config", "eval"),  # noqa: S307
                                {"mode": mode})
    raise SystemExit(f"{path} has no cell defining vit_config: has the notebook been restructured?")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["vit", "cnn"], default="vit")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=None, help="default: the notebook's num_epochs")
    p.add_argument("--batch", type=int, default=None, help="default: the notebook's (its vit_config; CNN 128)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the notebook's; CNN 3e-3)")
    p.add_argument("--wd", type=float, default=None, help="the ViT's AdamW weight decay (default: the notebook's)")
    p.add_argument("--warmup", type=float, default=None, help="share of steps warming up (ViT 0.05, CNN 0.1)")
    # the ViT's size; each default: the notebook's vit_config["model"]
    p.add_argument("--patch", type=int, default=None)
    p.add_argument("--d-model", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--ff", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--shift", type=float, default=0.08, help="RandomTranslation factor (0: no shifts)")
    p.add_argument("--train-size", type=int, default=60_000, help="train on the first N images (a quick try)")
    p.add_argument("--json", type=Path, default=None, help="append the result as one JSON line")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    import warnings

    import keras

    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")  # a tf.data pipeline shuffles itself

    from benchmarks._common import record
    from utils import data, models, seeding, training

    vit = args.model == "vit"
    config = notebook_vit_config()
    size = {"patch": "patch_size", "d_model": "d_model", "heads": "num_heads", "ff": "ff_dim", "layers": "num_layers",
            "dropout": "dropout"}
    for switch, key in size.items():  # the recorded switches are the values trained with
        if getattr(args, switch) is None:
            setattr(args, switch, config["model"][key])
    args.epochs = args.epochs or config["num_epochs"]
    args.wd = config["weight_decay"] if args.wd is None else args.wd
    batch = args.batch or (config["batch_size"] if vit else 128)
    lr = args.lr or (config["learning_rate"] if vit else 3e-3)
    warmup = args.warmup if args.warmup is not None else (0.05 if vit else 0.1)
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    x_train, x_test = (x[..., None].astype("float32") / 255.0 for x in (x_train, x_test))
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    steps = args.epochs * (len(x_train) // batch)
    seeding.set_seed(args.seed)
    if vit:
        model = notebook_classes()["VisionTransformer"](
            patch_size=args.patch, d_model=args.d_model, num_heads=args.heads, ff_dim=args.ff,
            num_layers=args.layers, dropout=args.dropout)
        optimizer = keras.optimizers.AdamW(training.warmup_cosine(lr, steps, warmup), weight_decay=args.wd)
    else:
        model = models.mnist_cnn()
        optimizer = keras.optimizers.Adam(training.warmup_cosine(lr, steps, warmup))
    model.compile(optimizer=optimizer, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    shift = (keras.layers.RandomTranslation(args.shift, args.shift, fill_mode="constant", seed=args.seed)
             if args.shift else None)
    timer = training.epoch_timer()
    started = time.process_time()
    model.fit(training.image_dataset(x_train, y_train, batch, seed=args.seed, augment=shift),
              epochs=args.epochs, callbacks=[timer], verbose=2)
    return record(args, {"batch": batch, "lr": lr, "warmup": warmup, "params": model.count_params(),
                         "test_accuracy": training.accuracy(model, x_test, y_test),
                         "train_s": round(timer.seconds, 1), "cpu_s": round(time.process_time() - started, 1)})

if __name__ == "__main__":
    main()
