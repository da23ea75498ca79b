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

from utils.checks._core import (call, expect_shape, fail, filled, kind, matches, ok, outputs_probabilities, short_error,
                                to_array)
from utils.checks._models import dropout_rates, expect_logits, expect_shapes_before_running
from utils.checks._steps import train_step_matches_reference


def _int_array(value: Any, name: str, what: str) -> np.ndarray:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
        value = np.asarray(value)
    array = to_array(value, name, what=what)
    if not np.issubdtype(array.dtype, np.integer):
        fail(f"`{name}` holds {array.dtype} values, expected integers (character ids).")
    return array


def vectorize(vectorize_string: Callable[[str], Any], char2idx: Mapping[str, int]) -> None:
    """``vectorize_string(text)`` must return a NumPy array with the integer id of every
    character of ``text`` -- newlines and spaces included -- in order, using the
    notebook's ``char2idx``."""
    filled(vectorize_string, "vectorize_string")
    # Only some of the characters, in an order unlike the vocabulary, so that building a
    # new vocabulary from the text gives different ids; blank lines and spaces at both
    # ends, so that dropping or stripping any character shows.
    chars = sorted(char2idx, key=lambda c: char2idx[c])
    sample = "\n\nX:1\nT:Test  tune\nK:G\n" + "".join(chars[::-3][:20]) + "|dBAG dBAG|\n\n \n"
    sample = "".join(c for c in sample if c in char2idx)
    expected = np.array([char2idx[c] for c in sample])
    out = call(vectorize_string, sample, what="vectorize_string(text)")
    if isinstance(out, list):
        fail("vectorize_string returned a Python list; the TODO asks for a NumPy array (np.array of the ids), "
             "which the notebook slices and counts.")
    filled(out, "vectorize_string(text)")
    if out is not None and not isinstance(out, np.ndarray):
        fail(f"vectorize_string returned {kind(out)}; the TODO asks for a NumPy array (np.array of the ids).")
    got = _int_array(out, "vectorize_string(text)", "an array of integers")
    if got.ndim != 1:
        fail(f"vectorize_string(text) has shape {got.shape}: one id per character, a flat array of shape "
             f"({len(sample)},).")
    if len(got) < len(sample):
        missing = _first_dropped(got, expected)
        where = f": the first one missing is {sample[missing]!r} at position {missing}"
        fail(f"vectorize_string gave {len(got)} ids for {len(sample)} characters, so characters were dropped"
             f"{where}. Every character of the text -- newlines and spaces too -- gets its id, in order.")
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


def _first_dropped(got: np.ndarray, expected: np.ndarray) -> int:
    """The position of the first character whose id is missing from the shorter ``got``."""
    differ = np.flatnonzero(got != expected[: len(got)])
    return int(differ[0]) if differ.size else len(got)


def _windows(get_batch: Callable[[np.ndarray, int, int], Any], encoded: np.ndarray, seq_length: int,
             batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One call of ``get_batch``: type, shape and the shift checked, ``(x, y)`` returned."""
    last = len(encoded) - seq_length - 1
    out = call(get_batch, encoded, seq_length, batch_size, what="get_batch(encoded, seq_length, batch_size)",
               hint=f"If a window ran past the end of the text: with {len(encoded)} characters and seq_length "
                    f"{seq_length}, the last start whose target still fits is len(encoded) - seq_length - 1 = {last}.")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"get_batch returned {kind(out)}; return two arrays: (x, y).")
    x = _int_array(out[0], "x", "an array of character ids")
    y = _int_array(out[1], "y", "an array of character ids")
    if x.ndim == 2 and x.shape[0] == batch_size and x.shape[1] < seq_length:
        fail(f"x has shape {x.shape}: its windows are cut short, so they start too close to (or past) the end of "
             f"the text. A start is a position in the text, from 0 to len(encoded) - seq_length - 1 = {last}, "
             f"not a value taken from the text.")
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
        shifts = y[:, 0] - x[:, 0]
        if len(set(shifts.tolist())) > 1:
            fail("y is not x shifted by one character in every row: each row's target must come from the same "
                 "start as its input, one character later (and stay inside the text).")
        fail(f"y is x shifted by {int(shifts[0])} characters, expected 1: y = encoded[i + 1 : i + seq_length + 1].")
    starts = x[:, 0] - int(encoded[0])
    if starts.min() < 0 or starts.max() > last:
        fail(f"A window starts at {int(starts.min() if starts.min() < 0 else starts.max())}, outside 0..{last}: "
             f"its target would run past the end of the text.")
    return x, y


def batch_function(get_batch: Callable[[np.ndarray, int, int], Any]) -> None:
    """``get_batch(encoded, seq_length, batch_size)`` must return ``(x, y)``, both
    ``(batch_size, seq_length)``: windows of consecutive characters at random starts, ``y``
    one character ahead of ``x``; each row its own start, new starts at every call, and
    every start from 0 to ``len(encoded) - seq_length - 1`` possible."""
    filled(get_batch, "get_batch")
    n, seq_length, batch_size = 400, 12, 32
    offset = 1000  # id = position + offset: windows are easy to read, and an id is never taken for a position
    encoded = np.arange(n, dtype=np.int64) + offset
    x1, _ = _windows(get_batch, encoded, seq_length, batch_size)
    x2, _ = _windows(get_batch, encoded, seq_length, batch_size)
    x1, x2 = x1 - offset, x2 - offset
    distinct = len(set(x1[:, 0].tolist()))
    if distinct == 1:
        fail(f"All {batch_size} rows of a batch start at the same place ({int(x1[0, 0])}): draw a separate random "
             f"start for every row (batch_size starts at once).")
    if distinct < batch_size // 2:
        fail(f"Only {distinct} different starts among {batch_size} rows of a batch drawn from {n - seq_length} "
             f"possible ones: draw a separate random start for every row.")
    if np.array_equal(x1, x2):
        fail("Two calls of get_batch returned the same batch: draw new random starts at every call "
             "(no fixed seed inside get_batch).")
    # A short text: few possible starts, so over many draws each one must show up.
    seq_length, batch_size = 6, 4
    encoded = np.arange(seq_length + 8, dtype=np.int64) + offset
    last = len(encoded) - seq_length - 1
    counts = np.zeros(len(encoded), np.int64)
    draws = 1000
    for _ in range(draws):
        x, _ = _windows(get_batch, encoded, seq_length, batch_size)
        np.add.at(counts, x[:, 0] - offset, 1)
    seen = set(np.flatnonzero(counts).tolist())
    missing = sorted(set(range(last + 1)) - seen)
    if missing:
        which = "the last start" if missing == [last] else ("the first start" if missing == [0] else "starts")
        fail(f"With {len(encoded)} characters and seq_length {seq_length} the starts 0..{last} are all possible, "
             f"but {draws * batch_size} windows never started at {missing} ({which}): the upper bound of the "
             f"random draw must let len(encoded) - seq_length - 1 be drawn (is the bound you pass included or "
             f"excluded?).")
    # Every start equally likely: Pearson's chi-square of the counts against a fair draw,
    # refused above its 1-in-10^9 quantile (Wilson-Hilferty), so a correct draw is never refused.
    total, possible = draws * batch_size, last + 1
    expected = total / possible
    chi2 = float(np.sum((counts[:possible] - expected) ** 2) / expected)
    dof = possible - 1
    limit = dof * (1 - 2 / (9 * dof) + 6 * np.sqrt(2 / (9 * dof))) ** 3
    if chi2 > limit:
        i = int(np.argmax(np.abs(counts[:possible] - expected)))
        fail(f"Over {total} windows (text of {len(encoded)} characters, seq_length {seq_length}) start {i} was "
             f"drawn {int(counts[i])} times, where a fair draw gives about {expected:.0f}: every start from 0 to "
             f"{last} should be equally likely. Draw the start at random from exactly that range, instead of "
             f"drawing from a wider one and moving the starts that do not fit.")
    import keras

    repeats = []
    for _ in range(2):
        keras.utils.set_random_seed(9)
        repeats.append(_windows(get_batch, encoded, seq_length, batch_size)[0])
    if not np.array_equal(*repeats):
        fail("After the same global seed, get_batch draws different windows: draw from the global random generator "
             "the notebook seeds (NumPy's, or TensorFlow's), not from a generator of your own without a seed -- "
             "otherwise no run can be repeated.")
    ok("get_batch cuts random windows, every start possible; y is x shifted one character ahead.")


def _forward(model: Any, x: np.ndarray, what: str) -> np.ndarray:
    return to_array(call(model, x, training=False, what=what,
                         hint="If an id is out of range, the Embedding was not sized by the vocab_size argument."),
                    what, what="a tensor of logits")


def sequence_model(build_model: Callable[..., Any], vocab_size: int) -> None:
    """``build_model(vocab_size, embedding_dim, rnn_units, dropout)`` must return a model
    that maps ``(batch, time)`` ids to ``(batch, time, vocab_size)`` logits, each step
    seeing only the characters up to it, sized by its arguments, with dropout at the rate
    ``dropout`` that is active in training only (and absent when ``dropout=0``)."""
    filled(build_model, "build_model")
    import keras

    keras.utils.set_random_seed(3)
    vocab = vocab_size + 7  # not the notebook's size: a hard-coded vocabulary shows
    model = call(build_model, vocab, 16, 32, 0.0, what=f"build_model({vocab}, 16, 32, dropout=0.0)")
    if not isinstance(model, keras.Model):
        fail(f"build_model returned {kind(model)}, expected a keras model.")
    rng = np.random.default_rng(4)
    x = rng.integers(0, vocab, size=(3, 9)).astype("int32")
    out = _forward(model, x, "model(x)")
    if out.shape == (3, vocab):
        fail(f"model(x) has shape {out.shape}: one prediction per sequence. The LSTM needs "
             f"return_sequences=True so there is a prediction for every character, "
             f"(batch, time, vocab_size) = (3, 9, {vocab}).")
    expect_shape(out, (3, 9, vocab), "model(x)",
                 hint=f"One vector of vocab_size logits for every input character; end with a Dense layer of "
                      f"vocab_size units (here build_model got vocab_size={vocab}: use the argument, not a number).")
    inner = list(model._flatten_layers(include_self=False))
    if not any(hasattr(layer, "cell") for layer in inner):
        fail("The model has no recurrent layer: put an LSTM between the Embedding and the Dense layer.")
    def is_lstm(layer: Any) -> bool:  # keras.layers.LSTM, or the generic RNN wrapper around an LSTMCell
        return isinstance(layer, keras.layers.LSTM) or (
            isinstance(layer, keras.layers.RNN) and isinstance(getattr(layer, "cell", None), keras.layers.LSTMCell))

    if not any(is_lstm(layer) for layer in inner):
        other = next(type(layer).__name__ for layer in inner if hasattr(layer, "cell"))
        fail(f"The recurrent layer is a {other}; the table asks for an LSTM, whose gated memory carries a tune's "
             f"meter and key across hundreds of characters.")
    if not any(isinstance(layer, keras.layers.Embedding) for layer in inner):
        fail("The model has no Embedding layer: the table starts with one, which turns each character id into a "
             "learned vector of embedding_dim numbers.")
    if any(getattr(layer, "mask_zero", False) for layer in inner):
        fail("The Embedding has mask_zero=True, which tells the layers after it to skip every id 0 -- and id 0 is "
             "a character here (the newline, which also ends a tune). Leave mask_zero out: no character is "
             "padding.")
    if any(getattr(layer, "return_state", False) for layer in inner):
        fail("The LSTM has return_state=True, so it returns its states next to its outputs; the model needs only "
             "the outputs (and the layer table below reads one output shape per layer). Leave return_state out.")
    if any(isinstance(layer, keras.layers.TimeDistributed) for layer in inner):
        fail("A Dense layer already acts on every time step by itself: leave out the TimeDistributed wrapper "
             "(the generator runs the model one character at a time, which the wrapper does not allow).")
    expect_logits(model, x, "The model", "End with Dense(vocab_size) and no activation: the loss takes logits.")
    longer = _forward(model, rng.integers(0, vocab, size=(2, 17)).astype("int32"), "model on 17 characters")
    expect_shape(longer, (2, 17, vocab), "model on 17 characters",
                 hint="Leave the time axis of the keras.Input open (None), as the text above TODO 3 shows.")
    changed = x.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % vocab
    out2 = _forward(model, changed, "model(x)")
    if not matches(out[:, :5], out2[:, :5], rtol=1e-4, atol=1e-5):
        fail("The prediction at a position changes when later characters change: the model sees the future "
             "(a Bidirectional layer?). Use a plain, forward LSTM.")
    embeddings = [lay for lay in model._flatten_layers(include_self=False) if isinstance(lay, keras.layers.Embedding)]
    if embeddings and embeddings[0].output_dim != 16:
        fail(f"build_model(..., embedding_dim=16, ...) made an Embedding of {embeddings[0].output_dim} dimensions: "
             f"size it by the embedding_dim argument.")
    recurrent = [lay for lay in model._flatten_layers(include_self=False) if hasattr(lay, "cell")]
    units = getattr(recurrent[0], "units", getattr(getattr(recurrent[0], "cell", None), "units", 32))
    if units != 32:
        fail(f"build_model(..., rnn_units=32) made a recurrent layer of {units} units: size it by the rnn_units "
             f"argument.")
    fresh = call(build_model, vocab, 16, 32, 0.0, what=f"build_model({vocab}, 16, 32, dropout=0.0)")
    expect_shapes_before_running(
        fresh, "The model has no keras.Input: start it with an input of integer character ids whose time axis "
               "stays open (as the text above TODO 3 says), so that each layer's output shape is known before the "
               "model runs -- the cells below print them.")
    fixed = [tuple(t.shape) for t in fresh.inputs if len(t.shape) > 1 and t.shape[1] is not None]
    if fixed:
        fail(f"The model's input has shape {fixed[0]}: a fixed number of characters. Leave the time axis open "
             f"(None), as the text above TODO 3 says: the model trains on windows of 100 characters and writes "
             f"one character at a time.")
    train_a = _forward_training(model, x)
    if not matches(train_a, _forward_training(model, x), rtol=1e-5, atol=1e-6):
        fail("With dropout=0.0 the model still gives a different output at each call in training mode: a dropout "
             "rate is fixed inside build_model. Let the dropout argument set every rate.")
    keras.utils.set_random_seed(3)
    rate = 0.4
    model = call(build_model, vocab, 16, 32, rate, what=f"build_model({vocab}, 16, 32, dropout={rate})")
    if not isinstance(model, keras.Model):
        fail(f"build_model returned {kind(model)}, expected a keras model.")
    if not matches(_forward(model, x, "model(x)"), _forward(model, x, "model(x)"), rtol=1e-6, atol=1e-7):
        fail("With training=False the model gives a different output at each call: dropout must be off in "
             "inference (use Dropout layers, which follow the training flag).")
    trained = _forward_training(model, x)
    if np.mean(trained == 0) > 0.05 and not np.any(_forward(model, x, "model(x)") == 0):
        fail("In training some logits come out exactly 0: a Dropout comes after the last Dense layer. Dropout "
             "acts on the LSTM's outputs, before the Dense layer; the logits go to the loss untouched.")
    if matches(trained, _forward_training(model, x), rtol=1e-6, atol=1e-7):
        fail(f"build_model(..., dropout={rate}) gives the same output at every call in training mode: no dropout "
             f"is active. Add the Dropout layers of the table, with their rates taken from the dropout argument.")
    _steps_like_the_generator(model, vocab)
    rates = dropout_rates(model)
    if rates and not np.isclose(max(rates), rate):
        fail(f"build_model(..., dropout={rate}) uses dropout rates {sorted(set(round(r, 3) for r in rates))}: the "
             f"largest should be the dropout argument itself ({rate}), a rate of dropping, not of keeping.")
    ordered = [lay for lay in model.layers if type(lay).__name__ != "InputLayer"]
    after_embedding = next((b for a, b in zip(ordered, ordered[1:]) if isinstance(a, keras.layers.Embedding)), None)
    if isinstance(after_embedding, keras.layers.Dropout) and not any(
            np.isclose(after_embedding.rate, r) for r in (rate / 2, 0.0)):
        fail(f"build_model(..., dropout={rate}) drops the embeddings at rate {after_embedding.rate:g}; the table's "
             f"first Dropout, after the Embedding, drops half as much as the one after the LSTM: dropout / 2.")
    ok(f"model maps (batch, time) ids to (batch, time, vocab_size) logits, one step at a time, with dropout "
       f"in training only ({model.count_params():,} parameters at this test size).")


def _steps_like_the_generator(model: Any, vocab: int) -> None:
    """``text.generate`` runs the model one character at a time, layer after layer, carrying
    the recurrent state: a few greedy steps that way must give the logits of one pass over
    the whole text."""
    import tensorflow as tf

    from utils import text

    chars = text.Vocabulary([chr(0x100 + i) for i in range(vocab)])
    seen: list[np.ndarray] = []

    def greedy(logits: Any, temperature: float) -> Any:
        seen.append(np.asarray(logits))
        return tf.argmax(logits, axis=-1)

    why = ("The generator below runs the model one character at a time, layer after layer, carrying the LSTM's "
           "state; a model that is not the table's chain (a skip connection, a convolution over time, a layer "
           "that needs the whole sequence) cannot be run that way. Build the table's layers as one chain.")
    try:
        out = text.generate(model, chars, start=chars.chars[1], num_streams=2, max_length=5, sample=greedy, stop="")
    except Exception as err:  # noqa: BLE001 - whatever the model raises, the cause is its structure
        fail(f"Generating with the model raised {type(err).__name__}: {short_error(err)}. {why}")
    full = to_array(model(chars.encode(out[0])[None, :-1], training=False), "model(text)")[0]
    if not matches(np.stack([s[0] for s in seen]), full, atol=1e-4):
        fail(f"Run one character at a time, as the generator runs it, the model gives other logits than on the "
             f"whole text. {why}")


def _forward_training(model: Any, x: np.ndarray) -> np.ndarray:
    return to_array(call(model, x, training=True, what="model(x, training=True)"), "model(x, training=True)")


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def loss_function(compute_loss: Callable[[Any, Any], Any]) -> None:
    """``compute_loss(labels, logits)`` must return the mean sparse cross-entropy of the
    logits: one number."""
    filled(compute_loss, "compute_loss")
    import tensorflow as tf

    rng = np.random.default_rng(5)
    vocab = 7
    labels = rng.integers(0, vocab, size=(4, 6))
    logits = (rng.normal(size=(4, 6, vocab)) * 3).astype("float32")
    got = to_array(call(compute_loss, tf.constant(labels), tf.constant(logits), what="compute_loss(labels, logits)",
                        hint="A Keras loss takes the labels first, then the logits."),
                   "compute_loss(labels, logits)", what="a number")
    if got.shape == labels.shape:
        fail(f"compute_loss returned one loss per character (shape {got.shape}): the TODO asks for one number, "
             f"their mean over batch and time (the training loop reports it and differentiates it).")
    if got.shape != ():
        fail(f"compute_loss returned shape {got.shape}: return one number, a scalar of shape () -- the mean over "
             f"batch and time, which float() in the cells below can read.")
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
    logits_t = tf.constant(logits)

    def traced(labels_in: Any, logits_in: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(logits_in)
            loss = tf.reduce_mean(compute_loss(labels_in, logits_in))
        return loss, tape.gradient(loss, logits_in)

    graph_loss, grad = call(tf.function(traced), tf.constant(labels), logits_t,
                            what="compute_loss inside a tf.function, under a GradientTape",
                            hint="The training step runs compute_loss in a graph and differentiates it: keep to "
                                 "TensorFlow operations (no .numpy(), float() or np.* on the tensors).")
    if grad is None:
        fail("The loss is not differentiable with respect to the logits (the tape found no path): keep to "
             "TensorFlow operations inside compute_loss, with no .numpy() or np.* on the tensors.")
    want_grad = (probs - np.eye(vocab)[labels]) / labels.size
    if not np.isclose(float(graph_loss), expected, rtol=1e-4, atol=1e-5) or not matches(
            np.asarray(grad), want_grad, rtol=1e-3, atol=1e-6):
        fail("Inside a tf.function compute_loss gives another value or gradient than when run eagerly: keep to "
             "TensorFlow operations on the tensors you are given.")
    ok(f"compute_loss is the mean cross-entropy from logits ({expected:.4f} nats on the test batch).")


def _tiny_sequence_model(seed: int) -> Any:
    """A small character model with dropout and batch norm, so training mode matters."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((None,), dtype="int32"), keras.layers.Embedding(5, 4), keras.layers.LSTM(6, return_sequences=True),
         keras.layers.BatchNormalization(momentum=0.5), keras.layers.Dropout(0.3), keras.layers.Dense(5)]
    )


def train_step(make_train_step: Callable[[Any, Any, Any], Callable[[Any, Any], Any]]) -> None:
    """``make_train_step(model, optimizer, loss_fn)`` must return ``step(x, y)`` that
    applies the gradients of ``loss_fn(y, model(x, training=True))`` to every trainable
    variable and returns the loss (checked on a small LSTM with dropout and batch norm
    against a reference step)."""
    filled(make_train_step, "make_train_step")
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(6)
    x = tf.constant(rng.integers(0, 5, size=(4, 7)), dtype=tf.int32)
    y = tf.constant(rng.integers(0, 5, size=(4, 7)), dtype=tf.int32)
    train_step_matches_reference(make_train_step, _tiny_sequence_model, x, y,
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
                 "tempered distribution instead, each id as often as its probability says (TensorFlow has a "
                 "function that draws from logits).")
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
    # Each row its own distribution: rows whose logits differ must be drawn differently.
    groups, per_group = len(base), 4_000
    varied = np.concatenate([np.tile(np.roll(base, shift), (per_group, 1)) for shift in range(groups)])
    got = _int_array(call(sample_next, tf.constant(varied), 1.0, what="sample_next(logits, 1.0)"),
                     "sample_next(logits, temperature)", "an array of ids").reshape(-1)
    if got.shape != (len(varied),):
        fail(f"sample_next returned {got.size} ids for {len(varied)} rows of logits: one id per row.")
    for shift in range(groups):
        freq = np.bincount(got[shift * per_group:(shift + 1) * per_group], minlength=len(base)) / per_group
        # 4,000 draws: a correct sampler stays within 0.05 of its row's distribution (about 5 standard errors)
        if 0.5 * np.abs(freq - np.exp(_log_softmax(np.roll(base, shift)))).sum() > 0.05:
            fail("Rows with different logits get ids drawn from the same distribution: draw each row's id from "
                 "that row's own logits (one draw per row, not several draws from one row).")
    # As wide as the notebook's vocabulary: float32 probabilities of 83 characters need not sum to
    # exactly 1, which some NumPy samplers refuse.
    wide = (np.random.default_rng(8).normal(size=(2_000, 83)) * 3).astype("float32")
    for temperature in (1.0, 0.6):
        label = f"sample_next(logits of 83 characters, {temperature})"
        got = _int_array(call(sample_next, tf.constant(wide), temperature, what=label, hint=(
            "The notebook's vocabulary has 83 characters: with that many, float32 probabilities do not sum to "
            "exactly 1, and NumPy's multinomial or choice may refuse them. Draw from the logits with TensorFlow.")),
            "sample_next(logits, temperature)", "an array of ids").reshape(-1)
        if got.shape != (len(wide),) or got.min() < 0 or got.max() >= wide.shape[1]:
            fail(f"{label} returned {got.size} ids from {int(got.min())} to {int(got.max())}; expected one id per "
                 f"row, from 0 to 82.")
    import keras

    small = tf.constant(np.tile(base, (200, 1)))
    first = _int_array(call(sample_next, small, 1.0, what="sample_next(logits, 1.0)"), "sample_next", "ids").reshape(-1)
    second = _int_array(call(sample_next, small, 1.0, what="sample_next(logits, 1.0)"), "sample_next", "ids").reshape(-1)
    if np.array_equal(first, second):
        fail("Two calls of sample_next on the same logits returned exactly the same 200 draws: a fixed seed "
             "inside sample_next (a stateless op with a constant seed?) repeats its draws, so every generated "
             "tune would follow the same path. Draw fresh random numbers at every call.")
    draws = []
    for _ in range(2):
        keras.utils.set_random_seed(11)
        draws.append(_int_array(call(sample_next, small, 1.0, what="sample_next(logits, 1.0)"), "sample_next",
                                "ids").reshape(-1))
    if not np.array_equal(*draws):
        fail("After the same global seed, sample_next draws differently: draw from TensorFlow's (or NumPy's) "
             "global random generator, which the notebook seeds, not from a fresh unseeded one.")
    ok("sample_next draws from softmax(logits / temperature) at temperatures 0.5, 1 and 2, fresh at each call.")


__all__ = ["batch_function", "loss_function", "sampling", "sequence_model", "train_step", "vectorize"]
