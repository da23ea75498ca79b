"""Helpers for the Keras 3 / TensorFlow course-lab notebooks.

One module per concern; import the one you need (``from utils import data``).
Importing this package is cheap: TensorFlow is only imported by the modules that use it.

- ``utils.mode``          -- the fast-mode switch ``LABS_FAST`` (read in one place)
- ``utils.seeding``       -- one call that seeds Python, NumPy, TensorFlow and Keras; ``LABS_SEED``
- ``utils.hardware``      -- picks a ``tf.distribute`` strategy (TPU, several GPUs, default)
- ``utils.versions``      -- the supported Python/TensorFlow/Keras versions and the warning below them
- ``utils.session``       -- the notebook's setup call and its closing cell (floors, figures, run time)
- ``utils.data``          -- shipped data sets, verified by checksum
- ``utils.plots``         -- training curves, image grids, heat-maps (headless-safe)
- ``utils.tracking``      -- Comet experiments: online, offline archive or disabled
- ``utils.results``       -- headline figures in one parseable line format
- ``utils.training``      -- datasets, distributed steps, schedules, accuracy, timers
- ``utils.stats``         -- the uncertainty of a measured rate (Wilson interval)
- ``utils.models``        -- the models several notebooks build (the MNIST CNN, the character LSTM)
- ``utils.text``          -- character-level text: the tune split, vocabulary, bits per character, sampling
- ``utils.abc``           -- reads ABC tunes and decides which texts are playable tunes
- ``utils.music``         -- ABC to MIDI to sound, played inline
- ``utils.vae``           -- the VAE's reference terms and its negative ELBO in nats
- ``utils.scoring``       -- a classifier's verdict on generated digits (score, Fréchet distance)
- ``utils.normalization`` -- batch norm with exact second derivatives (for gradient penalties)
- ``utils.attention``     -- reference attention: masks, heads, positional encodings
- ``utils.checks``        -- the lab checks, one module per lesson

Course tooling (the lab generator, the notebook runner, the results page) is in ``tools/``.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

#: The repository root (the folder that holds ``utils/``, ``data/``, ``notebooks/``).
ROOT: Path = Path(__file__).resolve().parent.parent

#: Where the course is published; the notebooks' Colab links and setup cells use it
#: (a test keeps them in agreement). Change it here and in the notebooks on a fork.
REPO_URL = "https://github.com/keras-course-labs/keras-course-labs"
