"""Benchmark: train a character LSTM on the ABC tunes and measure it like the music
notebook does -- held-out bits per character on the fixed test tunes, and the share of
generated tunes that are valid -- with the training time on this machine.

Presets:

- ``original``: the MIT 6.S191 lab's configuration -- a 1024-unit LSTM, embedding 256,
  Adam at 5e-3, batches of 8 windows of 100 characters, 3,000 steps, no dropout, no early
  stopping (its final weights are measured);
- ``notebook``: the notebook's configuration -- 256 units, dropout, AdamW with warm-up
  and cosine decay, weight decay 0.1, early stopping on the validation tunes.

Run with ``python tests/bench_music.py --preset original`` (its 3,000 steps would take about
28 minutes on a 2-core CPU, at the 566 ms a step measured here), or with ``--seconds 585``
to give it at least the notebook's training time (``make bench-music``); prints one JSON
object. Not collected by pytest: timings are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESETS = {
    "original": dict(embedding_dim=256, rnn_units=1024, dropout=0.0, seq_length=100, batch_size=8,
                     learning_rate=5e-3, optimizer="adam", num_steps=3000, eval_every=500, early_stopping=False),
    "notebook": dict(embedding_dim=64, rnn_units=256, dropout=0.5, seq_length=100, batch_size=64,
                     learning_rate=3e-3, optimizer="adamw", weight_decay=0.1, num_steps=2400, eval_every=100, early_stopping=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="original")
    parser.add_argument("--steps", type=int, help="override the preset's number of steps")
    parser.add_argument("--seconds", type=float, help="also stop after this many seconds of training "
                        "(to compare configurations at equal training time)")
    parser.add_argument("--tunes", type=int, default=48, help="tunes to generate at temperature 1.0")
    args = parser.parse_args()
    cfg = dict(PRESETS[args.preset])
    if args.steps:
        cfg["num_steps"] = args.steps

    import keras
    import numpy as np
    import tensorflow as tf

    from utils import abc, data, models, seeding, text, training

    songs = data.load_abc_songs()
    split = text.split_tunes(songs)
    vocab = text.Vocabulary.from_text(text.join_tunes(songs))
    train_ids, val_ids, test_ids = (vocab.encode(text.join_tunes(t)) for t in (split.train, split.validation, split.test))

    seeding.set_seed(0)
    model = models.char_lstm(len(vocab), cfg["embedding_dim"], cfg["rnn_units"], cfg["dropout"])
    if cfg["optimizer"] == "adam":
        optimizer = keras.optimizers.Adam(cfg["learning_rate"])
    else:
        optimizer = keras.optimizers.AdamW(training.warmup_cosine(cfg["learning_rate"], cfg["num_steps"], 0.05),
                                           weight_decay=cfg["weight_decay"], clipnorm=1.0)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng(0)
    clock = training.Stopwatch()
    best, best_weights, since_best, curve, steps_done = math.inf, None, 0, [], 0
    stopped_by_time = False
    for number in range(1, cfg["num_steps"] + 1):
        x, y = text.random_batch(train_ids, cfg["seq_length"], cfg["batch_size"], rng)
        with clock:
            step(x, y)
        steps_done = number
        stopped_by_time = bool(args.seconds and clock.seconds >= args.seconds)
        if number % cfg["eval_every"] == 0 or number == cfg["num_steps"] or stopped_by_time:
            val = text.bits_per_char(model, val_ids, cfg["seq_length"])
            curve.append({"step": number, "train_seconds": round(clock.seconds, 1), "val_bits_per_char": round(val, 4)})
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
            if val < best:
                best, since_best = val, 0
                best_weights = model.get_weights() if cfg["early_stopping"] else None
            else:
                since_best += 1
            if cfg["early_stopping"] and since_best >= 5 or stopped_by_time:
                break
    if best_weights is not None:
        model.set_weights(best_weights)

    test_bits = text.bits_per_char(model, test_ids, cfg["seq_length"])
    seeding.set_seed(0)
    # primed like the notebook: a blank line, then X: (how every tune starts in the training text)
    generated = [t.lstrip("\n") for t in text.generate(model, vocab, "\n\nX:", args.tunes, 1000,
                                                         text.reference_sample, temperature=1.0)]
    valid = float(np.mean([abc.check_tune(t).valid for t in generated]))
    print(json.dumps({
        "benchmark": "character LSTM on irish.abc", "preset": args.preset, "config": cfg,
        "steps_trained": steps_done, "stopped_by_time_budget": stopped_by_time, "train_seconds": round(clock.seconds, 1),
        "ms_per_step": round(1000 * clock.seconds / steps_done, 1),
        "parameters": model.count_params(),
        "test_bits_per_char": round(test_bits, 4), "best_val_bits_per_char": round(best, 4),
        "valid_tune_rate_T1": round(valid, 3), "tunes_generated": args.tunes,
        "val_curve": curve,
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
    }, indent=1))


if __name__ == "__main__":
    main()
