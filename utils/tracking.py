"""Experiment tracking with Comet, in three modes with one call.

``start_experiment()`` returns a Comet experiment object; the three modes share
Comet's own API (``log_parameters``, ``log_metric``, ``log_metrics``, ``log_figure``,
``log_text``, ``log_audio``, ``log_image``, ``add_tags``, ``end`` ...):

- **online** -- a well-formed ``COMET_API_KEY`` (environment or Colab secrets), and
  Comet's server confirms the new experiment within :data:`START_BUDGET_S` seconds;
- **offline** -- everything else: no key, a malformed key, a key the server rejects, no
  network, a server that does not answer or answers too slowly, or ``mode="offline"``.
  Data goes to Comet's own offline archive (a ``.zip`` you upload later with
  ``comet upload``) under ``runs/comet/`` or ``COMET_OFFLINE_DIRECTORY``. The decision is
  taken before anything is logged, so the archive holds every parameter and metric;
- **disabled** -- ``mode="disabled"`` or ``LABS_TRACKING=disabled``: every call is a no-op.

One line says which mode was chosen and why (never a traceback). The online attempt is
bounded: the reachability check, Comet's handshake (run in a worker thread with its
per-request timeout and retries tightened) and the fallback decision together take at most
:data:`START_BUDGET_S` seconds; a handshake still running then is abandoned, silenced, and
ended if it ever completes, so it cannot log anything.

Privacy: the key is read from the environment or Colab's secrets only and is never
printed, never written to the archive (Comet does not even see it when it runs offline),
and is masked in every line that comet_ml's loggers write (console and log file). Comet's
own error reporting (Sentry) and SDK usage reporting are switched off before comet_ml is
imported, as are its source-code, stdout, git, environment and Keras auto-logging.
See ``docs/tracking.md``.

Introduced in ``notebooks/03_cnn_mnist.ipynb`` (``run.track`` in :mod:`utils.session` calls it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from utils import ROOT

#: Environment variable that chooses the mode: ``auto`` (default), ``online``,
#: ``offline`` or ``disabled``.
MODE_ENV = "LABS_TRACKING"
MODES = ("auto", "online", "offline", "disabled")

#: Seconds allowed to open a TCP connection to Comet's server (no network: fail fast).
REACH_TIMEOUT_S = 3.0

#: Seconds the whole online attempt may take (reachability check and handshake) before
#: the experiment falls back to the offline archive. The one-off import of comet_ml (about
#: 3 s of CPU, the same in every mode) comes before and is not counted.
START_BUDGET_S = 6.0

#: Comet's per-request HTTP timeout during the handshake (comet_ml reads whole seconds).
REQUEST_TIMEOUT_S = 2

DEFAULT_SERVER = "https://www.comet.com/clientlib/"

#: Settings comet_ml reads from the environment, forced when this module is imported
#: (before comet_ml is, when ``from utils import tracking`` comes first): Comet's Sentry
#: error reporting, its SDK usage reporting and its Keras/TensorFlow monkey-patching off,
#: its own masking of the key in log lines on.
PRIVACY_ENV = {
    "COMET_ERROR_TRACKING_ENABLE": "false",
    "COMET_INTERNAL_REPORTING": "false",
    "COMET_DISABLE_AUTO_LOGGING": "1",
    "COMET_LOGGING_HIDE_API_KEY": "true",
}

#: Quiet defaults (a user's own setting wins): only Comet's errors reach the console,
#: and no server announcements.
QUIET_ENV = {
    "COMET_LOGGING_CONSOLE": "ERROR",
    "COMET_DISABLE_ANNOUNCEMENT": "true",
}

#: Set only while the online experiment is being created, so that a rejected key or a
#: silent server ends the handshake within seconds instead of minutes (comet_ml's
#: defaults: a 10 s timeout per request, up to 10 retries with back-off). The connection
#: that the handshake opens keeps them; comet_ml's streamer still re-queues failed
#: messages and keeps an offline copy to fall back on if the connection drops later.
HANDSHAKE_ENV = {
    "COMET_TIMEOUT_HTTP": str(REQUEST_TIMEOUT_S),
    "COMET_TIMEOUT_API": str(REQUEST_TIMEOUT_S),
    "COMET_HTTP_SESSION_RETRY_TOTAL": "0",
    "COMET_HTTP_SESSION_RETRY_BACKOFF_FACTOR": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_TOTAL": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_CONNECT": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_READ": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_STATUS": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_BACKOFF_FACTOR": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_BACKOFF_MAX": "0",
}

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

# A Comet key: letters and digits (25 of them today), optionally followed by ``*`` and
# base64-encoded JSON attributes (the server's ``baseUrl``).
_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_ATTRIBUTES_RE = re.compile(r"[A-Za-z0-9+/]+=*")


def _apply_comet_env() -> None:
    """Put :data:`PRIVACY_ENV` and :data:`QUIET_ENV` in the environment; if comet_ml was
    imported before this module, also switch off the Sentry reporting it may have started."""
    os.environ.update(PRIVACY_ENV)
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if "comet_ml" in sys.modules:
        _stop_comet_error_tracking()


def _stop_comet_error_tracking() -> None:
    """Undo comet_ml's import-time Sentry set-up (it flips a coin when it is imported
    without ``COMET_ERROR_TRACKING_ENABLE=false``): drop its two logging handlers and its
    client. A Sentry client of the user's own (another DSN) is left alone."""
    comet_logger = logging.getLogger("comet_ml")
    for handler in list(comet_logger.handlers):
        if type(handler).__module__.startswith("sentry_sdk"):
            comet_logger.removeHandler(handler)
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None:
        return
    try:
        import comet_ml

        comet_dsn = comet_ml.get_config().get_string(None, "comet.internal.sentry_dsn")
        client = sentry_sdk.get_client()
        if client.is_active() and client.dsn and client.dsn == comet_dsn:
            client.close(timeout=0)
            sentry_sdk.get_global_scope().set_client(None)
    except Exception:  # an older sentry_sdk or comet_ml: nothing was started by them here
        pass


_apply_comet_env()


# --- the key ---------------------------------------------------------------------------


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


def _key_attributes(key: str) -> dict[str, Any] | None:
    """The JSON attributes after ``*`` in an extended key; ``None`` if there are none.

    Decodes them as comet_ml does (standard base64, padding repaired) and raises
    ``ValueError``, whose message never holds the key, where comet_ml would fail.
    """
    if "*" not in key:
        return None
    encoded = key.split("*", 1)[1]
    if not encoded or not _ATTRIBUTES_RE.fullmatch(encoded):
        raise ValueError("the part after '*' is not base64")
    encoded = encoded.rstrip("=")
    encoded += "=" * (-len(encoded) % 4)
    try:
        attributes = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError("the part after '*' does not decode") from None
    if not isinstance(attributes, dict):
        raise ValueError("the part after '*' is not a JSON object")
    base_url = attributes.get("baseUrl")
    if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise ValueError("the key's baseUrl is not an http(s) address")
    return attributes


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a Comet API key, in words that never repeat it; ``None`` if
    it looks like one. Such a key is never handed to comet_ml (its parser would print it).

    >>> key_problem("0123456789abcdefABCDEFxyz") is None
    True
    >>> key_problem("0123456789abcdef\\nABCDEFxyz")
    'COMET_API_KEY is malformed (a Comet key is letters and digits, without spaces or line breaks)'
    """
    head = key.split("*", 1)[0]
    if key.count("*") > 1 or not _KEY_RE.fullmatch(head):
        return "COMET_API_KEY is malformed (a Comet key is letters and digits, without spaces or line breaks)"
    try:
        _key_attributes(key)
    except ValueError as err:
        return f"COMET_API_KEY is malformed ({err})"
    return None


# --- comet_ml's logging: the key masked, no tracebacks on the console ----------------------

_SECRETS: set[str] = set()
_HELD_BACK: dict[int, list[logging.LogRecord]] = {}  # thread id -> records not shown


def _remember_secret(key: str) -> None:
    """Mask ``key`` (and the escaped forms it takes inside messages) in comet_ml's output."""
    forms = {key, repr(key)[1:-1], json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1],
             key.encode("unicode_escape").decode("ascii"), quote(key, safe="")}
    forms.update(part for part in re.split(r"\s+", key) if len(part) >= 8)
    _SECRETS.update(form for form in forms if form)


def redact(text: str) -> str:
    """``text`` with every key this module has seen replaced by ``***``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _Redacting(logging.Formatter):
    """Wraps a comet_ml handler's formatter: masks the key; on the console, no traceback."""

    def __init__(self, inner: logging.Formatter | None, tracebacks: bool) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        if not self.tracebacks:
            record.exc_info = record.exc_text = record.stack_info = None
        try:
            text = self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        return redact(text)


class _HoldBack(logging.Filter):
    """Keeps the records of a thread that is creating an online experiment off every
    handler; they only serve to tell why the attempt failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        held = _HELD_BACK.get(record.thread or 0)
        if held is None:
            return True
        held.append(record)
        return False


def _handle_error_quietly(record: logging.LogRecord) -> None:
    """Replaces ``Handler.handleError`` on comet_ml's handlers: the standard one prints the
    record's message arguments (which may hold the key) and a traceback to stderr."""
    del record


def _guard_comet_logging() -> None:
    """Wrap every handler of the ``comet_ml`` logger (idempotent)."""
    for handler in logging.getLogger("comet_ml").handlers:
        if not isinstance(handler.formatter, _Redacting):
            console = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            handler.setFormatter(_Redacting(handler.formatter, tracebacks=not console))
        if not any(isinstance(f, _HoldBack) for f in handler.filters):
            handler.addFilter(_HoldBack())
        handler.handleError = _handle_error_quietly  # type: ignore[method-assign]


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, remove) environment variables for the duration."""
    def apply(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    saved = {name: os.environ.get(name) for name in changes}
    try:
        apply(changes)
        yield
    finally:
        apply(saved)


# --- the server --------------------------------------------------------------------------


def comet_server_url(key: str | None = None) -> str:
    """The address comet_ml will talk to: ``COMET_URL_OVERRIDE`` (the environment or
    Comet's config files), else the ``baseUrl`` inside an extended key, else Comet's cloud."""
    url = os.environ.get("COMET_URL_OVERRIDE")
    if not url and "comet_ml" in sys.modules:
        try:  # a configured value only: comet_ml moves its default around as keys are parsed
            value = sys.modules["comet_ml"].get_config().manager("url_override", namespace=["comet"], raise_error=False)
            url = value if isinstance(value, str) else None
        except Exception:
            url = None
    if not url and key:
        try:
            base = (_key_attributes(key) or {}).get("baseUrl")
        except ValueError:
            base = None
        if base:
            url = base.rstrip("/") + "/clientlib/"
    return url or DEFAULT_SERVER


def server_reachable(url: str | None = None, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to Comet's server opens within ``timeout`` seconds.

    Name resolution can block far longer than a socket timeout on a machine without
    network, so the attempt runs in a daemon thread that is abandoned after ``timeout``.
    """
    parsed = urlparse(url or comet_server_url())
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


# --- the online attempt ------------------------------------------------------------------

#: Online attempts abandoned at the deadline and still running (tests wait for them).
ABANDONED: list[threading.Thread] = []


def _exceptions(records: list[logging.LogRecord], error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    roots = [r.exc_info[1] for r in records if r.exc_info and r.exc_info[1] is not None]
    for exc in ([error] if error is not None else []) + roots:
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            yield exc
            exc = exc.__cause__ or exc.__context__


def _diagnose(records: list[logging.LogRecord], error: BaseException | None) -> str:
    """Why an online attempt did not come alive, from what comet_ml raised or logged
    (the key is never part of the answer)."""
    statuses: list[int] = []
    text = []
    for exc in _exceptions(records, error):
        if type(exc).__name__ == "InvalidAPIKey":
            statuses.append(401)
        for status in (getattr(getattr(exc, "response", None), "status_code", None), getattr(exc, "status_code", None)):
            if isinstance(status, int):
                statuses.append(status)
        text.append(f"{type(exc).__name__} {exc}")
    for record in records:
        try:
            text.append(record.getMessage())
        except Exception:
            pass
    joined = "\n".join(text)
    statuses += [int(s) for s in re.findall(r"status code (\d{3})", joined)]
    for status in statuses:
        if status in (401, 403):
            return f"the server rejected COMET_API_KEY (HTTP {status})"
    if re.search(r"timed? ?out|Timeout", joined):
        return f"the server did not answer within {START_BUDGET_S:g} s"
    if statuses:
        return f"the server answered HTTP {statuses[0]}"
    if re.search(r"ConnectionError|Connection refused|Failed to establish", joined):
        return "server not reachable"
    return "the server did not confirm the experiment"


def _start_online(key: str, project_name: str, directory: Path, wait: float) -> tuple[Any, str]:
    """Create an online ``comet_ml.Experiment`` in a worker thread and wait at most
    ``wait`` seconds for it to be alive. Returns ``(experiment, "")`` or ``(None, reason)``."""
    import comet_ml

    lock = threading.Lock()
    state: dict[str, Any] = {"experiment": None, "error": None, "done": False, "abandoned": False}
    records: list[logging.LogRecord] = []

    def work() -> None:
        me = threading.get_ident()
        _HELD_BACK[me] = records
        experiment = None
        try:
            with _environment(dict(HANDSHAKE_ENV)):
                experiment = comet_ml.Experiment(
                    api_key=key, project_name=project_name, offline_directory=str(directory), **_PRIVATE
                )
        except BaseException as err:  # noqa: BLE001 -- any failure means "not online"
            state["error"] = err
        with lock:
            state["experiment"], state["done"] = experiment, True
            abandoned = state["abandoned"]
        try:
            if abandoned and experiment is not None and getattr(experiment, "alive", False):
                experiment.end()  # too late to be used: close it without a word
        except Exception:
            pass
        finally:
            _HELD_BACK.pop(me, None)
            if abandoned:
                with contextlib.suppress(ValueError):
                    ABANDONED.remove(threading.current_thread())

    worker = threading.Thread(target=work, name="comet-online-start", daemon=True)
    worker.start()
    worker.join(max(wait, 0.0))
    with lock:
        if not state["done"]:
            state["abandoned"] = True
            ABANDONED.append(worker)
            return None, f"the server did not confirm the experiment within {START_BUDGET_S:g} s"
    experiment = state["experiment"]
    if experiment is not None and getattr(experiment, "alive", False) is True:
        if hasattr(experiment, "main_thread_id"):  # Comet runs its remote-control callbacks there
            experiment.main_thread_id = threading.get_ident()
        return experiment, ""
    reason = _diagnose(records, state["error"])
    if experiment is not None:  # created but not alive: close it, and keep what it says to itself
        me = threading.get_ident()
        _HELD_BACK[me] = []
        try:
            experiment.end()
        except Exception:
            pass
        finally:
            _HELD_BACK.pop(me, None)
    return None, reason


# --- the one call ------------------------------------------------------------------------


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
            ``disabled``. ``auto`` and ``online`` go online only when the key is
            well-formed and Comet's server confirms the experiment within
            :data:`START_BUDGET_S` seconds; otherwise the offline archive is used, so
            nothing is lost.
        parameters: hyper-parameters logged right away.
        tags: tags for the experiment.

    Returns:
        A ``comet_ml`` experiment (``Experiment``, ``OfflineExperiment`` or a disabled
        ``Experiment``); all three have the same methods. Call ``.end()`` when done.

    Example (offline, as on a machine without a key):

    >>> import os, tempfile
    >>> os.environ["COMET_OFFLINE_DIRECTORY"] = tempfile.mkdtemp()
    >>> experiment = start_experiment("doctest", mode="offline", parameters={"lr": 0.1})  # doctest: +ELLIPSIS
    Comet: offline mode requested, logging offline; the archive will be ....zip (upload it later with `comet upload`).
    >>> experiment.log_metric("loss", 0.5, step=1)
    >>> experiment.end()
    >>> archive_path(experiment).is_file()
    True
    >>> del os.environ["COMET_OFFLINE_DIRECTORY"]
    """
    mode = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    if mode in ("off", "none", "0", "false"):
        mode = "disabled"
    if mode not in MODES:
        raise ValueError(f"tracking mode {mode!r} is not one of {MODES} (set {MODE_ENV} or pass mode=)")
    _apply_comet_env()
    import comet_ml

    _guard_comet_logging()
    started = time.monotonic()
    key = get_api_key() if mode in ("auto", "online") else None
    if key is not None:
        _remember_secret(key)
    # comet_ml reads COMET_API_KEY itself (and prints a malformed one while parsing it):
    # offline and disabled experiments are created without it.
    hide_key = {"COMET_API_KEY": None}

    if mode == "disabled":
        with _environment(hide_key):
            experiment = comet_ml.Experiment(disabled=True, project_name=project_name, **_PRIVATE)
        print("Comet: tracking disabled (nothing is logged).")
    else:
        directory = offline_directory()
        experiment, reason = None, ""
        if mode == "offline":
            reason = "offline mode requested"
        elif key is None:
            reason = "no COMET_API_KEY"
        elif problem := key_problem(key):
            reason = problem
        elif not server_reachable(comet_server_url(key)):
            reason = f"server not reachable within {REACH_TIMEOUT_S:g} s"
        else:
            directory.mkdir(parents=True, exist_ok=True)
            wait = START_BUDGET_S - (time.monotonic() - started)
            experiment, reason = _start_online(key, project_name, directory, wait)
        if experiment is not None:
            print(f"Comet: logging online to project {project_name!r}.")
        else:
            directory.mkdir(parents=True, exist_ok=True)
            with _environment(hide_key):
                experiment = comet_ml.OfflineExperiment(
                    project_name=project_name, offline_directory=str(directory), **_PRIVATE
                )
            _keep_the_last_messages(experiment)
            print(
                f"Comet: {reason}, logging offline; the archive will be "
                f"{_display(directory)}/{experiment.id}.zip (upload it later with `comet upload`)."
            )
    if tags:
        experiment.add_tags(tags)
    if parameters:
        experiment.log_parameters(parameters)
    return experiment


def _keep_the_last_messages(experiment: Any) -> None:
    """Close a race in comet_ml's offline writer (3.58) that can drop the last messages.

    ``end()`` waits until the writer's queue is empty, then raises the writer's stop flag;
    a message the writer thread has already taken from the queue but not yet written is
    then skipped. On a loaded machine that lost the last metric of a run (seen in CI).
    Here the writer holds its own (re-entrant) lock from taking a message to writing it,
    and the stop takes that lock before raising the flag, so a stop falls between two
    messages. The writer waits for a message without the lock, so a stop never waits for
    an idle writer. Left alone when comet_ml's writer does not look as expected."""
    import queue

    streamer = getattr(experiment, "streamer", None)
    lock = getattr(streamer, "__write_lock__", None)
    loop = getattr(streamer, "_loop", None)
    abort = getattr(streamer, "_abort_processing", None)
    messages = getattr(streamer, "messages", None)
    if lock is None or loop is None or abort is None or not isinstance(messages, queue.Queue):
        return

    def take_and_write() -> Any:
        with messages.not_empty:  # wait for a message (at most a second, as comet_ml does) without the lock
            if not messages.queue and not streamer.abort_processing:
                messages.not_empty.wait(timeout=1.0)
            ready = bool(messages.queue)
        if not ready and not streamer.abort_processing:
            return None  # nothing to take yet: comet_ml's run loop asks again
        with lock:
            return loop()

    def stop_between_messages(timeout: float = 10) -> None:
        if lock.acquire(timeout=timeout):
            try:
                abort(timeout)
            finally:
                lock.release()
        else:
            abort(timeout)

    streamer._loop = take_and_write
    streamer._abort_processing = stop_between_messages


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
