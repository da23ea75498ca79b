"""utils.vae: the binarisation, the two reference loss terms and the test-set bound
agree with direct computations, and refuse input they cannot score."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from utils import vae


def test_binarize_is_bernoulli_and_reproducible():
    grey = np.full((200, 28, 28), 0.25, dtype="float32")
    a, b = vae.binarize(grey, seed=3), vae.binarize(grey, seed=3)
    assert set(np.unique(a)) <= {0.0, 1.0} and np.array_equal(a, b)
    assert abs(float(a.mean()) - 0.25) < 0.01
    assert not np.array_equal(a, vae.binarize(grey, seed=4))


def test_binarize_refuses_raw_pixels():
    with pytest.raises(ValueError, match="divide by 255"):
        vae.binarize(np.full((2, 28, 28), 255.0))


def test_dynamic_binarization_resamples_each_pass():
    grey = np.full((64, 28, 28, 1), 0.5, dtype="float32")
    ds = vae.binarized_dataset(grey, batch_size=64, seed=0)
    first, second = next(iter(ds)).numpy(), next(iter(ds)).numpy()
    assert first.shape == (64, 28, 28, 1) and set(np.unique(first)) == {0.0, 1.0}
    assert not np.array_equal(np.sort(first.reshape(64, -1), 0), np.sort(second.reshape(64, -1), 0))


def test_gaussian_kl_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean, log_var = np.array([[0.7, -1.2]], "float32"), np.array([[0.3, -0.9]], "float32")
    z = mean + np.exp(0.5 * log_var) * rng.normal(size=(400_000, 2))
    log_q = -0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var))
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    assert float(vae.gaussian_kl(mean, log_var)[0]) == pytest.approx(float(np.mean(np.sum(log_q - log_p, 1))), rel=0.01)


def test_bernoulli_nll_is_minus_log_likelihood():
    x = np.array([[1.0, 0.0, 1.0]], "float32")
    logits = np.array([[2.0, -1.0, 0.0]], "float32")
    p = 1 / (1 + np.exp(-logits))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
    assert float(vae.bernoulli_nll(x, logits)[0]) == pytest.approx(expected, rel=1e-5)


def test_negative_elbo_of_a_known_model():
    """An encoder that always outputs the prior and a decoder with p = 0.5 everywhere:
    KL = 0 and -log p(x|z) = 784 log 2 for every image."""
    encoder_in = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(encoder_in)
    zeros = keras.layers.Lambda(lambda t: 0.0 * t[:, :4])(flat)
    encoder = keras.Model(encoder_in, [zeros, zeros])
    decoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(784, kernel_initializer="zeros"),
                                keras.layers.Reshape((28, 28, 1))])
    x = vae.binarize(np.random.default_rng(1).random((50, 28, 28, 1)).astype("float32"))
    scores = vae.negative_elbo(encoder, decoder, x, batch_size=16)
    assert scores["kl"] == pytest.approx(0.0, abs=1e-6)
    assert scores["neg_elbo"] == pytest.approx(784 * np.log(2), rel=1e-5)


def test_latent_grid_covers_the_prior_evenly():
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(784), keras.layers.Reshape((28, 28, 1))])
    images = vae.latent_grid(decoder, n=5)
    assert images.shape == (25, 28, 28) and 0 <= images.min() and images.max() <= 1
