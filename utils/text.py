"""Character-level text for the music notebook: a fixed tune split, the vocabulary,
text <-> integers, training batches, held-out bits per character, and sampling.

Introduced in ``notebooks/04_music_lstm.ipynb``; ``notebooks/08_transformers.ipynb`` reuses
the same split and measure so the LSTM and the transformer are compared on the same
held-out tunes.

>>> vocab = Vocabulary.from_text("abca")
>>> vocab.chars, vocab.encode("cab").tolist(), vocab.decode([2, 0])
(['a', 'b', 'c'], [2, 0, 1], 'ca')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: What separates two tunes in the training text (a blank line, as in the corpus).
TUNE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class TuneSplit:
    """Tunes split once, by a fixed permutation, into train / validation / test.

    ``validation`` chooses when to stop training; ``test`` is only used to report the
    held-out bits per character, so the reported figure was never used to pick anything.
    """

    train: list[str]
    validation: list[str]
    test: list[str]


def split_tunes(
    tunes: Sequence[str], test_fraction: float = 0.1, validation_fraction: float = 0.05, seed: int = 0
) -> TuneSplit:
    """Split ``tunes`` with a permutation fixed by ``seed`` (the same in every notebook).

    >>> s = split_tunes([f"X:{i}" for i in range(100)])
    >>> len(s.train), len(s.validation), len(s.test)
    (85, 5, 10)
    >>> split_tunes([f"X:{i}" for i in range(100)]).test == s.test
    True
    """
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise ValueError("fractions must be in (0, 1) and leave tunes for training")
    order = np.random.default_rng(seed).permutation(len(tunes))
    n_test = max(1, round(len(tunes) * test_fraction))
    n_val = round(len(tunes) * validation_fraction)
    pick = lambda idx: [tunes[i] for i in sorted(idx)]  # noqa: E731 - keep corpus order
    return TuneSplit(
        train=pick(order[n_test + n_val :]), validation=pick(order[n_test : n_test + n_val]), test=pick(order[:n_test])
    )


def join_tunes(tunes: Sequence[str]) -> str:
    """The tunes as one training text, a blank line after each (so a model learns where
    a tune ends)."""
    return "".join(t.strip() + TUNE_SEPARATOR for t in tunes)


@dataclass(frozen=True)
class Vocabulary:
    """The sorted set of characters, and the maps between characters and integers."""

    chars: list[str]

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def char2idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """``text`` as an ``int32`` array; an unknown character raises ``ValueError``."""
        lookup = self.char2idx
        try:
            return np.fromiter((lookup[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary of {len(self)} characters") from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def random_batch(
    encoded: np.ndarray, seq_length: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows of ``encoded``: inputs ``x`` and targets ``y``, where
    ``y`` is ``x`` shifted one character ahead. Both ``(batch_size, seq_length)``.

    The reference version of the notebook's batch TODO (the check compares with it).

    >>> x, y = random_batch(np.arange(10), 4, 2, np.random.default_rng(0))
    >>> bool((x[:, 1:] == y[:, :-1]).all() and (y == x + 1).all())
    True
    """
    if len(encoded) <= seq_length:
        raise ValueError(f"text of {len(encoded)} characters is too short for windows of {seq_length} + 1")
    starts = rng.integers(0, len(encoded) - seq_length, size=batch_size)
    idx = starts[:, None] + np.arange(seq_length)[None, :]
    return encoded[idx], encoded[idx + 1]


def tune_starts(encoded: np.ndarray, vocab: "Vocabulary") -> np.ndarray:
    """Where a window reads a tune of an encoded :func:`join_tunes` text from its very
    beginning, as generation does (primed with a blank line and ``X:``): the blank-line
    separator before every ``X:``, and 0 for the first tune.

    >>> joined = join_tunes(["X:1\\nK:G\\nabc", "X:2\\nK:D\\ndef"])
    >>> vocab = Vocabulary.from_text(joined)
    >>> starts = tune_starts(vocab.encode(joined), vocab)
    >>> starts.tolist(), repr(joined[starts[1]:starts[1] + 5])
    ([0, 11], "'\\\\n\\\\nX:2'")
    """
    encoded = np.asarray(encoded)
    marker = vocab.encode(TUNE_SEPARATOR + "X:")
    if len(encoded) < len(marker):
        return np.zeros(1, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(encoded, len(marker))
    separators = np.flatnonzero((windows == marker).all(axis=1))
    return np.concatenate([[0], separators]).astype(np.int64)


def scoring_windows(encoded: np.ndarray, seq_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``encoded`` into overlapping windows so that every character after the first is
    predicted exactly once, with at least ``seq_length // 2`` characters of context
    (except near the start).

    Returns ``(x, y, weight)``, each ``(n_windows, seq_length)``; ``weight`` is 1 where a
    prediction counts and 0 elsewhere (overlaps and padding).
    """
    n = len(encoded) - 1  # predictions to make
    if n < 1:
        raise ValueError("need at least two characters to score")
    half = max(1, seq_length // 2)
    xs, ys, ws = [], [], []
    start, scored_to = 0, 0
    while scored_to < n:
        stop = min(start + seq_length, n)
        x = np.zeros(seq_length, np.int32)
        y = np.zeros(seq_length, np.int32)
        w = np.zeros(seq_length, np.float32)
        x[: stop - start] = encoded[start:stop]
        y[: stop - start] = encoded[start + 1 : stop + 1]
        w[scored_to - start : stop - start] = 1.0
        xs.append(x), ys.append(y), ws.append(w)
        scored_to = stop
        start = stop - half if stop - half > start else stop
    return np.stack(xs), np.stack(ys), np.stack(ws)


def bits_per_char(
    model: Any, encoded: np.ndarray, seq_length: int, batch_size: int = 256, temperature: float = 1.0
) -> float:
    """Cross-entropy of ``model`` (returning logits) on ``encoded``, in bits per character.

    Every character is scored once with at least ``seq_length // 2`` characters of
    context (see :func:`scoring_windows`); dropout is off. With ``temperature`` the
    logits are divided by it first: the cross-entropy of the distribution that sampling
    at that temperature draws from (the temperature that minimises it on held-out text
    says whether the model is over- or under-confident).
    """
    import tensorflow as tf

    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    x, y, w = scoring_windows(np.asarray(encoded), seq_length)
    total, count = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size], training=False) / temperature
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[i : i + batch_size], logits=logits)
        total += float(tf.reduce_sum(nats * w[i : i + batch_size]))
        count += float(w[i : i + batch_size].sum())
    return total / count / math.log(2)


def reference_sample(logits: Any, temperature: float, seed: int | None = None) -> Any:
    """Draw one id per row from ``softmax(logits / temperature)`` (the reference of the
    sampling TODO)."""
    import tensorflow as tf

    return tf.random.categorical(tf.convert_to_tensor(logits, tf.float32) / temperature, 1, seed=seed)[:, 0]


def generate(
    model: Any,
    vocab: Vocabulary,
    start: str,
    num_streams: int,
    max_length: int,
    sample: Callable[[Any, float], Any],
    temperature: float = 1.0,
    stop: str = TUNE_SEPARATOR,
    context: int | None = None,
) -> list[str]:
    """Generate ``num_streams`` texts in parallel, each starting with ``start``.

    Two kinds of model, both returning logits for every position:

    - a ``Sequential`` stack of ``Embedding``, recurrent (``LSTM``/``GRU``), ``Dropout``
      and ``Dense`` layers, as trained in the music notebook: it is run one character at
      a time, carrying each recurrent layer's state;
    - any other model (a causal transformer): pass ``context``, the window length it was
      trained on. It reads the last ``context`` characters (fewer at the start) and the
      logits at the last position give the next character. Finished streams drop out
      of the batch, so the cost follows the streams still writing.

    A stream stops when it has produced ``stop`` (it is returned without it) or after
    ``max_length`` new characters (returned as it is: an unfinished tune).
    ``sample(logits, temperature)`` draws the next ids -- the notebook's sampling TODO.
    """
    if not start:
        raise ValueError("generate() needs a non-empty start text to prime the model, e.g. 'X:'")
    layers = [layer for layer in getattr(model, "layers", []) if type(layer).__name__ != "InputLayer"]
    if any(hasattr(layer, "cell") for layer in layers):
        return _generate_recurrent(model, layers, vocab, start, num_streams, max_length, sample, temperature, stop)
    if context is None:
        raise ValueError("this model has no recurrent layer: pass context=<the window length it was trained on>")
    return _generate_windowed(model, vocab, start, num_streams, max_length, sample, temperature, stop, context)


def _sample_loop(
    first_logits: Any,
    next_logits: Callable[[np.ndarray, np.ndarray], Any],
    vocab: Vocabulary,
    start: str,
    num_streams: int,
    max_length: int,
    sample: Callable[[Any, float], Any],
    temperature: float,
    stop: str,
    compact: bool,
) -> list[str]:
    """Draw characters until every stream has written ``stop`` or ``max_length``
    characters. ``next_logits(ids, keep)`` feeds the ids just drawn and returns the next
    logits: with ``compact``, only for the rows ``keep`` marks (finished streams leave
    the batch); otherwise for every stream (finished ones keep running, ignored)."""
    texts = [list(start) for _ in range(num_streams)]
    rows = np.arange(num_streams)  # which stream each row of the logits belongs to
    done = np.zeros(num_streams, bool)
    logits = first_logits
    for _ in range(max_length):
        ids = np.asarray(sample(logits, temperature)).reshape(-1).astype(np.int32)
        for row, i in enumerate(rows):
            if done[i]:
                continue
            texts[i].append(vocab.chars[ids[row]])
            if stop and "".join(texts[i][-len(stop) :]) == stop:
                done[i] = True
        if done.all():
            break
        keep = ~done[rows] if compact else np.ones(len(rows), bool)
        logits = next_logits(ids, keep)
        rows = rows[keep]
    out = ["".join(t) for t in texts]
    return [t[: -len(stop)] if stop and t.endswith(stop) else t for t in out]


def _generate_recurrent(
    model: Any, layers: list[Any], vocab: Vocabulary, start: str, num_streams: int, max_length: int,
    sample: Callable[[Any, float], Any], temperature: float, stop: str,
) -> list[str]:
    import keras
    import tensorflow as tf

    # dropout of any kind (SpatialDropout1D expects a time axis, which one step does not have)
    # and noise layers are the identity at inference: skipped
    identity_at_inference = tuple(getattr(keras.layers, name) for name in (
        "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout") if hasattr(keras.layers, name))

    def zero_state(layer: Any) -> list[Any]:
        size = layer.cell.state_size
        sizes = size if isinstance(size, (list, tuple)) else [size]
        return [tf.zeros((num_streams, int(s))) for s in sizes]

    @tf.function
    def step(ids: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        h = ids
        new_states = []
        r = 0
        for layer in layers:
            if hasattr(layer, "cell"):
                h, state = layer.cell(h, states[r], training=False)
                new_states.append(list(state) if isinstance(state, (list, tuple)) else [state])
                r += 1
            elif not isinstance(layer, identity_at_inference):  # noise layers: nothing to do when generating
                h = layer(h, training=False)
        return h, new_states

    states = [zero_state(layer) for layer in layers if hasattr(layer, "cell")]
    logits: Any = None
    for ch in vocab.encode(start):
        logits, states = step(tf.fill([num_streams], int(ch)), states)

    def next_logits(ids: np.ndarray, keep: np.ndarray) -> Any:
        nonlocal states
        out, states = step(tf.constant(ids), states)
        return out

    return _sample_loop(logits, next_logits, vocab, start, num_streams, max_length, sample, temperature, stop,
                        compact=False)


def _generate_windowed(
    model: Any, vocab: Vocabulary, start: str, num_streams: int, max_length: int,
    sample: Callable[[Any, float], Any], temperature: float, stop: str, context: int,
) -> list[str]:
    import tensorflow as tf

    if context < 1:
        raise ValueError(f"context must be at least 1, got {context}")
    bucket = min(32, context)  # window lengths grow in steps of 32: few traced shapes, little waste

    traced: dict[int, Any] = {}  # one graph per window width; the batch size may vary (streams leave)

    def last_logits(window: Any, position: Any) -> Any:
        width = int(window.shape[1])
        if width not in traced:
            traced[width] = tf.function(
                lambda w, p: tf.gather(model(w, training=False), p, axis=1),
                input_signature=[tf.TensorSpec((None, width), tf.int32), tf.TensorSpec((), tf.int32)],
            )
        return traced[width](window, position)

    buffer = np.zeros((num_streams, context), np.int32)
    prime = vocab.encode(start)[-context:]
    buffer[:, : len(prime)] = prime
    length = len(prime)

    def logits_now() -> Any:
        width = min(context, -(-length // bucket) * bucket)
        return last_logits(tf.constant(buffer[:, :width]), tf.constant(length - 1))

    def next_logits(ids: np.ndarray, keep: np.ndarray) -> Any:
        nonlocal buffer, length
        if length < context:
            buffer[:, length] = ids
            length += 1
        else:
            buffer = np.concatenate([buffer[:, 1:], ids[:, None]], axis=1)
        buffer = buffer[keep]
        return logits_now()

    return _sample_loop(logits_now(), next_logits, vocab, start, num_streams, max_length, sample, temperature, stop,
                        compact=True)
