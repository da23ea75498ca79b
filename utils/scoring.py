"""Sample-quality measures for generated MNIST digits, made with the project's own
classifier (no download, no hub model).

The classifier is the CNN of ``notebooks/03_cnn_mnist.ipynb`` (:func:`utils.models.mnist_cnn`)
trained on the 60,000 training images by :func:`train_classifier`; its weights ship as
``data/mnist_cnn.weights.h5`` (sha256-checked like every data file). Rebuild them with::

    python -m utils.scoring train

The measures (the same ones are computed on real test images, which gives their ceiling):

- **classifier score** -- the Inception score of Salimans et al. (2016) with this
  classifier in place of Inception: ``exp(E_x KL(p(y|x) || p(y)))``. It is 10 when every
  sample is classified with certainty and the ten digits are equally common, 1 when the
  predictions carry no information.
- **confident share** -- the share of samples whose top class has probability >= 0.9.
- **class histogram** -- how many samples the classifier puts in each class (mode coverage).
- **Fréchet distance** -- between Gaussians fitted to the classifier's 128-d penultimate
  features of two image sets (Heusel et al. 2017, "FID", with this classifier's features).

Introduced in ``notebooks/06_gan.ipynb``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils import data

#: The shipped classifier weights (made by :func:`train_classifier`).
WEIGHTS = "mnist_cnn.weights.h5"

#: A prediction at least this probable counts as "confident".
CONFIDENT = 0.9


class ClassifierError(RuntimeError):
    """The shipped classifier weights are missing, corrupt or do not fit the model."""


def load_classifier(data_dir: Path | None = None) -> Any:
    """The MNIST classifier with its shipped weights (checksum verified).

    Inputs are images ``(n, 28, 28, 1)`` in ``[0, 1]``; outputs are 10 logits.
    """
    from utils.models import mnist_cnn

    try:
        path = data.data_path(WEIGHTS, data_dir)
    except data.DataFileError as err:
        raise ClassifierError(f"{err} Or rebuild it (about 2 minutes): python -m utils.scoring train") from None
    model = mnist_cnn()
    try:
        model.load_weights(path)
    except (OSError, ValueError) as err:  # pragma: no cover - the checksum catches a damaged file
        raise ClassifierError(
            f"data/{WEIGHTS} does not fit utils.models.mnist_cnn ({err}). If the model was changed, "
            f"rebuild the weights with `python -m utils.scoring train` and update data.CHECKSUMS."
        ) from err
    return model


def _as_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype="float32")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
        raise ValueError(f"expected images of shape (n, 28, 28) or (n, 28, 28, 1), got {x.shape}")
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(
            f"images must be in [0, 1] (got {x.min():.2f}..{x.max():.2f}); map a tanh output with (x + 1) / 2"
        )
    return x


def probabilities(classifier: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The classifier's class probabilities ``(n, 10)`` for images in ``[0, 1]``."""
    import tensorflow as tf

    x = _as_images(images)
    out = [tf.nn.softmax(classifier(x[i : i + batch_size], training=False)).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype("float64")


def features(classifier: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The classifier's penultimate features (the 128 ReLU outputs before dropout)."""
    import keras

    x = _as_images(images)
    relus = [layer for layer in classifier.layers if isinstance(layer, keras.layers.ReLU)]
    extractor = keras.Model(classifier.inputs[0], relus[-1].output)
    out = [np.asarray(extractor(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype("float64")


def classifier_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))``: 10 for confident, balanced predictions, 1 for none.

    >>> round(classifier_score(np.eye(10)), 6)
    10.0
    >>> round(classifier_score(np.tile(np.eye(10)[3], (50, 1))), 6)  # one digit only
    1.0
    """
    p = np.asarray(probs, dtype="float64")
    marginal = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
    return float(np.exp(kl.mean()))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(n, d)``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

    The matrix square root is taken through symmetric eigendecompositions
    (``tr (S_a S_b)^(1/2) = tr (A S_b A)^(1/2)`` with ``A = S_a^(1/2)``), which stays real
    and stable where a general ``sqrtm`` would not.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4000, 3))
    >>> abs(round(frechet_distance(x, x), 6))
    0.0
    >>> round(frechet_distance(x, x + [2.0, 0.0, 0.0]), 3)  # shifted by 2: distance 4
    4.0
    """
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(middle, 0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


@dataclass(frozen=True)
class SampleScores:
    """The measures of one image set (see the module docstring)."""

    score: float
    confident: float
    counts: np.ndarray
    frechet: float

    @property
    def min_share(self) -> float:
        """The share of the rarest class."""
        return float(self.counts.min() / self.counts.sum())

    def line(self) -> str:
        """One printable line."""
        shares = " ".join(f"{c / self.counts.sum():.0%}" for c in self.counts)
        return (f"score {self.score:.2f}/10, confident {self.confident:.1%}, Fréchet {self.frechet:.2f}, "
                f"rarest digit {self.min_share:.1%} (shares {shares})")


def split_test_set(images: np.ndarray, size: int = 5_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random sets of ``size`` images: the **reference** that samples are
    compared with, and real images that play "a perfect generator" (the floor).

    Random, not the first and the last 5,000: MNIST's test set joins two populations of
    writers -- its first 5,000 digits come from NIST's SD-3 (Census Bureau employees), the
    last 5,000 from SD-1 (high-school students, harder to read) -- and the Fréchet
    distance between those halves (3.39 with the shipped classifier) measures that
    difference, not the floor that finite samples leave (0.27 to 0.37 for random splits).

    >>> first, second = split_test_set(np.arange(10)[:, None], size=5)
    >>> sorted(first[:, 0].tolist() + second[:, 0].tolist()) == list(range(10))
    True
    """
    if 2 * size > len(images):
        raise ValueError(f"cannot take two disjoint sets of {size} from {len(images)} images")
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[:size]], images[order[size : 2 * size]]


class Scorer:
    """Scores image sets against a reference set (the real test images) with one classifier.

    >>> scorer = Scorer(reference=data.load_mnist(normalize=True)[1][0][:2000])  # doctest: +SKIP
    >>> scorer(images).line()  # doctest: +SKIP
    """

    def __init__(self, reference: np.ndarray, classifier: Any = None) -> None:
        self.classifier = classifier if classifier is not None else load_classifier()
        self.reference_features = features(self.classifier, reference)

    def __call__(self, images: np.ndarray) -> SampleScores:
        probs = probabilities(self.classifier, images)
        return SampleScores(
            score=classifier_score(probs),
            confident=float(np.mean(probs.max(axis=1) >= CONFIDENT)),
            counts=np.bincount(probs.argmax(axis=1), minlength=10),
            frechet=frechet_distance(features(self.classifier, images), self.reference_features),
        )


def train_classifier(path: Path, epochs: int = 6, batch_size: int = 128, seed: int = 0) -> float:
    """Train :func:`utils.models.mnist_cnn` on the 60,000 training images (notebook 03's
    recipe: Adam, warm-up + cosine schedule from 3e-3, batch 128), save its weights to
    ``path`` and return its test accuracy."""
    import keras

    from utils import seeding, training
    from utils.models import mnist_cnn

    (x_train, y_train), (x_test, y_test) = data.load_mnist(normalize=True)
    seeding.set_seed(seed)
    model = mnist_cnn()
    steps = epochs * (len(x_train) // batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(training.warmup_cosine(3e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(training.image_dataset(x_train[..., None], y_train, batch_size, seed=seed), epochs=epochs, verbose=2)
    accuracy = training.accuracy(model, x_test[..., None], y_test)
    bare = mnist_cnn()  # an uncompiled copy: the file holds the weights only, no optimizer state
    bare.set_weights(model.get_weights())
    bare.save_weights(path)
    return accuracy


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.scoring train [--out PATH]``: rebuild the classifier weights."""
    parser = argparse.ArgumentParser(prog="python -m utils.scoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--out", type=Path, default=data.DATA_DIR / WEIGHTS)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    accuracy = train_classifier(args.out, epochs=args.epochs)
    print(f"test accuracy {accuracy:.4f}; wrote {args.out} (sha256 {data.sha256(args.out)})")
    print("Put that sha256 in utils/data.py CHECKSUMS and data/README.md.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
