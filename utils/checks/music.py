"""Checks for ``notebooks/04_music_lstm.ipynb``: vectorisation, the batch function, the
sequence model, the loss, the training step and sampling.

Each check runs the learner's code on inputs made for it and compares the behaviour with
a reference computation (or a property that must hold), so any correct answer passes and
the usual mistakes are named: targets not shifted or shifted the wrong way, a model
without ``return_sequences``, probabilities where logits are expected, ``argmax`` where
sampling is asked for, the temperature applied the wrong way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from utils.checks._core import (
    call,
    expect_shape,
    fail,
    filled,
    kind,
    matches,
    ok,
    outputs_probabilities,
    to_array,
    train_step_against_reference,
)


def _int_array(value: Any, name: str, what: str) -> np.ndarray:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
        value = np.asarray(value)
    array = to_array(value, name, what=what)
    if not np.issubdtype(array.dtype, np.integer):
        fail(f"`{name}` holds {array.dtype} values, expected integers (character ids).")
    return array


def vectorize(vectorize_string: Callable[[str], Any], char2idx: Mapping[str, int]) -> None:
    """``vectorize_string(text)`` must return the integer id of every character of
    ``text``, in order, using the notebook's ``char2idx``."""
    filled(vectorize_string, "vectorize_string")
    # Only some of the characters, in an order unlike the vocabulary, so that building a
    # new vocabulary from the text gives different ids.
    chars = sorted(char2idx, key=lambda c: char2idx[c])
    sample = "X:1\nT:Test\nK:G\n" + "".join(chars[::-3][:20]) + "|dBAG|"
    sample = "".join(c for c in sample if c in char2idx)
    expected = np.array([char2idx[c] for c in sample])
    got = _int_array(call(vectorize_string, sample, what="vectorize_string(text)"),
                     "vectorize_string(text)", "an array of integers")
    expect_shape(got, expected.shape, "vectorize_string(text)",
                 hint="One integer per character of the text, in order.")
    if matches(got, expected + 1, rtol=0, atol=0) or matches(got, expected - 1, rtol=0, atol=0):
        fail("The ids are off by one: use char2idx[c] as it is.")
    if matches(got, np.array([sorted(set(sample)).index(c) for c in sample]), rtol=0, atol=0):
        fail("These ids come from a vocabulary built from the text itself: use the notebook's char2idx, "
             "so that every text gets the same ids.")
    if not matches(got, expected, rtol=0, atol=0):
        where = int(np.flatnonzero(got != expected)[0])
        fail(f"Character {where} ({sample[where]!r}) got id {int(got[where])}, expected char2idx[{sample[where]!r}] "
             f"= {int(expected[where])}.")
    ok(f"vectorize_string maps each character to its id ({len(sample)} characters checked).")


def batch_function(get_batch: Callable[[np.ndarray, int, int], Any]) -> None:
    """``get_batch(encoded, seq_length, batch_size)`` must return ``(x, y)``, both
    ``(batch_size, seq_length)``: random windows of consecutive characters, ``y`` one
    character ahead of ``x``; every window start is possible."""
    filled(get_batch, "get_batch")
    n, seq_length, batch_size = 400, 12, 32
    encoded = np.arange(n, dtype=np.int64)  # each id is its own position: windows are easy to read
    starts = []
    for attempt in range(40):
        out = call(get_batch, encoded, seq_length, batch_size, what="get_batch(encoded, seq_length, batch_size)")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            fail(f"get_batch returned {kind(out)}; return two arrays: (x, y).")
        x = _int_array(out[0], "x", "an array of character ids")
        y = _int_array(out[1], "y", "an array of character ids")
        expect_shape(x, (batch_size, seq_length), "x", hint="x is (batch_size, seq_length).")
        expect_shape(y, (batch_size, seq_length), "y", hint="y is (batch_size, seq_length), like x.")
        if not np.all(np.diff(x, axis=1) == 1):
            fail("A row of x is not a window of consecutive characters: take encoded[i : i + seq_length].")
        if np.array_equal(y, x):
            fail("y equals x: the target must be the input shifted one character ahead, "
                 "y = encoded[i + 1 : i + seq_length + 1].")
        if np.array_equal(y, x - 1):
            fail("y is shifted the wrong way (one character behind x): the target is the *next* character, "
                 "y = encoded[i + 1 : i + seq_length + 1].")
        if not np.array_equal(y, x + 1):
            shift = int(np.median(y - x))
            fail(f"y is x shifted by {shift} characters, expected 1: y = encoded[i + 1 : i + seq_length + 1].")
        starts.extend(x[:, 0].tolist())
    starts_a = np.asarray(starts)
    if len(set(starts)) < 10:
        fail(f"The windows always start at the same few places ({sorted(set(starts))[:5]}...): "
             f"choose random starts for each batch (np.random.choice or np.random.randint).")
    last_start = n - seq_length - 1
    if starts_a.min() < 0 or starts_a.max() > last_start:
        fail(f"A window starts at {int(starts_a.min() if starts_a.min() < 0 else starts_a.max())}, outside 0..{last_start}.")
    if starts_a.min() > n // 10 or starts_a.max() < last_start - n // 10:
        fail(f"Over {len(starts)} windows the starts span only {int(starts_a.min())}..{int(starts_a.max())} "
             f"of 0..{last_start}: every start from 0 to len(encoded) - seq_length - 1 should be possible.")
    ok("get_batch cuts random windows; y is x shifted one character ahead.")


def _forward(model: Any, x: np.ndarray, what: str) -> np.ndarray:
    return to_array(call(model, x, training=False, what=what), what, what="a tensor of logits")


def sequence_model(build_model: Callable[..., Any], vocab_size: int) -> None:
    """``build_model(vocab_size, embedding_dim, rnn_units)`` must return a model that maps
    ``(batch, time)`` ids to ``(batch, time, vocab_size)`` logits, each step seeing only
    the characters up to it."""
    filled(build_model, "build_model")
    import keras

    keras.utils.set_random_seed(3)
    model = call(build_model, vocab_size, 16, 32, what="build_model(vocab_size, 16, 32)")
    if not isinstance(model, keras.Model):
        fail(f"build_model returned {kind(model)}, expected a keras model.")
    rng = np.random.default_rng(4)
    x = rng.integers(0, vocab_size, size=(3, 9)).astype("int32")
    out = _forward(model, x, "model(x)")
    if out.shape == (3, vocab_size):
        fail(f"model(x) has shape {out.shape}: one prediction per sequence. The LSTM needs "
             f"return_sequences=True so there is a prediction for every character, "
             f"(batch, time, vocab_size) = (3, 9, {vocab_size}).")
    expect_shape(out, (3, 9, vocab_size), "model(x)",
                 hint="One vector of vocab_size logits for every input character; end with Dense(vocab_size).")
    if outputs_probabilities(out.reshape(-1, vocab_size)):
        fail("The model outputs probabilities (each row sums to 1): end with Dense(vocab_size) and no softmax, "
             "the loss takes logits.")
    longer = _forward(model, rng.integers(0, vocab_size, size=(2, 17)).astype("int32"), "model on 17 characters")
    expect_shape(longer, (2, 17, vocab_size), "model on 17 characters",
                 hint="Leave the sequence length open: keras.Input(shape=(None,)) or no Input.")
    changed = x.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % vocab_size
    out2 = _forward(model, changed, "model(x)")
    if not matches(out[:, :5], out2[:, :5], rtol=1e-4, atol=1e-5):
        fail("The prediction at a position changes when later characters change: the model sees the future "
             "(a Bidirectional layer?). Use a plain, forward LSTM.")
    if not any(hasattr(layer, "cell") for layer in model.layers):
        fail("The model has no recurrent layer: put an LSTM between the Embedding and the Dense layer.")
    ok(f"model maps (batch, time) ids to (batch, time, {vocab_size}) logits, one step at a time "
       f"({model.count_params():,} parameters at this test size).")


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def loss_function(compute_loss: Callable[[Any, Any], Any]) -> None:
    """``compute_loss(labels, logits)`` must return the mean sparse cross-entropy of the
    logits (a scalar; a per-character array is accepted and averaged)."""
    filled(compute_loss, "compute_loss")
    import tensorflow as tf

    rng = np.random.default_rng(5)
    vocab = 7
    labels = rng.integers(0, vocab, size=(4, 6))
    logits = (rng.normal(size=(4, 6, vocab)) * 3).astype("float32")
    got = to_array(call(compute_loss, tf.constant(labels), tf.constant(logits), what="compute_loss(labels, logits)"),
                   "compute_loss(labels, logits)", what="a number")
    if got.shape not in ((), (1,), labels.shape):
        fail(f"compute_loss returned shape {got.shape}: return one number (the mean), or one loss per "
             f"character, shape {labels.shape}.")
    value = float(got.mean())
    nll = -np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0]
    expected = float(nll.mean())
    probs = np.exp(_log_softmax(logits))
    mistakes = {
        "softmax was applied to the logits before a from_logits=True loss (a softmax twice)":
            float(-np.take_along_axis(_log_softmax(probs), labels[..., None], -1).mean()),
        "the loss treats the logits as probabilities: use from_logits=True":
            float(tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=False))),
        "the loss is summed, not averaged: take the mean over batch and time":
            float(nll.sum()),
    }
    if not np.isclose(value, expected, rtol=1e-4, atol=1e-5):
        for message, wrong in mistakes.items():
            if np.isclose(value, wrong, rtol=1e-4, atol=1e-5):
                fail(f"compute_loss gives {value:.4f}, expected {expected:.4f}: {message}.")
        fail(f"compute_loss gives {value:.4f}, expected the mean sparse cross-entropy from logits, {expected:.4f}. "
             f"Check the order of the arguments (labels first, then logits) and from_logits=True.")
    ok(f"compute_loss is the mean cross-entropy from logits ({expected:.4f} nats on the test batch).")


def _tiny_sequence_model(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((None,), dtype="int32"), keras.layers.Embedding(5, 4), keras.layers.LSTM(6, return_sequences=True),
         keras.layers.Dense(5)]
    )


def train_step(make_train_step: Callable[[Any, Any, Any], Callable[[Any, Any], Any]]) -> None:
    """``make_train_step(model, optimizer, loss_fn)`` must return ``step(x, y)`` that
    applies the gradients of ``loss_fn(y, model(x, training=True))`` to every trainable
    variable and returns the loss (checked on a small LSTM against a reference step)."""
    filled(make_train_step, "make_train_step")
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(6)
    x = tf.constant(rng.integers(0, 5, size=(4, 7)), dtype=tf.int32)
    y = tf.constant(rng.integers(0, 5, size=(4, 7)), dtype=tf.int32)
    train_step_against_reference(make_train_step, _tiny_sequence_model, x, y,
                                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def sampling(sample_next: Callable[[Any, float], Any]) -> None:
    """``sample_next(logits, temperature)`` must draw one id per row from
    ``softmax(logits / temperature)``: measured on 20,000 rows at three temperatures."""
    filled(sample_next, "sample_next")
    import tensorflow as tf

    base = np.array([2.0, 1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    rows = 20_000
    logits = tf.constant(np.tile(base, (rows, 1)))
    for temperature in (1.0, 0.5, 2.0):
        got = _int_array(call(sample_next, logits, temperature, what=f"sample_next(logits, {temperature})"),
                         "sample_next(logits, temperature)", "an array of ids")
        if got.shape not in ((rows,), (rows, 1)):
            fail(f"sample_next returned shape {got.shape}: one id per row of logits, shape ({rows},) "
                 f"(or ({rows}, 1)).")
        got = got.reshape(-1)
        if got.min() < 0 or got.max() >= len(base):
            fail(f"sample_next returned id {int(got.max() if got.max() >= len(base) else got.min())}, "
                 f"outside 0..{len(base) - 1}.")
        freq = np.bincount(got, minlength=len(base)) / rows
        want = np.exp(_log_softmax(base / temperature))
        distance = 0.5 * np.abs(freq - want).sum()
        if distance <= 0.02:
            continue
        if freq.max() > 0.999:
            fail("sample_next always returns the most likely id: that is argmax. Draw at random from the "
                 "distribution instead: tf.random.categorical(logits / temperature, num_samples=1).")
        for name, wrong in (
            ("the temperature multiplies the logits; divide by it (a low temperature must sharpen)",
             np.exp(_log_softmax(base * temperature))),
            ("the temperature is not used: divide the logits by it", np.exp(_log_softmax(base))),
            ("the draws follow softmax(softmax(logits)): tf.random.categorical takes logits, not probabilities",
             np.exp(_log_softmax(np.exp(_log_softmax(base / temperature))))),
        ):
            if 0.5 * np.abs(freq - wrong).sum() <= 0.02:
                fail(f"At temperature {temperature}: {name}.")
        fail(f"At temperature {temperature} the ids are drawn with frequencies {np.round(freq, 3).tolist()}, "
             f"expected softmax(logits / temperature) = {np.round(want, 3).tolist()}.")
    ok("sample_next draws from softmax(logits / temperature) at temperatures 0.5, 1 and 2.")


__all__ = ["batch_function", "loss_function", "sampling", "sequence_model", "train_step", "vectorize"]
