"""Experiment tracking with Comet, in three modes with one call.

``start_experiment()`` returns a Comet experiment object; the three modes share
Comet's own API (``log_parameters``, ``log_metric``, ``log_metrics``, ``log_figure``,
``log_audio``, ``end`` ...):

- **online** -- ``COMET_API_KEY`` is set (environment or Colab secrets) and Comet's
  server answers within a few seconds;
- **offline** -- no key, or a key but no network: Comet's own offline archive (a ``.zip``
  you can upload later with ``comet upload``), written under ``runs/comet/`` or
  ``COMET_OFFLINE_DIRECTORY``. Nothing is lost when the network is down;
- **disabled** -- ``mode="disabled"`` or ``LABS_TRACKING=disabled``: every call is a no-op.

Privacy: the key is read from the environment or Colab's secrets only, never printed,
never written to the archive; Comet's source-code, stdout, git and environment logging
are switched off, so a key typed into a cell never leaves the machine.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from utils import ROOT

#: Environment variable that chooses the mode: ``auto`` (default), ``online``,
#: ``offline`` or ``disabled``.
MODE_ENV = "LABS_TRACKING"
MODES = ("auto", "online", "offline", "disabled")

#: Seconds allowed to decide whether Comet's server can be reached.
REACH_TIMEOUT_S = 3.0

DEFAULT_SERVER = "https://www.comet.com/clientlib/"

# Everything Comet would otherwise collect on its own: off.
_PRIVATE = dict(
    log_code=False,
    log_graph=False,
    auto_param_logging=False,
    auto_metric_logging=False,
    auto_weight_logging=False,
    auto_histogram_weight_logging=False,
    auto_histogram_gradient_logging=False,
    auto_histogram_activation_logging=False,
    auto_histogram_tensorboard_logging=False,
    auto_log_co2=False,
    parse_args=False,
    auto_output_logging=None,
    log_env_details=False,
    log_env_gpu=False,
    log_env_cpu=False,
    log_env_host=False,
    log_env_network=False,
    log_env_disk=False,
    log_git_metadata=False,
    log_git_patch=False,
    display_summary_level=0,
)


def _quiet_comet() -> None:
    """Keep Comet's INFO/WARNING chatter out of notebook outputs."""
    os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
    os.environ.setdefault("COMET_LOGGING_CONSOLE", "ERROR")
    logging.getLogger("comet_ml").setLevel(logging.ERROR)


def get_api_key() -> str | None:
    """The Comet API key from ``COMET_API_KEY`` or, in Colab, from its secrets.

    Returns ``None`` when there is none. The key is never printed.
    """
    key = os.environ.get("COMET_API_KEY", "").strip()
    if key:
        return key
    try:  # Colab's secrets panel ("key" icon on the left)
        from google.colab import userdata  # type: ignore[import-not-found]

        key = (userdata.get("COMET_API_KEY") or "").strip()
    except Exception:  # not Colab, no such secret, or access not granted
        return None
    return key or None


def server_reachable(url: str | None = None, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to Comet's server opens within ``timeout`` seconds.

    Name resolution can block far longer than a socket timeout on a machine without
    network, so the attempt runs in a daemon thread that is abandoned after ``timeout``.
    """
    parsed = urlparse(url or os.environ.get("COMET_URL_OVERRIDE") or DEFAULT_SERVER)
    host = parsed.hostname or "www.comet.com"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _display(path: Path) -> str:
    """A path relative to the repository when it is inside it (no personal paths)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def offline_directory() -> Path:
    """Where offline archives go: ``COMET_OFFLINE_DIRECTORY`` or ``runs/comet/``."""
    return Path(os.environ.get("COMET_OFFLINE_DIRECTORY") or ROOT / "runs" / "comet")


def start_experiment(
    project_name: str,
    mode: str | None = None,
    parameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> Any:
    """Start a Comet experiment and say in one line where its data goes.

    Args:
        project_name: Comet project, e.g. ``"keras-labs-cnn"``.
        mode: ``auto`` (default, or ``LABS_TRACKING``), ``online``, ``offline`` or
            ``disabled``. ``online`` without a key or without network falls back to
            the offline archive, so nothing is lost.
        parameters: hyper-parameters logged right away.
        tags: tags for the experiment.

    Returns:
        A ``comet_ml`` experiment (``Experiment``, ``OfflineExperiment`` or a disabled
        ``Experiment``); all three have the same methods. Call ``.end()`` when done.
    """
    mode = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    if mode in ("off", "none", "0", "false"):
        mode = "disabled"
    if mode not in MODES:
        raise ValueError(f"tracking mode {mode!r} is not one of {MODES} (set {MODE_ENV} or pass mode=)")
    _quiet_comet()
    import comet_ml

    if mode == "disabled":
        experiment = comet_ml.Experiment(disabled=True, project_name=project_name, **_PRIVATE)
        print("Comet: tracking disabled (nothing is logged).")
    else:
        key = get_api_key() if mode in ("auto", "online") else None
        reason = ""
        if mode in ("auto", "online") and key is None:
            reason = "no COMET_API_KEY"
        elif key is not None and not server_reachable():
            reason = f"Comet's server not reachable within {REACH_TIMEOUT_S:g} s"
            key = None
        elif mode == "offline":
            reason = "offline mode requested"
        if key is not None:
            experiment = comet_ml.Experiment(api_key=key, project_name=project_name, **_PRIVATE)
            print(f"Comet: logging online to project {project_name!r}.")
        else:
            directory = offline_directory()
            directory.mkdir(parents=True, exist_ok=True)
            experiment = comet_ml.OfflineExperiment(
                project_name=project_name, offline_directory=str(directory), **_PRIVATE
            )
            print(
                f"Comet: {reason}, logging offline; the archive will be "
                f"{_display(directory)}/{experiment.id}.zip (upload it later with `comet upload`)."
            )
    if tags:
        experiment.add_tags(tags)
    if parameters:
        experiment.log_parameters(parameters)
    return experiment


def archive_path(experiment: Any) -> Path | None:
    """The ``.zip`` an offline experiment writes when it ends (``None`` otherwise)."""
    directory = getattr(experiment, "offline_directory", None)
    if not directory:
        return None
    return Path(directory) / f"{experiment.id}.zip"


def keras_callback(experiment: Any) -> Any:
    """A ``keras.callbacks.Callback`` that logs every epoch's metrics to ``experiment``
    (Comet's own Keras auto-logging is off: it would also upload the model graph)."""
    import keras

    class _LogEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            experiment.log_metrics({k: float(v) for k, v in (logs or {}).items()}, epoch=epoch + 1, step=epoch + 1)

    return _LogEpochs()
