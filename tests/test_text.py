"""Character-level text helpers (utils.text): the fixed split, vocabulary, batches,
held-out bits per character and step-by-step generation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils import data, text

SONGS = data.load_abc_songs()


def test_split_is_fixed_disjoint_and_complete():
    a, b = text.split_tunes(SONGS), text.split_tunes(SONGS)
    assert a == b
    assert (len(a.train), len(a.validation), len(a.test)) == (684, 40, 80)
    train, validation, test = set(a.train), set(a.validation), set(a.test)
    assert not train & test and not train & validation and not validation & test
    assert sorted(a.train + a.validation + a.test) == sorted(SONGS)
    assert text.split_tunes(SONGS, seed=1).test != a.test
    with pytest.raises(ValueError):
        text.split_tunes(SONGS, test_fraction=0.9, validation_fraction=0.2)


def test_vocabulary_round_trip_and_unknown_characters():
    corpus = text.join_tunes(SONGS)
    vocab = text.Vocabulary.from_text(corpus)
    assert len(vocab) == 83 and vocab.chars == sorted(vocab.chars)
    assert vocab.decode(vocab.encode(SONGS[5])) == SONGS[5]
    assert corpus.endswith(text.TUNE_SEPARATOR) and corpus.count("X:") == 804
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("abc€")


def test_random_batch_targets_are_shifted_by_one():
    encoded = np.arange(50)
    x, y = text.random_batch(encoded, 10, 64, np.random.default_rng(0))
    assert x.shape == y.shape == (64, 10)
    np.testing.assert_array_equal(y, x + 1)
    assert x.min() >= 0 and y.max() <= 49
    with pytest.raises(ValueError, match="too short"):
        text.random_batch(np.arange(5), 5, 1, np.random.default_rng(0))


@pytest.mark.parametrize("n, seq_length", [(2, 4), (10, 4), (11, 4), (1000, 100), (999, 37)])
def test_scoring_windows_score_every_character_once_with_context(n, seq_length):
    encoded = np.arange(n)  # each id is its position, so a target tells where it is
    x, y, w = text.scoring_windows(encoded, seq_length)
    assert x.shape == y.shape == w.shape and x.shape[1] == seq_length
    scored = np.concatenate([row_y[row_w > 0] for row_y, row_w in zip(y, w)])
    np.testing.assert_array_equal(np.sort(scored), np.arange(1, n))  # each target exactly once
    for row_x, row_y, row_w in zip(x, y, w):
        k = np.flatnonzero(row_w)
        np.testing.assert_array_equal(row_y[k], row_x[k] + 1)
        if row_x[0] > 0:  # not the first window: at least half a window of context
            assert k.min() >= seq_length // 2


def _tiny_lm(vocab_size: int = 5) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, 4),
                             keras.layers.LSTM(8, return_sequences=True), keras.layers.Dropout(0.5),
                             keras.layers.Dense(vocab_size)])


def test_bits_per_char_matches_a_direct_computation():
    model = _tiny_lm()
    encoded = np.random.default_rng(0).integers(0, 5, 60).astype("int32")
    logits = model(encoded[None, :-1], training=False)[0]
    direct = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(encoded[1:], logits))) / math.log(2)
    assert text.bits_per_char(model, encoded, seq_length=64) == pytest.approx(direct, rel=1e-5)
    # with short windows each character still counts once: close to the full-context figure
    assert text.bits_per_char(model, encoded, seq_length=20) == pytest.approx(direct, rel=0.05)


def test_bits_per_char_at_a_temperature_scores_the_tempered_distribution():
    model = _tiny_lm()
    encoded = np.random.default_rng(1).integers(0, 5, 60).astype("int32")
    logits = model(encoded[None, :-1], training=False)[0]
    for temperature in (0.5, 2.0):
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(encoded[1:], logits / temperature)
        direct = float(tf.reduce_mean(nats)) / math.log(2)
        got = text.bits_per_char(model, encoded, seq_length=64, temperature=temperature)
        assert got == pytest.approx(direct, rel=1e-5)
    assert text.bits_per_char(model, encoded, 64, temperature=1.0) == text.bits_per_char(model, encoded, 64)
    # a very high temperature flattens any model to the uniform distribution: log2(5) bits
    assert text.bits_per_char(model, encoded, 64, temperature=1e6) == pytest.approx(math.log2(5), rel=1e-4)
    with pytest.raises(ValueError, match="positive"):
        text.bits_per_char(model, encoded, 64, temperature=0.0)


def test_generate_carries_the_state_like_a_full_forward_pass():
    vocab = text.Vocabulary(list("ab\nXc"))
    model = _tiny_lm(len(vocab))
    seen = []

    def greedy(logits, temperature):
        seen.append(np.asarray(logits))
        return tf.argmax(logits, axis=-1)

    out = text.generate(model, vocab, start="X", num_streams=3, max_length=12, sample=greedy, stop="")
    assert len(out) == 3 and all(len(t) == 13 and t.startswith("X") for t in out)
    full = model(vocab.encode(out[0])[None, :-1], training=False)[0].numpy()
    step_by_step = np.stack([s[0] for s in seen])
    np.testing.assert_allclose(step_by_step, full, atol=1e-5)


@pytest.mark.parametrize("noise", [keras.layers.SpatialDropout1D(0.3), keras.layers.GaussianNoise(0.1)])
def test_generate_skips_layers_that_do_nothing_at_inference(noise):
    # SpatialDropout1D needs a time axis, which one step of generation does not have
    vocab = text.Vocabulary(list("ab\nXc"))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(len(vocab), 4), noise,
                              keras.layers.LSTM(8, return_sequences=True), keras.layers.Dense(len(vocab))])
    seen = []

    def greedy(logits, temperature):
        seen.append(np.asarray(logits))
        return tf.argmax(logits, axis=-1)

    out = text.generate(model, vocab, start="X", num_streams=2, max_length=6, sample=greedy, stop="")
    full = model(vocab.encode(out[0])[None, :-1], training=False)[0].numpy()
    np.testing.assert_allclose(np.stack([s[0] for s in seen]), full, atol=1e-5)


def test_generate_stops_each_stream_at_the_separator():
    vocab = text.Vocabulary(list("ab\nX"))
    model = _tiny_lm(len(vocab))
    newline = vocab.char2idx["\n"]

    def always_newline(logits, temperature):
        return tf.fill([tf.shape(logits)[0]], newline)

    out = text.generate(model, vocab, start="Xa", num_streams=2, max_length=50, sample=always_newline)
    assert out == ["Xa", "Xa"]
    with pytest.raises(ValueError, match="non-empty start"):
        text.generate(model, vocab, "", 1, 5, always_newline)
    with pytest.raises(ValueError, match="context="):
        text.generate(keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(4, 3),
                                       keras.layers.Dense(4)]), vocab, "X", 1, 5, always_newline)


def _causal_conv_lm(vocab_size):
    """A causal model without a recurrent layer: each position sees itself and the two before."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, 8),
                             keras.layers.Conv1D(8, 3, padding="causal", activation="tanh"),
                             keras.layers.Dense(vocab_size)])


@pytest.mark.parametrize("context", [64, 5])
def test_generate_with_a_window_matches_the_model_on_the_last_context(context):
    vocab = text.Vocabulary(list("ab\nXc"))
    model = _causal_conv_lm(len(vocab))
    seen = []

    def greedy(logits, temperature):
        seen.append(np.asarray(logits))
        return tf.argmax(logits, axis=-1)

    out = text.generate(model, vocab, start="Xa", num_streams=2, max_length=12, sample=greedy, stop="",
                        context=context)
    assert len(out) == 2 and all(len(t) == 14 for t in out)
    ids = vocab.encode(out[0])
    for step, logits in enumerate(seen):
        end = 2 + step  # characters known when this draw was made
        window = ids[max(0, end - context) : end]
        expected = model(window[None], training=False)[0, -1].numpy()
        np.testing.assert_allclose(logits[0], expected, atol=1e-5)


def test_generate_with_a_window_drops_finished_streams():
    vocab = text.Vocabulary(list("ab\nX"))
    model = _causal_conv_lm(len(vocab))
    newline, a = vocab.char2idx["\n"], vocab.char2idx["a"]
    batch_sizes = []

    def first_row_stops(logits, temperature):
        batch_sizes.append(int(tf.shape(logits)[0]))
        ids = np.full(batch_sizes[-1], a)
        if len(batch_sizes) in (2, 3):
            ids[0] = newline  # stream 0 writes "\n\n" on draws 2-3, then leaves the batch
        return ids

    out = text.generate(model, vocab, start="X", num_streams=3, max_length=6, sample=first_row_stops, context=4)
    assert out == ["Xa", "Xaaaaaa", "Xaaaaaa"]
    assert batch_sizes == [3, 3, 3, 2, 2, 2]


def test_tune_starts_find_every_tune_of_the_corpus():
    songs = data.load_abc_songs()
    joined = text.join_tunes(songs)
    vocab = text.Vocabulary.from_text(joined)
    starts = text.tune_starts(vocab.encode(joined), vocab)
    assert len(starts) == len(songs)
    # from each start, the text reads (a blank line, then) exactly the next tune
    for number in (0, 1, 400, len(songs) - 1):
        window = joined[starts[number]:starts[number] + 60]
        assert window.lstrip("\n").startswith(songs[number].strip()[:40])
