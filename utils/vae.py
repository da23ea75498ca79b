"""Variational-autoencoder helpers: binarised MNIST, the two loss terms written once as
the reference, the test-set negative ELBO, and the decoded latent grid.

Likelihoods are reported on **dynamically binarised** MNIST, the standard for VAEs since
Salakhutdinov & Murray (2008) and Burda et al. (2016): each training epoch sees a fresh
Bernoulli sample of every image (pixel ``p`` is 1 with probability ``p``), and the test
set is binarised once, with a fixed seed, so every model is scored on the same bits.
On grey-level targets the "cross-entropy" is not a log-likelihood and cannot be compared
with published numbers.

The notebook writes the KL term, the loss and the training step itself (they are lab
TODOs); :func:`negative_elbo` scores a trained encoder/decoder with the reference terms
below, independently of the learner's code.

Introduced in ``notebooks/05_vae.ipynb``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Seed of the one fixed binarisation of the test set.
TEST_BINARIZATION_SEED = 20_08


def binarize(images: np.ndarray, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """One Bernoulli sample of grey images in ``[0, 1]``: ``float32`` zeros and ones.

    >>> x = np.array([[0.0, 1.0, 0.5]])
    >>> binarize(x)[0, :2].tolist()
    [0.0, 1.0]
    >>> round(float(binarize(np.full((100, 100), 0.3)).mean()), 1)
    0.3
    """
    x = np.asarray(images, dtype="float32")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"binarize expects intensities in [0, 1], got {x.min():.3g}..{x.max():.3g}: divide by 255 first")
    return (np.random.default_rng(seed).random(x.shape, dtype="float32") < x).astype("float32")


def binarized_dataset(images: np.ndarray, batch_size: int, seed: int = 0) -> Any:
    """A ``tf.data`` pipeline of freshly binarised batches: shuffled every epoch, each
    image re-sampled every time it is seen (dynamic binarisation), full batches only.

    ``images`` are grey images in ``[0, 1]``, shape ``(n, 28, 28, 1)``.
    """
    import tensorflow as tf

    x = np.asarray(images, dtype="float32")
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (n, height, width, channels), got {x.shape}")
    rng = tf.random.Generator.from_seed(seed)

    def sample(batch: Any) -> Any:
        return tf.cast(rng.uniform(tf.shape(batch)) < batch, tf.float32)

    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=True).map(sample).prefetch(tf.data.AUTOTUNE)


def gaussian_kl(mean: Any, log_var: Any) -> Any:
    """``KL(N(mean, exp(log_var)) || N(0, I))`` per example, summed over the latent axis:
    ``-1/2 * sum(1 + log_var - mean**2 - exp(log_var))``.

    >>> abs(float(gaussian_kl(np.zeros((1, 4)), np.zeros((1, 4)))[0]))
    0.0
    """
    import tensorflow as tf

    mean, log_var = tf.convert_to_tensor(mean, tf.float32), tf.convert_to_tensor(log_var, tf.float32)
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def bernoulli_nll(x: Any, logits: Any) -> Any:
    """``-log p(x | logits)`` per image in nats, summed over every pixel (Bernoulli
    likelihood with ``p = sigmoid(logits)``, computed stably from the logits)."""
    import tensorflow as tf

    x, logits = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(x)[0], -1]), axis=1)


def negative_elbo(
    encoder: Any, decoder: Any, x: np.ndarray, batch_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """The mean negative ELBO of binarised images ``x`` in nats per image, with its two
    terms: ``{"neg_elbo", "reconstruction", "kl"}``.

    ``encoder(x)`` must return ``(mean, log_var)``; ``decoder(z)`` the pixel logits. One
    ``z`` is sampled per image, so the reconstruction term is an unbiased estimate; the
    KL term is exact.
    """
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(seed)
    rec, kl = [], []
    for i in range(0, len(x), batch_size):
        batch = tf.convert_to_tensor(x[i : i + batch_size], tf.float32)
        mean, log_var = encoder(batch, training=False)
        z = mean + tf.exp(0.5 * log_var) * generator.normal(tf.shape(mean))
        rec.append(bernoulli_nll(batch, decoder(z, training=False)).numpy())
        kl.append(gaussian_kl(mean, log_var).numpy())
    reconstruction, divergence = float(np.mean(np.concatenate(rec))), float(np.mean(np.concatenate(kl)))
    return {"neg_elbo": reconstruction + divergence, "reconstruction": reconstruction, "kl": divergence}


def latent_grid(decoder: Any, n: int = 15) -> np.ndarray:
    """Decode an ``n x n`` grid of points of a 2-D latent space (Kingma & Welling's
    "learned manifold" figure).

    The grid is evenly spaced in *probability*: its coordinates are the standard-normal
    quantiles of 1/(2n), 3/(2n), ..., 1 - 1/(2n), so each cell covers an equal share of
    the prior. Returns the pixel probabilities ``(n * n, 28, 28)``, row by row from the
    top (largest ``z_2``) -- feed it to :func:`utils.plots.image_grid` with ``ncols=n``.
    """
    from statistics import NormalDist

    import tensorflow as tf

    quantiles = [NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    z = np.array([[a, b] for b in reversed(quantiles) for a in quantiles], dtype="float32")
    return tf.sigmoid(decoder(z, training=False)).numpy().reshape(n * n, 28, 28)
