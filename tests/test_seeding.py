"""Seeding: one call repeats NumPy and TensorFlow; LABS_SEED picks another seed."""

from __future__ import annotations

import numpy as np
import pytest

from utils import seeding


def test_set_seed_makes_numpy_and_tensorflow_repeat():
    import tensorflow as tf

    seeding.set_seed(123)
    a = (np.random.rand(3), tf.random.normal((3,)).numpy())
    seeding.set_seed(123)
    b = (np.random.rand(3), tf.random.normal((3,)).numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        seeding.set_seed(-1)


def test_labs_seed_chooses_the_notebook_seed(monkeypatch):
    monkeypatch.delenv(seeding.SEED_ENV, raising=False)
    assert seeding.notebook_seed() == seeding.DEFAULT_SEED
    monkeypatch.setenv(seeding.SEED_ENV, " 7 ")
    assert seeding.notebook_seed() == 7
    for bad in ("-1", "1.5", "seven"):
        monkeypatch.setenv(seeding.SEED_ENV, bad)
        with pytest.raises(ValueError, match="LABS_SEED"):
            seeding.notebook_seed()
