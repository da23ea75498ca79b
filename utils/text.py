"""Character-level text for the music notebook: a fixed tune split, the vocabulary,
text <-> integers, training batches, held-out bits per character, and sampling.

Introduced in ``notebooks/04_music_lstm.ipynb``; the attention notebook reuses the same
split and measure so the two models are compared on the same held-out tunes.

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


def bits_per_char(model: Any, encoded: np.ndarray, seq_length: int, batch_size: int = 256) -> float:
    """Cross-entropy of ``model`` (returning logits) on ``encoded``, in bits per character.

    Every character is scored once with at least ``seq_length // 2`` characters of
    context (see :func:`scoring_windows`); dropout is off.
    """
    import tensorflow as tf

    x, y, w = scoring_windows(np.asarray(encoded), seq_length)
    total, count = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size], training=False)
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
) -> list[str]:
    """Generate ``num_streams`` texts in parallel, each starting with ``start``.

    ``model`` is a ``Sequential`` stack of ``Embedding``, recurrent (``LSTM``/``GRU``),
    ``Dropout`` and ``Dense`` layers, as trained in the notebook; it is run one character
    at a time, carrying each recurrent layer's state. A stream stops when it has produced
    ``stop`` (it is returned without it) or after ``max_length`` new characters
    (returned as it is: an unfinished tune). ``sample(logits, temperature)`` draws the
    next ids -- the notebook's sampling TODO.
    """
    import keras
    import tensorflow as tf

    if not start:
        raise ValueError("generate() needs a non-empty start text to prime the model, e.g. 'X:'")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    recurrent = [layer for layer in layers if hasattr(layer, "cell")]
    if not recurrent:
        raise ValueError("generate() needs a model with a recurrent layer (LSTM or GRU)")

    def zero_state(layer: Any) -> list[Any]:
        size = layer.cell.state_size
        sizes = size if isinstance(size, (list, tuple)) else [size]
        return [tf.zeros((num_streams, int(s))) for s in sizes]

    @tf.function
    def step(ids: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        h = ids
        new_states, r = [], 0
        for layer in layers:
            if hasattr(layer, "cell"):
                h, state = layer.cell(h, states[r], training=False)
                new_states.append(list(state) if isinstance(state, (list, tuple)) else [state])
                r += 1
            else:
                h = layer(h, training=False)
        return h, new_states

    states = [zero_state(layer) for layer in recurrent]
    prime = vocab.encode(start)
    logits = None
    for ch in prime:
        logits, states = step(tf.fill([num_streams], int(ch)), states)
    texts = [list(start) for _ in range(num_streams)]
    done = np.zeros(num_streams, bool)
    for _ in range(max_length):
        ids = np.asarray(sample(logits, temperature)).reshape(-1).astype(np.int32)
        for i in np.flatnonzero(~done):
            texts[i].append(vocab.chars[ids[i]])
            if stop and "".join(texts[i][-len(stop) :]) == stop:
                done[i] = True
        if done.all():
            break
        logits, states = step(tf.constant(ids), states)
    out = ["".join(t) for t in texts]
    return [t[: -len(stop)] if stop and t.endswith(stop) else t for t in out]
