"""Benchmark: train a character LSTM on the ABC tunes and measure it like the music
notebook does -- held-out bits per character on the fixed test tunes, and the share of
generated tunes that are valid -- with the training time on this machine.

Presets:

- ``original``: the MIT 6.S191 lab's configuration -- a 1024-unit LSTM, embedding 256,
  Adam at 5e-3, batches of 8 windows of 100 characters, 3,000 steps, no dropout, no early
  stopping (its final weights are measured);
- ``notebook``: the notebook's configuration -- 256 units, dropout, AdamW with warm-up
  and cosine decay, weight decay 0.1, early stopping on the validation tunes.

Run with ``python benchmarks/music.py --preset original`` (``make bench-music`` gives it at
least the notebook's training time with ``--seconds``); prints one JSON object. Not
collected by pytest: timings are measured, not asserted.

Switches that change the notebook preset (``--seq-length``, ``--batch-size``, ``--units``,
``--dropout``, ``--tune-start-share``, ``--repeat-rare``, ``--rare-bodies``,
``--recurrent-dropout``, ``--transpose``, ``--stateful``, ``--ema``, ``--ema-overwrite``,
``--layers``, ``--seed``) are described in ``--help``; what each of them did to the
valid-tune rate is recorded in ``docs/music.md``. ``failures`` in the output counts the
invalid tunes at temperature 1.0 by :data:`utils.abc.FAILURE_KINDS`; ``--temperatures``
measures the valid-tune rate at other temperatures too and ``--dump`` writes every
generated tune with its verdict to a JSON file.
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
                     learning_rate=3e-3, optimizer="adamw", weight_decay=0.1, num_steps=3000, eval_every=100, early_stopping=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="original")
    parser.add_argument("--steps", type=int, help="override the preset's number of steps")
    parser.add_argument("--seconds", type=float, help="also stop after this many seconds of training "
                        "(to compare configurations at equal training time)")
    parser.add_argument("--tunes", type=int, default=48, help="tunes to generate at temperature 1.0")
    parser.add_argument("--seq-length", type=int, help="override the preset's window length")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--units", type=int, help="override the preset's LSTM units")
    parser.add_argument("--dropout", type=float, help="override the preset's dropout")
    parser.add_argument("--tune-start-share", type=float, default=0.0,
                        help="share of each batch's windows that start at a tune's start (0: all anywhere)")
    parser.add_argument("--repeat-rare", type=int, default=1,
                        help="put each training tune of a rare meter (under 10 %% of the corpus: 2/4, 9/8, 3/4...) "
                        "this many times into the training text")
    parser.add_argument("--rare-bodies", type=int, default=1,
                        help="like --repeat-rare, but the extra copies teach only their bodies: the loss skips their "
                        "header characters, so the model learns the rare bars without choosing rare meters more often")
    parser.add_argument("--recurrent-dropout", type=float, default=0.0,
                        help="dropout on the LSTM's recurrent state (one mask per sequence, as in variational dropout)")
    parser.add_argument("--transpose", type=int, nargs="*", default=[],
                        help="also train on every training tune moved by each of these semitones (e.g. 5 -5: "
                        "a fourth up and down), the held-out tunes unchanged")
    parser.add_argument("--stateful", action="store_true",
                        help="train on contiguous streams of whole tunes, each step's final LSTM state the next "
                        "step's first (truncated backpropagation through time), instead of independent random "
                        "windows that start from a zero state; early stopping then reads the validation tunes "
                        "as generation does, from their start with the state carried")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="keep an exponential moving average of the weights with this momentum (e.g. 0.99): "
                        "early stopping measures and keeps the averaged weights; training goes on from its own")
    parser.add_argument("--ema-overwrite", action="store_true",
                        help="with --ema: Keras's use_ema with ema_overwrite_frequency, the average copied into the "
                        "model at every evaluation, and training goes on from it")
    parser.add_argument("--layers", type=int, default=1,
                        help="stack this many LSTM layers of --units units (dropout between them as after the last)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0],
                        help="sampling temperatures to measure the valid-tune rate at (--tunes tunes each)")
    parser.add_argument("--dump", type=Path, help="write the generated tunes and their verdicts to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = dict(PRESETS[args.preset])
    for key, value in (("num_steps", args.steps), ("seq_length", args.seq_length), ("batch_size", args.batch_size),
                       ("rnn_units", args.units), ("dropout", args.dropout)):
        if value is not None:
            cfg[key] = value
    cfg["tune_start_share"] = args.tune_start_share
    cfg["repeat_rare"] = args.repeat_rare
    cfg["rare_bodies"] = args.rare_bodies
    cfg["recurrent_dropout"] = args.recurrent_dropout
    cfg["transpose"] = args.transpose
    cfg["stateful"] = args.stateful
    cfg["ema"] = args.ema
    cfg["layers"] = args.layers
    cfg["ema_overwrite"] = args.ema_overwrite
    if args.stateful and (args.tune_start_share or args.rare_bodies > 1):
        parser.error("--stateful reads whole tunes in order: it does not combine with --tune-start-share or --rare-bodies")

    import keras
    import numpy as np
    import tensorflow as tf

    from utils import abc, data, models, seeding, text, training

    songs = data.load_abc_songs()
    split = text.split_tunes(songs)
    vocab = text.Vocabulary.from_text(text.join_tunes(songs))
    train_tunes = list(split.train)
    extra: list[str] = []
    if args.repeat_rare > 1 or args.rare_bodies > 1:
        meters = {song: verdict.tune.header["M"] for song in songs if (verdict := abc.check_tune(song)).valid}
        meter_share = {m: list(meters.values()).count(m) / len(songs) for m in set(meters.values())}
        rare = [t for t in split.train if t in meters and meter_share[meters[t]] < 0.1]
        train_tunes += rare * (args.repeat_rare - 1)
        extra = rare * (args.rare_bodies - 1)
    for semitones in args.transpose:
        for tune in split.train:
            try:
                moved = abc.transpose(tune, semitones)
            except abc.AbcError:
                continue  # a tune the reader cannot read, or a key beyond 7 accidentals
            if set(moved) <= set(vocab.chars):
                train_tunes.append(moved)
    pieces = [(t, False) for t in train_tunes] + [(t, True) for t in extra]
    if len(pieces) > len(split.train):
        np.random.default_rng(args.seed).shuffle(pieces)
    train_ids = vocab.encode(text.join_tunes([t for t, _ in pieces]))
    # weight of each character as a target: 0 for the header (up to the K: line) of an extra body-only copy
    char_weights = np.ones(len(train_ids), np.float32)
    at = 0
    for tune, body_only in pieces:
        piece = text.join_tunes([tune])
        if body_only:
            key_line = piece.index("\nK:")
            char_weights[at:piece.index("\n", key_line + 1) + 1 + at] = 0.0
        at += len(piece)
    assert at == len(train_ids)
    val_ids, test_ids = (vocab.encode(text.join_tunes(t)) for t in (split.validation, split.test))

    seeding.set_seed(args.seed)
    model = models.char_lstm(len(vocab), cfg["embedding_dim"], cfg["rnn_units"], cfg["dropout"], args.recurrent_dropout)
    if args.layers > 1:
        if args.stateful:
            parser.error("--stateful builds a one-layer model: it does not combine with --layers")
        from keras import layers as keras_layers

        stack = [keras.Input(shape=(None,), dtype="int32"), keras_layers.Embedding(len(vocab), cfg["embedding_dim"]),
                 keras_layers.Dropout(cfg["dropout"] / 2)]
        for _ in range(args.layers):
            stack += [keras_layers.LSTM(cfg["rnn_units"], return_sequences=True, recurrent_dropout=args.recurrent_dropout),
                      keras_layers.Dropout(cfg["dropout"])]
        model = keras.Sequential(stack + [keras_layers.Dense(len(vocab))], name="char_lstm_stack")
    if cfg["optimizer"] == "adam":
        optimizer = keras.optimizers.Adam(cfg["learning_rate"])
    else:
        ema = dict(use_ema=True, ema_momentum=args.ema, ema_overwrite_frequency=cfg["eval_every"]) if args.ema_overwrite else {}
        optimizer = keras.optimizers.AdamW(training.warmup_cosine(cfg["learning_rate"], cfg["num_steps"], 0.05),
                                           weight_decay=cfg["weight_decay"], clipnorm=1.0, **ema)

    averaged = bool(args.ema) and not args.ema_overwrite
    averages = [tf.Variable(v) for v in model.trainable_variables] if averaged else []

    @tf.function
    def step(x, y, w):
        with tf.GradientTape() as tape:
            per_char = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True), from_logits=True)
            loss = tf.reduce_sum(per_char * w) / tf.reduce_sum(w)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        if averages:
            for average, variable in zip(averages, model.trainable_variables):
                average.assign(args.ema * average + (1 - args.ema) * variable)
        return loss

    rng = np.random.default_rng(args.seed)
    tune_starts = text.tune_starts(train_ids, vocab)
    tune_starts = tune_starts[tune_starts + cfg["seq_length"] + 1 < len(train_ids)]
    n_aligned = int(round(cfg["tune_start_share"] * cfg["batch_size"]))

    positions = np.arange(len(train_ids))

    def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # random_batch over the positions gives the windows' indices: characters and weights from them
        x_at, y_at = text.random_batch(positions, cfg["seq_length"], cfg["batch_size"], rng)
        if n_aligned:
            x_at[:n_aligned] = rng.choice(tune_starts, n_aligned)[:, None] + np.arange(cfg["seq_length"])[None, :]
            y_at[:n_aligned] = x_at[:n_aligned] + 1
        return train_ids[x_at], train_ids[y_at], char_weights[y_at]

    def carried_bits(encoded: np.ndarray) -> float:
        """Every character predicted from the start of the text, the state carried (as generation reads a tune)."""
        logits = model(encoded[None, :-1], training=False)[0]
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=encoded[1:], logits=logits)
        return float(tf.reduce_mean(nats)) / math.log(2)

    if args.stateful:
        # the same layers with the LSTM's state as an input and an output: trained here, copied into `model`
        from keras import layers

        units = cfg["rnn_units"]
        ids_in, h_in, c_in = keras.Input((None,), dtype="int32"), keras.Input((units,)), keras.Input((units,))
        hidden = layers.Dropout(cfg["dropout"] / 2)(layers.Embedding(len(vocab), cfg["embedding_dim"])(ids_in))
        hidden, h_out, c_out = layers.LSTM(units, return_sequences=True, return_state=True,
                                           recurrent_dropout=args.recurrent_dropout)(hidden, initial_state=[h_in, c_in])
        logits_out = layers.Dense(len(vocab))(layers.Dropout(cfg["dropout"])(hidden))
        stream_model = keras.Model([ids_in, h_in, c_in], [logits_out, h_out, c_out])
        stream_model.set_weights(model.get_weights())

        @tf.function
        def stream_step(x, y, h, c):
            with tf.GradientTape() as tape:
                logits, h, c = stream_model([x, h, c], training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            grads = tape.gradient(loss, stream_model.trainable_variables)
            optimizer.apply_gradients(zip(grads, stream_model.trainable_variables))
            return loss, h, c

        def stream_epochs():
            """Batches of (x, y, fresh): every row reads its own list of whole shuffled tunes in order,
            from a tune's start with a zero state (fresh) to the end of its list."""
            while True:
                order = rng.permutation(len(pieces))
                rows: list[list[str]] = [[] for _ in range(cfg["batch_size"])]
                lengths = np.zeros(cfg["batch_size"], int)
                for i in order:  # each tune to the shortest row
                    r = int(lengths.argmin())
                    rows[r].append(pieces[i][0])
                    lengths[r] += len(pieces[i][0]) + len(text.TUNE_SEPARATOR)
                streams = [vocab.encode(text.TUNE_SEPARATOR + text.join_tunes(r)) for r in rows]
                n = (min(len(s) for s in streams) - 1) // cfg["seq_length"] * cfg["seq_length"]
                grid = np.stack([s[: n + 1] for s in streams])
                for at in range(0, n, cfg["seq_length"]):
                    yield grid[:, at:at + cfg["seq_length"]], grid[:, at + 1:at + 1 + cfg["seq_length"]], at == 0

        stream_batches = stream_epochs()
        zero = tf.zeros((cfg["batch_size"], units))
        state = (zero, zero)

    clock = training.Stopwatch()
    best, best_weights, since_best, curve, steps_done = math.inf, None, 0, [], 0
    stopped_by_time = False
    for number in range(1, cfg["num_steps"] + 1):
        if args.stateful:
            x, y, fresh = next(stream_batches)
            with clock:
                _, h, c = stream_step(x, y, *((zero, zero) if fresh else state))
                state = (h, c)
        else:
            x, y, w = batch()
            with clock:
                step(x, y, w)
        steps_done = number
        stopped_by_time = bool(args.seconds and clock.seconds >= args.seconds)
        if number % cfg["eval_every"] == 0 or number == cfg["num_steps"] or stopped_by_time:
            if args.stateful:
                model.set_weights(stream_model.get_weights())
                val = carried_bits(val_ids)
            elif averaged:  # measure (and keep) the averaged weights, then train on from the model's own
                own = [v.numpy() for v in model.trainable_variables]
                for variable, average in zip(model.trainable_variables, averages):
                    variable.assign(average)
                val = text.bits_per_char(model, val_ids, 100)
            else:
                val = text.bits_per_char(model, val_ids, 100)  # the same context for every window length
            curve.append({"step": number, "train_seconds": round(clock.seconds, 1), "val_bits_per_char": round(val, 4)})
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
            if val < best:
                best, since_best = val, 0
                best_weights = model.get_weights() if cfg["early_stopping"] else None
            else:
                since_best += 1
            if averaged:
                for variable, value in zip(model.trainable_variables, own):
                    variable.assign(value)
            if cfg["early_stopping"] and since_best >= 5 or stopped_by_time:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    elif args.stateful:
        model.set_weights(stream_model.get_weights())

    test_bits = text.bits_per_char(model, test_ids, 100)
    test_bits_carried = carried_bits(test_ids)
    rates: dict[str, float] = {}
    dumped = []
    for temperature in args.temperatures:
        seeding.set_seed(args.seed)
        # primed like the notebook: a blank line, then X: (how every tune starts in the training text)
        tunes = [t.lstrip("\n") for t in text.generate(model, vocab, "\n\nX:", args.tunes, 1000,
                                                        text.reference_sample, temperature=temperature)]
        tune_verdicts = [abc.check_tune(t) for t in tunes]
        rates[f"T{temperature:g}"] = round(float(np.mean([v.valid for v in tune_verdicts])), 3)
        dumped += [{"temperature": temperature, "tune": t, "kind": v.kind, "reason": v.reason}
                   for t, v in zip(tunes, tune_verdicts)]
        if temperature == 1.0:
            generated, verdicts = tunes, tune_verdicts
    if args.dump:
        args.dump.write_text(json.dumps(dumped, indent=0))
    if 1.0 not in args.temperatures:
        generated, verdicts = tunes, tune_verdicts
    valid = float(np.mean([v.valid for v in verdicts]))
    failures = {kind: sum(v.kind == kind for v in verdicts) for kind in abc.FAILURE_KINDS}
    by_meter: dict[str, list[bool]] = {}
    for tune, verdict in zip(generated, verdicts):
        meter = next((line[2:].strip() for line in tune.splitlines() if line.startswith("M:")), "none")
        by_meter.setdefault(meter, []).append(verdict.valid)
    valid_by_meter = {m: f"{sum(v)}/{len(v)}" for m, v in sorted(by_meter.items(), key=lambda item: -len(item[1]))[:8]}
    print(json.dumps({
        "benchmark": "character LSTM on irish.abc", "preset": args.preset, "config": cfg,
        "steps_trained": steps_done, "stopped_by_time_budget": stopped_by_time, "train_seconds": round(clock.seconds, 1),
        "ms_per_step": round(1000 * clock.seconds / steps_done, 1),
        "parameters": model.count_params(), "train_characters": len(train_ids),
        "test_bits_per_char": round(test_bits, 4), "test_bits_per_char_state_carried": round(test_bits_carried, 4),
        "best_val_bits_per_char": round(best, 4),
        "valid_tune_rate_T1": round(valid, 3), "valid_tune_rates": rates, "tunes_generated": args.tunes, "failures": failures, "valid_by_meter": valid_by_meter,
        "val_curve": curve,
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
    }, indent=1))


if __name__ == "__main__":
    main()
