"""Seeding, done once per notebook through one call.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.

>>> import numpy as np
>>> _ = set_seed(7); a = np.random.rand()
>>> _ = set_seed(7); b = np.random.rand()
>>> a == b
True
"""

from __future__ import annotations

import os
import random

import numpy as np

#: The seed every notebook uses unless ``LABS_SEED`` says otherwise.
DEFAULT_SEED = 42

#: The environment variable that re-runs a notebook under another seed (the seeds
#: benchmark sets it; a learner can too).
SEED_ENV = "LABS_SEED"


def notebook_seed(default: int = DEFAULT_SEED) -> int:
    """The seed a notebook runs under: ``LABS_SEED`` when set, else ``default``.

    >>> import os
    >>> saved = os.environ.pop(SEED_ENV, None)
    >>> notebook_seed()
    42
    >>> os.environ[SEED_ENV] = "3"; notebook_seed()
    3
    >>> os.environ[SEED_ENV] = "three"; notebook_seed()
    Traceback (most recent call last):
    ...
    ValueError: LABS_SEED='three' is not a seed: set it to a non-negative whole number, or unset it.
    >>> _ = os.environ.pop(SEED_ENV) if saved is None else os.environ.update(LABS_SEED=saved)
    """
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{SEED_ENV}={raw!r} is not a seed: set it to a non-negative whole number, or unset it.")
    return int(raw)


def set_seed(seed: int = DEFAULT_SEED) -> int:
    """Seed Python's ``random``, NumPy, TensorFlow and Keras; return the seed.

    ``keras.utils.set_random_seed`` seeds all three frameworks at once; it is called
    when Keras is importable, otherwise Python and NumPy are seeded directly.
    ``PYTHONHASHSEED`` is also set so that subprocesses hash strings the same way.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a hard dependency of the labs
        return seed
    keras.utils.set_random_seed(seed)
    return seed
