"""Checks of notebook 04 accept correct answers written in different ways and reject the
classic mistakes: targets not shifted or shifted the wrong way, wrong batch shapes, a
model without return_sequences, probabilities passed to a from-logits loss, argmax
where sampling is asked for, the temperature applied the wrong way."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils.checks import TodoNotDone, music
from utils.text import Vocabulary

VOCAB = Vocabulary.from_text("X:1\nT:Tune\nM:6/8\nL:1/8\nK:D\n|:dAF ABc|d2e fga|]!\n^=_,'/(3>")
C2I = VOCAB.char2idx


def unfilled(*args, **kwargs):
    raise NotImplementedError("TODO 9")


@pytest.mark.parametrize(
    "check", [music.vectorize, music.batch_function, music.sequence_model, music.loss_function,
              music.train_step, music.sampling]
)
def test_every_check_reports_an_unfilled_todo(check):
    args = {music.vectorize: (unfilled, C2I), music.sequence_model: (unfilled, 10)}.get(check, (unfilled,))
    with pytest.raises(TodoNotDone, match="TODO 9"):
        check(*args)


# --- vectorisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "vectorize",
    [
        lambda s: np.array([C2I[c] for c in s]),
        lambda s: np.array([C2I[c] for c in s], dtype=np.int32),
        lambda s: np.fromiter((C2I[c] for c in s), dtype=np.int64, count=len(s)),
        lambda s: np.vectorize(C2I.get)(np.array(list(s))),
        lambda s: np.array(list(map(C2I.__getitem__, s))),
    ],
)
def test_vectorize_accepts(vectorize, capsys):
    music.vectorize(vectorize, C2I)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "vectorize, fragment",
    [
        (lambda s: np.array([C2I[c] + 1 for c in s]), "off by one"),
        (lambda s: np.array([sorted(set(s)).index(c) for c in s]), "vocabulary built from the text"),
        (lambda s: np.array(list(s)), "expected integers"),
        (lambda s: np.array([C2I[c] for c in s[:-1]]), "characters were dropped"),
        (lambda s: np.array([C2I[c] for c in s[1:]]), "characters were dropped"),
        (lambda s: np.array([C2I[c] for c in s.strip()]), "newlines and spaces too"),
        (lambda s: np.array([C2I[c] for c in s if c != "\n"]), "first one missing is '\\n'"),
        (lambda s: np.array([C2I[c] for c in s if not c.isspace()]), "characters were dropped"),
        (lambda s: np.array([C2I[c] for c in dict.fromkeys(s)]), "characters were dropped"),
        (lambda s: np.array(sorted(C2I[c] for c in s)), "got id"),
        (lambda s: [C2I[c] for c in s], "Python list"),
        (lambda s: tf.constant([C2I[c] for c in s]), "NumPy array"),
        (lambda s: np.array([[C2I[c] for c in s]]), "flat array"),
        (lambda s: None, "is None"),
    ],
)
def test_vectorize_rejects(vectorize, fragment, rejects):
    rejects(music.vectorize, vectorize, C2I, fragment=fragment)


# --- batches ---------------------------------------------------------------------------


def batch_choice(encoded, seq_length, batch_size):
    starts = np.random.choice(len(encoded) - seq_length, batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def batch_fancy_index(encoded, seq_length, batch_size):
    starts = np.random.randint(0, len(encoded) - seq_length, size=(batch_size, 1))
    idx = starts + np.arange(seq_length)
    return encoded[idx], encoded[idx + 1]


def batch_tf(encoded, seq_length, batch_size):
    starts = tf.random.uniform([batch_size], 0, len(encoded) - seq_length, dtype=tf.int32)
    idx = starts[:, None] + tf.range(seq_length)[None, :]
    return tf.gather(encoded, idx), tf.gather(encoded, idx + 1)


def batch_randint_inclusive(encoded, seq_length, batch_size):
    rng_starts = [random.randint(0, len(encoded) - seq_length - 1) for _ in range(batch_size)]
    x = np.array([encoded[i : i + seq_length] for i in rng_starts])
    return x, np.array([encoded[i + 1 : i + seq_length + 1] for i in rng_starts])


def batch_lists(encoded, seq_length, batch_size):
    starts = [np.random.randint(len(encoded) - seq_length) for _ in range(batch_size)]
    return ([list(encoded[i : i + seq_length]) for i in starts], [list(encoded[i + 1 : i + seq_length + 1]) for i in starts])


@pytest.mark.parametrize("get_batch", [batch_choice, batch_fancy_index, batch_tf, batch_randint_inclusive])
def test_batch_accepts(get_batch, capsys):
    music.batch_function(get_batch)
    assert "[ok]" in capsys.readouterr().out


def not_shifted(encoded, seq_length, batch_size):
    x, _ = batch_choice(encoded, seq_length, batch_size)
    return x, x.copy()


def shifted_backwards(encoded, seq_length, batch_size):
    starts = np.random.choice(np.arange(1, len(encoded) - seq_length), batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i - 1 : i + seq_length - 1] for i in starts]))


def shifted_two(encoded, seq_length, batch_size):
    starts = np.random.choice(len(encoded) - seq_length - 2, batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 2 : i + seq_length + 2] for i in starts]))


def transposed(encoded, seq_length, batch_size):
    x, y = batch_choice(encoded, seq_length, batch_size)
    return x.T, y.T


def fixed_starts(encoded, seq_length, batch_size):
    starts = np.arange(batch_size) % 3
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def only_first_half(encoded, seq_length, batch_size):
    starts = np.random.choice(len(encoded) // 2, batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def strided(encoded, seq_length, batch_size):
    starts = np.random.choice(len(encoded) - 2 * seq_length, batch_size)
    return (np.stack([encoded[i : i + 2 * seq_length : 2] for i in starts]),
            np.stack([encoded[i + 1 : i + 2 * seq_length + 1 : 2] for i in starts]))


def last_start_unreachable(encoded, seq_length, batch_size):
    starts = np.random.randint(0, len(encoded) - seq_length - 1, size=batch_size)  # excludes the last start
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def first_start_unreachable(encoded, seq_length, batch_size):
    starts = np.random.randint(1, len(encoded) - seq_length, size=batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def past_the_end(encoded, seq_length, batch_size):
    starts = np.random.randint(0, len(encoded) - seq_length + 1, size=batch_size)  # one start too many
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def one_start_per_batch(encoded, seq_length, batch_size):
    i = np.random.randint(0, len(encoded) - seq_length)
    return (np.stack([encoded[i : i + seq_length]] * batch_size), np.stack([encoded[i + 1 : i + seq_length + 1]] * batch_size))


def fixed_seed(encoded, seq_length, batch_size):
    starts = np.random.default_rng(0).integers(0, len(encoded) - seq_length, size=batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def one_window(encoded, seq_length, batch_size):
    x, y = batch_choice(encoded, seq_length, batch_size)
    return x[0], y[0]


def starts_drawn_from_the_text(encoded, seq_length, batch_size):
    """np.random.choice on the text draws values (character ids), not positions."""
    starts = np.random.choice(encoded[: len(encoded) - seq_length], batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def starts_without_replacement(encoded, seq_length, batch_size):
    starts = np.random.choice(len(encoded) - seq_length, batch_size, replace=False)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def unseeded_generator_starts(encoded, seq_length, batch_size):
    # a generator of its own: the notebook's seed no longer fixes the batches
    starts = np.random.default_rng().integers(0, len(encoded) - seq_length, batch_size)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def clipped_starts(encoded, seq_length, batch_size):
    # a draw over the whole text, with the starts that do not fit moved to the last one that does
    starts = np.minimum(np.random.randint(0, len(encoded), batch_size), len(encoded) - seq_length - 1)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def folded_starts(encoded, seq_length, batch_size):
    # a wider draw folded back into the range: the low starts come up twice as often
    last = len(encoded) - seq_length - 1
    starts = np.random.randint(0, 2 * last, batch_size) % (last + 1)
    return (np.stack([encoded[i : i + seq_length] for i in starts]),
            np.stack([encoded[i + 1 : i + seq_length + 1] for i in starts]))


def test_batch_accepts_distinct_starts_in_a_batch(capsys):
    music.batch_function(starts_without_replacement)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "get_batch, fragment",
    [
        (not_shifted, "y equals x"),
        (shifted_backwards, "wrong way"),
        (shifted_two, "shifted by 2"),
        (transposed, "expected (32, 12)"),
        (fixed_starts, "Only 3 different starts"),
        (only_first_half, "never started at [7] (the last start)"),
        (last_start_unreachable, "never started at [7] (the last start)"),
        (first_start_unreachable, "(the first start)"),
        (past_the_end, "last start whose target still fits"),
        (one_start_per_batch, "start at the same place"),
        (fixed_seed, "same batch"),
        (strided, "consecutive characters"),
        (one_window, "has shape (12,)"),
        (lambda e, s, b: batch_choice(e, s, b)[0], "return two arrays"),
        (batch_lists, "is a Python list"),
        (starts_drawn_from_the_text, "not a value taken from the text"),
        (clipped_starts, "should be equally likely"),
        (unseeded_generator_starts, "After the same global seed"),
        (folded_starts, "should be equally likely"),
    ],
)
def test_batch_rejects(get_batch, fragment, rejects):
    rejects(music.batch_function, get_batch, fragment=fragment)


# --- the model -------------------------------------------------------------------------


def lstm_model(vocab_size, embedding_dim, rnn_units, dropout=0.0, *, return_sequences=True, activation=None,
               bidirectional=False, recurrent=None, rates=None, units=None, emb=None, vocab=None):
    rnn = recurrent or layers.LSTM(units or rnn_units, return_sequences=return_sequences)
    if bidirectional:
        rnn = layers.Bidirectional(rnn)
    first, second = rates if rates is not None else (dropout / 2, dropout)
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        layers.Embedding(vocab or vocab_size, emb or embedding_dim),
        layers.Dropout(first),
        rnn,
        layers.Dropout(second),
        layers.Dense(vocab or vocab_size, activation=activation),
    ])


class SubclassedLSTM(keras.Model):
    def __init__(self, vocab_size, embedding_dim, rnn_units, dropout=0.0):
        super().__init__()
        self.embedding = layers.Embedding(vocab_size, embedding_dim)
        self.lstm = layers.LSTM(rnn_units, return_sequences=True)
        self.dropout = layers.Dropout(dropout)
        self.head = layers.Dense(vocab_size)

    def call(self, x, training=False):
        return self.head(self.dropout(self.lstm(self.embedding(x)), training=training))


def functional_lstm(vocab_size, embedding_dim, rnn_units, dropout=0.0):
    ids = keras.Input((None,), dtype="int32")
    h = layers.Dropout(dropout / 2)(layers.Embedding(vocab_size, embedding_dim)(ids))
    h = layers.Dropout(dropout)(layers.LSTM(rnn_units, return_sequences=True)(h))
    return keras.Model(ids, layers.Dense(vocab_size)(h))


def skip_connection_lstm(vocab_size, embedding_dim, rnn_units, dropout=0.0):
    """Causal and well-shaped, but not a chain: the generator, stepping layer after layer, cannot run it."""
    ids = keras.Input((None,), dtype="int32")
    e = layers.Embedding(vocab_size, embedding_dim)(ids)
    h = layers.Dropout(dropout)(layers.LSTM(rnn_units, return_sequences=True)(layers.Dropout(dropout / 2)(e)))
    return keras.Model(ids, layers.Dense(vocab_size)(layers.Concatenate()([h, e])))


def return_state_lstm(vocab_size, embedding_dim, rnn_units, dropout=0.0):
    ids = keras.Input((None,), dtype="int32")
    h, _, _ = layers.LSTM(rnn_units, return_sequences=True, return_state=True)(
        layers.Embedding(vocab_size, embedding_dim)(ids))
    return keras.Model(ids, layers.Dense(vocab_size)(layers.Dropout(dropout)(h)))


@pytest.mark.parametrize(
    "build",
    [
        lstm_model,
        lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                       layers.LSTM(r, return_sequences=True),
                                                       layers.Dropout(dropout), layers.LSTM(r, return_sequences=True),
                                                       layers.Dense(v)]),
        # dropout inside the LSTM instead of separate layers
        lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                       layers.LSTM(r, return_sequences=True, dropout=dropout),
                                                       layers.Dense(v)]),
        lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, rates=(0.0, dropout)),
        functional_lstm,
        # the generic RNN layer around an LSTM cell is an LSTM
        lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout,
                                                recurrent=layers.RNN(layers.LSTMCell(r), return_sequences=True)),
        # dropout of whole embedding channels: the generator skips it, as it skips Dropout
        lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                       layers.SpatialDropout1D(dropout / 2),
                                                       layers.LSTM(r, return_sequences=True),
                                                       layers.Dropout(dropout), layers.Dense(v)]),
    ],
)
def test_model_accepts(build, capsys):
    music.sequence_model(build, 20)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, return_sequences=False), "return_sequences=True"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, activation="softmax"), "probabilities"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, activation="relu"), "never negative"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, activation="sigmoid"), "never negative"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, activation="tanh"), "within [-1, 1]"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([lstm_model(v, e, r, dropout), layers.Activation("tanh")]),
         "within [-1, 1]"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, bidirectional=True), "sees the future"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([layers.Embedding(v, e), layers.Dense(r), layers.Dense(v)]),
         "no recurrent layer"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([layers.Embedding(v, e), layers.LSTM(r, return_sequences=True),
                                                        layers.Dense(v - 1)]), "expected (3, 9, 27)"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, vocab=20), "sized by the vocab_size argument"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, emb=64), "embedding_dim argument"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, units=256), "rnn_units argument"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, rates=(0.0, 0.0)), "no dropout is active"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, rates=(0.25, 0.5)), "a dropout rate is fixed"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, rates=(1 - dropout, 1 - dropout)),
         "not of keeping"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, rates=(dropout / 4, dropout / 2)),
         "the largest should be the dropout argument"),
        (lambda v, e, r, dropout=0.0: "model", "expected a keras model"),
        # what the next cells or the generator cannot use, or not the table's layers
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, recurrent=layers.GRU(r, return_sequences=True)),
         "the table asks for an LSTM"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout,
                                                 recurrent=layers.SimpleRNN(r, return_sequences=True)),
         "the table asks for an LSTM"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([layers.Embedding(v, e), layers.Dropout(dropout / 2),
                                                        layers.LSTM(r, return_sequences=True),
                                                        layers.Dropout(dropout), layers.Dense(v)]),
         "has no keras.Input"),
        (SubclassedLSTM, "has no keras.Input"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"),
                                                        layers.Lambda(lambda t: keras.ops.one_hot(t, v)),
                                                        layers.LSTM(r, return_sequences=True), layers.Dense(v)]),
         "no Embedding layer"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                        layers.LSTM(r, return_sequences=True),
                                                        layers.TimeDistributed(layers.Dense(v))]),
         "TimeDistributed"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                        layers.Dropout(dropout / 2),
                                                        layers.LSTM(r, return_sequences=True), layers.Dense(v),
                                                        layers.Dropout(dropout)]),
         "some logits come out exactly 0"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"),
                                                        layers.Embedding(v, e, mask_zero=True),
                                                        layers.LSTM(r, return_sequences=True), layers.Dense(v)]),
         "mask_zero=True"),
        (return_state_lstm, "return_state=True"),
        (skip_connection_lstm, "the table's chain"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(v, e),
                                                        layers.Conv1D(e, 3, padding="causal"),
                                                        layers.Dropout(dropout / 2),
                                                        layers.LSTM(r, return_sequences=True),
                                                        layers.Dropout(dropout), layers.Dense(v)]),
         "the table's chain"),
        (lambda v, e, r, dropout=0.0: lstm_model(v, e, r, dropout, rates=(dropout, dropout)), "dropout / 2"),
        (lambda v, e, r, dropout=0.0: keras.Sequential([keras.Input((100,)), layers.Embedding(v, e),
                                                        layers.Dropout(dropout / 2),
                                                        layers.LSTM(r, return_sequences=True),
                                                        layers.Dropout(dropout), layers.Dense(v)]),
         "Leave the time axis open"),
    ],
)
def test_model_rejects(build, fragment, rejects):
    rejects(music.sequence_model, build, 20, fragment=fragment)


# --- the loss --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compute_loss",
    [
        lambda y, z: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True)),
        lambda y, z: keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z),
        lambda y, z: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)),
        # probabilities, consistently
        lambda y, z: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, tf.nn.softmax(z))),
    ],
)
def test_loss_accepts(compute_loss, capsys):
    music.loss_function(compute_loss)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "compute_loss, fragment",
    [
        (lambda y, z: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, tf.nn.softmax(z), from_logits=True)),
         "softmax twice"),
        (lambda y, z: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, z)), "from_logits=True"),
        (lambda y, z: tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)), "summed"),
        (lambda y, z: tf.reduce_mean(keras.losses.mean_squared_error(tf.one_hot(y, 7), z)), "expected the mean"),
        (lambda y, z: keras.losses.sparse_categorical_crossentropy(z, y, from_logits=True), "labels first"),
        (lambda y, z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z), "one loss per character"),
        (lambda y, z: keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True), "their mean"),
        (lambda y, z: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z), axis=0),
         "returned shape (6,)"),
        (lambda y, z: tf.reduce_mean(tf.reshape(keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True),
                                                [-1]), keepdims=True), "a scalar of shape ()"),
        # a graph cut by .numpy(): right value eagerly, but not inside the training step's tf.function
        (lambda y, z: np.mean(keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True).numpy()),
         "inside a tf.function"),
        (lambda y, z: tf.constant(np.mean(keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True)))
         if tf.executing_eagerly() else tf.stop_gradient(tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
             y, z, from_logits=True))), "not differentiable"),
    ],
)
def test_loss_rejects(compute_loss, fragment, rejects):
    rejects(music.loss_function, compute_loss, fragment=fragment)


# --- the training step -----------------------------------------------------------------


def step_factory(*, training=True, apply=True, sign=1.0, subset=False, compiled=True, softmax=False, swapped=False,
                 returns="loss", twice=False):
    def make_train_step(model, optimizer, loss_fn):
        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=training)
                # a softmax written out: Keras undoes tf.nn.softmax before a from-logits loss inside a
                # tf.function (it reads the logits back from the Softmax op), but not this one
                exp = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
                outputs = exp / tf.reduce_sum(exp, axis=-1, keepdims=True) if softmax else logits
                loss = loss_fn(outputs, y) if swapped else loss_fn(y, outputs)
                signed = sign * loss
            variables = model.trainable_variables[:2] if subset else model.trainable_variables
            grads = tape.gradient(signed, variables)
            if apply:
                optimizer.apply_gradients(zip(grads, variables))
            if twice:
                optimizer.apply_gradients(zip(grads, variables))
            return {"loss": loss, "logits": logits, "none": None, "pair": (loss, logits)}[returns]

        return tf.function(train_step) if compiled else train_step

    return make_train_step


def step_with_keras_ops(model, optimizer, loss_fn):
    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
        return loss

    return train_step


def step_per_example_loss(model, optimizer, loss_fn):
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True), from_logits=True)
            loss = tf.reduce_mean(loss, axis=-1)
            mean = tf.reduce_mean(loss)
        optimizer.apply_gradients(zip(tape.gradient(mean, model.trainable_variables),
                                      model.trainable_variables))
        return loss

    return train_step


def step_summed_loss(model, optimizer, loss_fn):
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            total = loss * tf.cast(tf.shape(x)[0], loss.dtype)
        optimizer.apply_gradients(zip(tape.gradient(total, model.trainable_variables), model.trainable_variables))
        return loss

    return train_step


def step_with_numpy(model, optimizer, loss_fn):
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return float(loss.numpy())

    return train_step


def step_outside_tape(model, optimizer, loss_fn):
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pass
        loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    return train_step


def step_unrolled(model, optimizer, loss_fn):
    """Correct, written differently: keras.ops, the gradients paired in a Python loop, apply()."""
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            predictions = model(x, training=True)
            loss = loss_fn(y, predictions)
        variables = model.trainable_weights
        grads = [tape.gradient(loss, v) for v in variables] if False else tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return keras.ops.convert_to_tensor(loss)

    return train_step


@pytest.mark.parametrize("make", [step_factory(), step_with_keras_ops, step_unrolled])
def test_train_step_accepts(make, capsys):
    music.train_step(make)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, fragment",
    [
        (step_factory(apply=False), "have not changed"),
        (step_factory(sign=-1.0), "uphill"),
        (step_factory(subset=True), "never changed"),
        (step_factory(training=False), "call the model with training=True"),
        (step_factory(softmax=True), "softmax was applied"),
        # the training loop runs the step inside a tf.function: an uncompiled step may work eagerly and fail there
        (step_factory(compiled=False), "plain Python function"),
        (lambda m, o, l: tf.function(step_factory()(m, o, l).python_function, jit_compile=True), "jit_compile=True"),
        (step_factory(swapped=True), "the labels come first"),
        (step_factory(returns="logits"), "looks like the model's outputs"),
        (step_factory(returns="none"), "returned None"),
        (step_factory(returns="pair"), "Python tuple"),
        (step_factory(twice=True), "twice"),
        (step_per_example_loss, "one loss per example"),
        (step_summed_loss, "summed loss"),
        (step_with_numpy, "cut the graph"),
        (step_outside_tape, "recorded no path"),
    ],
)
def test_train_step_rejects(make, fragment, rejects):
    rejects(music.train_step, make, fragment=fragment)


# --- sampling --------------------------------------------------------------------------


def sample_numpy(logits, temperature):
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = np.random.rand(len(p), 1)
    return (p.cumsum(axis=1) < u).sum(axis=1)


def sample_unseeded_generator(logits, temperature):
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = np.random.default_rng().random((len(p), 1))  # a fresh generator that no seed reaches
    return (p.cumsum(axis=1) < u).sum(axis=1)


@pytest.mark.parametrize(
    "sample_next",
    [
        lambda z, t: tf.random.categorical(z / t, num_samples=1)[:, 0],
        lambda z, t: tf.squeeze(tf.random.categorical(tf.math.divide(z, t), 1), axis=-1),
        lambda z, t: tf.random.categorical(z / t, 1),  # (batch, 1) is accepted too
        lambda z, t: keras.random.categorical(z / t, 1)[:, 0],
        sample_numpy,
    ],
)
def test_sampling_accepts(sample_next, capsys):
    music.sampling(sample_next)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "sample_next, fragment",
    [
        (lambda z, t: tf.argmax(z / t, axis=-1), "argmax"),
        (lambda z, t: tf.random.categorical(z * t, 1)[:, 0], "multiplies the logits"),
        (lambda z, t: tf.random.categorical(z, 1)[:, 0], "not used"),
        (lambda z, t: tf.random.categorical(tf.nn.softmax(z / t), 1)[:, 0], "not probabilities"),
        (lambda z, t: tf.random.categorical(z / t, 2), "returned shape"),
        (lambda z, t: tf.random.uniform([z.shape[0]], 0, 5, dtype=tf.int64), "expected softmax"),
        (lambda z, t: tf.random.categorical(z / t, 1)[:, 0] + 3, "outside 0..4"),
        (lambda z, t: tf.random.categorical(z / t, 1)[:, 0].numpy().astype("float32"), "expected integers"),
        (lambda z, t: tf.random.stateless_categorical(z / t, 1, seed=[1, 2])[:, 0], "same 200 draws"),
        (lambda z, t: tf.random.categorical(z / t, 1, seed=7)[:, 0] if False else
         keras.random.categorical(z / t, 1, seed=7)[:, 0], "same 200 draws"),
        (sample_unseeded_generator, "global random generator"),
        # probabilities through NumPy's multinomial: fine for 5 classes, refused for 83 in float32
        (lambda z, t: np.array([np.argmax(np.random.multinomial(1, row))
                                for row in tf.nn.softmax(z / t).numpy()]), "83 characters"),
        # num_samples taken for the batch: every stream's id drawn from the first row's logits
        (lambda z, t: tf.random.categorical(z[:1] / t, tf.shape(z)[0])[0], "that row's own logits"),
        (lambda z, t: tf.random.categorical(tf.reduce_mean(z, axis=0, keepdims=True) / t, tf.shape(z)[0])[0],
         "that row's own logits"),
    ],
)
def test_sampling_rejects(sample_next, fragment, rejects):
    rejects(music.sampling, sample_next, fragment=fragment)
