"""The notebook set-up in one call: quiet logs, seeds, mode, strategy, plot style.

Each notebook's setup cell ends with::

    from utils import session
    run = session.start("nb01")

and its last cell calls ``run.finish()`` to report the notebook's run time in the
one metric format.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from utils import mode, results, seeding


@dataclass
class Session:
    """What :func:`start` set up; ``finish()`` reports the run time."""

    name: str
    seed: int
    fast: bool
    strategy: Any
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since :func:`start`."""
        return time.perf_counter() - self.started

    def finish(self, experiment: Any = None) -> None:
        """Report ``<name>/run_time_s`` and end ``experiment`` if one is given."""
        results.report(f"{self.name}/run_time_s", self.elapsed(), unit="s", experiment=experiment)
        if experiment is not None:
            experiment.end()


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ INFO/WARNING start-up lines (must run before its import).

    oneDNN stays on: switching it off to hide its one import-time notice halves the
    speed of convolutions on a CPU.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Hold back what C++ code writes to file descriptor 2 (TensorFlow's absl start-up
    lines ignore ``TF_CPP_MIN_LOG_LEVEL``); replay it only if the block fails."""
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
        saved = os.dup(fd)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def start(name: str, seed: int | None = None, verbose: bool = True) -> Session:
    """Set up a notebook: quiet logs, seeds, plot style, distribution strategy.

    Prints one line: versions, mode, strategy. The run time that ``finish`` reports
    counts from here, TensorFlow's import included. ``seed`` defaults to
    :func:`utils.seeding.notebook_seed` (``LABS_SEED``, else 42).
    """
    seed = seeding.notebook_seed() if seed is None else seed
    started = time.perf_counter()
    quiet_tensorflow()
    with _native_stderr_captured():
        import keras
        import tensorflow as tf

        from utils import hardware

        tf.config.list_logical_devices()  # device start-up logs happen here, once
        strategy = hardware.get_strategy()
    import matplotlib

    # fit() warns that shuffle=True is ignored for a tf.data pipeline, which shuffles itself.
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
    tf.get_logger().setLevel("ERROR")
    matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "figure.figsize": (6, 3.5)})
    seeding.set_seed(seed)
    fast = mode.is_fast()
    if verbose:
        print(
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}; "
            f"{mode.mode_name()} mode, seed {seed}; {hardware.describe(strategy)}"
        )
    return Session(name=name, seed=seed, fast=fast, strategy=strategy, started=started)
