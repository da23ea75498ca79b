"""The notebook set-up in one call, and the notebook's closing cell.

Each notebook's setup cell ends with::

    from utils import session
    run = session.start("nb01")

A notebook that trains starts tracking where its training starts
(``experiment = run.track("keras-labs-03-cnn", parameters)``). Its closing cell gathers
what CI needs in one place: the floors the run must reach (``run.expect``), the headline
figures (``run.report``, printed as ``[metric] nb03/...`` lines and logged), and
``run.finish()``, which reports the notebook's run time and ends the experiment.

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

from utils import mode, results, seeding, versions


class RunBelowFloor(AssertionError):
    """A notebook's run did not reach a figure it must reach: its learning broke."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows the message alone: the figure and its floor are the whole story."""
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Session:
    """What :func:`start` set up, and the notebook's tracking and closing calls."""

    name: str
    seed: int
    fast: bool
    strategy: Any
    started: float = field(default_factory=time.perf_counter)
    experiment: Any = None

    def elapsed(self) -> float:
        """Seconds since :func:`start`."""
        return time.perf_counter() - self.started

    def track(self, project_name: str, parameters: dict[str, Any] | None = None) -> Any:
        """Start the notebook's experiment (Comet online, offline archive or disabled: see
        :mod:`utils.tracking`), log ``parameters`` and the mode, and return it."""
        from utils import tracking

        parameters = {**(parameters or {}), "mode": mode.mode_name(), "seed": self.seed}
        self.experiment = tracking.start_experiment(project_name, parameters=parameters)
        return self.experiment

    def report(self, name: str, value: float, unit: str = "") -> None:
        """Print ``[metric] <notebook>/<name> = value`` and log it to the experiment."""
        results.report(f"{self.name}/{name}", value, unit=unit, experiment=self.experiment)

    def expect(self, condition: bool, what: str) -> None:
        """Fail the cell (and so CI) unless ``condition`` holds; ``what`` says which
        figure and which floor, e.g. ``f"test accuracy {acc:.4f} >= 0.99"``."""
        if not condition:
            raise RunBelowFloor(
                f"{self.name} ({mode.mode_name()} mode): expected {what}. The run did not learn what it "
                f"should: look for a change in the code above, or re-run from the top."
            )

    def finish(self, experiment: Any = None) -> None:
        """Report ``<name>/run_time_s`` and end the experiment, if one was started
        (``experiment`` is for notebooks that started theirs with ``tracking`` directly)."""
        if experiment is not None:
            self.experiment = experiment
        self.report("run_time_s", self.elapsed(), unit="s")
        if self.experiment is not None:
            self.experiment.end()


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

    Prints one line: versions, mode, strategy -- and, on stderr, a warning naming the
    fix when TensorFlow or Keras is older than the course's floor (:mod:`utils.versions`).
    The run time that ``finish`` reports counts from here, TensorFlow's import included.
    ``seed`` defaults to :func:`utils.seeding.notebook_seed` (``LABS_SEED``, else 42).
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
    for line in versions.too_old(tf.__version__, keras.__version__):
        print(line, file=sys.stderr)  # a warning, not a crash: the learner learns the fix
    return Session(name=name, seed=seed, fast=fast, strategy=strategy, started=started)
