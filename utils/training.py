"""Training helpers shared by the notebooks that train: datasets, a custom training
loop that runs under any ``tf.distribute`` strategy, evaluation, throughput.

The custom loop in ``notebooks/03_cnn_mnist.ipynb`` is written out in the notebook;
these helpers are the parts that are the same everywhere (and are tested under
``MirroredStrategy`` over two CPUs in ``tests/test_training.py``).

Introduced in ``notebooks/03_cnn_mnist.ipynb``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def image_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    augment: Any = None,
) -> Any:
    """A ``tf.data`` pipeline: shuffle each epoch, batch (dropping the ragged last
    batch when shuffling, so every step has the same shape), optional augmentation
    layer applied in training mode, prefetch.

    ``augment`` is a Keras layer (or any callable taking ``training=``), for example
    ``keras.layers.RandomTranslation(0.1, 0.1, seed=0)``: each batch is transformed
    afresh every epoch. It runs on one batch at a time, in order, so that a seeded layer
    draws the same transformations for the same batches on every run (a parallel map
    would consume its random state in whatever order its threads finish); ``prefetch``
    still prepares the next batch while the model trains on this one.

    >>> import numpy as np
    >>> x, y = np.zeros((10, 28, 28, 1), "float32"), np.arange(10)
    >>> [tuple(images.shape) for images, labels in image_dataset(x, y, batch_size=4)]
    [(4, 28, 28, 1), (4, 28, 28, 1)]
    """
    import tensorflow as tf

    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=shuffle)
    if augment is not None:
        ds = ds.map(lambda a, b: (augment(a, training=True), b))  # sequential: reproducible draws
    return ds.prefetch(tf.data.AUTOTUNE)


_SELF_SCALING = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


def replica_loss(loss_fn: Callable[[Any, Any], Any], strategy: Any) -> Callable[[Any, Any], Any]:
    """Make a per-replica mean loss scale correctly under a ``tf.distribute`` strategy.

    With ``R`` replicas each sees ``batch_size / R`` examples and the optimizer *sums*
    their gradients, so each replica's mean loss must be divided by ``R`` for that sum to
    be the gradient of the mean over the global batch. Keras's own loss objects
    (``keras.losses.Loss`` with a mean reduction, the default) already do this when they
    run inside a strategy; any other loss function (``tf.reduce_mean(...)`` written by
    hand, a per-example loss averaged afterwards) is divided by ``R`` here. With one
    replica nothing changes.
    """
    import keras

    replicas = strategy.num_replicas_in_sync
    if replicas == 1 or (isinstance(loss_fn, keras.losses.Loss) and loss_fn.reduction in _SELF_SCALING):
        return loss_fn

    def scaled(y_true: Any, y_pred: Any) -> Any:
        return loss_fn(y_true, y_pred) / replicas

    return scaled


def distribute_step(step_fn: Callable[[Any, Any], Any], strategy: Any) -> Callable[[Any, Any], Any]:
    """Run ``step_fn(x, y)`` on every replica and return the global mean loss.

    ``step_fn`` returns its replica's (already ``1/R``-scaled) loss, so the sum over
    replicas is the mean. Feed it batches from ``strategy.experimental_distribute_dataset``.
    """
    import tensorflow as tf

    @tf.function
    def distributed(x: Any, y: Any) -> Any:
        per_replica = strategy.run(step_fn, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return distributed


def predict_probabilities(model: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities for ``x``; a softmax is applied when the model returns logits."""
    import keras

    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    is_prob = np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)
    return out if is_prob else np.asarray(keras.ops.softmax(out, axis=-1))


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Share of ``x`` whose most likely class is ``y``."""
    return float(np.mean(np.argmax(predict_probabilities(model, x, batch_size), axis=-1) == y))


class Stopwatch:
    """Wall-clock seconds of the timed blocks, summed (``with watch: ...``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start


def epoch_timer() -> Any:
    """A Keras callback that sums the seconds spent *training* (validation excluded),
    so ``fit`` and a custom loop can be compared in images per second.

    Read ``.seconds`` after ``fit``.
    """
    import keras

    class _EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds = 0.0
            self._start: float | None = None

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def _stop(self) -> None:
            if self._start is not None:
                self.seconds += time.perf_counter() - self._start
                self._start = None

        def on_test_begin(self, logs: Any = None) -> None:
            self._stop()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self._stop()

    return _EpochTimer()


def warmup_cosine(peak: float, total_steps: int, warmup_fraction: float = 0.1) -> Any:
    """Learning rate rising linearly from 0 to ``peak`` over the first
    ``warmup_fraction`` of training, then falling to 0 along a cosine."""
    import keras

    if total_steps < 2:
        raise ValueError("total_steps must be >= 2")
    warmup = max(1, int(total_steps * warmup_fraction))
    # Keras counts decay_steps *after* the warm-up.
    return keras.optimizers.schedules.CosineDecay(0.0, total_steps - warmup, warmup_target=peak, warmup_steps=warmup)


@dataclass
class LoopResult:
    """What :func:`train_with_early_stopping` did: steps run, seconds spent in the steps,
    the best validation score and the step it came from, and every evaluation."""

    steps: int
    seconds: float
    best: float
    best_step: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def train_with_early_stopping(
    step: Callable[[Any, Any], Any],
    batches: Iterable[tuple[Any, Any]],
    model: Any,
    evaluate: Callable[[], float],
    *,
    num_steps: int,
    eval_every: int,
    patience: int,
    train_metric: Callable[[float], float] = lambda loss: loss,
    live: Any = None,
    experiment: Any = None,
    unit: str = "",
) -> LoopResult:
    """Run ``step(x, y)`` on ``batches`` for up to ``num_steps`` steps, with early stopping.

    Every ``eval_every`` steps (and at the last one) the mean training loss of those steps
    (through ``train_metric``, e.g. nats to bits) and ``evaluate()`` -- a validation score,
    lower is better -- are printed, drawn on ``live`` (a :class:`utils.plots.LiveCurves`)
    and logged to ``experiment``. The best weights are kept in memory (no checkpoint file,
    so two runs at once cannot overwrite each other's) and restored at the end; training
    stops after ``patience`` evaluations without a better score. The seconds count the
    training steps only, not the evaluations.

    Introduced in ``notebooks/04_music_lstm.ipynb``; also used in ``notebooks/08_transformers.ipynb``.

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> scores = iter([3.0, 2.0, 2.5, 2.6])
    >>> result = train_with_early_stopping(lambda x, y: 0.5, ((0, 0) for _ in range(100)), model,
    ...     lambda: next(scores), num_steps=100, eval_every=10, patience=2)  # doctest: +ELLIPSIS
    step    10  train 0.500  validation 3.000  (best)  ... s
    step    20  train 0.500  validation 2.000  (best)  ... s
    step    30  train 0.500  validation 2.500  ... s
    step    40  train 0.500  validation 2.600  ... s
    stopped after 40 steps: no better validation score in 2 evaluations; restored the weights of step 20
    >>> result.steps, result.best, result.best_step, result.stopped_early
    (40, 2.0, 20, True)
    """
    if num_steps < 1 or eval_every < 1 or patience < 1:
        raise ValueError("num_steps, eval_every and patience must all be >= 1")
    best, best_step, best_weights, since_best = float("inf"), 0, None, 0
    losses: list[float] = []
    history: list[dict[str, float]] = []
    clock = Stopwatch()
    number, stopped = 0, False
    for number, (x, y) in enumerate(batches, start=1):
        with clock:
            losses.append(float(step(x, y)))
        if number % eval_every and number != num_steps:
            continue
        train_value = train_metric(float(np.mean(losses[-eval_every:])))
        val_value = float(evaluate())
        history.append({"step": number, "train": train_value, "validation": val_value})
        if live is not None:
            live.update(train=train_value, validation=val_value)
        if experiment is not None:
            experiment.log_metrics({"train": train_value, "validation": val_value}, step=number)
        improved = val_value < best
        if improved:
            best, best_step, since_best = val_value, number, 0
            best_weights = [w.copy() for w in model.get_weights()]
        else:
            since_best += 1
        print(f"step {number:5d}  train {train_value:.3f}  validation {val_value:.3f}{unit}"
              f"{'  (best)' if improved else ''}  {clock.seconds:4.0f} s")
        if since_best >= patience:
            stopped = True
            break
        if number >= num_steps:
            break
    if number == 0:
        raise ValueError("batches yielded nothing to train on")
    if best_weights is not None:
        model.set_weights(best_weights)
    why = f"no better validation score in {patience} evaluations" if stopped else "all steps done"
    print(f"stopped after {number} steps: {why}; restored the weights of step {best_step}")
    return LoopResult(number, clock.seconds, best, best_step, stopped, history)
