"""Comet tracking for real, against fake Comet servers started here on 127.0.0.1.

Every fault -- a rejected key, a server that accepts the connection and never answers,
one that answers too slowly, no server at all, a malformed key -- must leave a complete
offline archive within 10 s, say so in one line, and leave the key in no output, no
archive, no log line comet_ml writes and no file. A server that does answer takes the
run online. Comet's error reporting stays off, whatever order things are imported in.
"""

from __future__ import annotations

import gzip
import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from utils import ROOT, tracking

#: Every test key carries this marker: finding it anywhere is a leak.
MARKER = "LEAKMARKER"
#: A well-formed key (letters and digits), so it really reaches the fake server.
KEY = MARKER + "0123456789abcdefXYZ"
#: Second half of the malformed keys: a leak of the part after the line break shows too.
TAIL = "TAILMARKERzyxw"

PARAMETERS = {"learning_rate": 0.01, "batch_size": 32, "optimizer": "adam"}
LOSSES = [(0, 0.9), (1, 0.5), (2, 0.25)]


# --- a fake Comet server ---------------------------------------------------------------


class FakeComet:
    """A local HTTP server playing Comet with one behaviour: ``reject`` (HTTP 401 for
    everything), ``silent`` (reads the request, never answers), ``slow`` (a 200 whose
    body trickles in a byte every half second) or ``healthy`` (enough of Comet's protocol
    for an online experiment to come alive). It records every request."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.requests: list[tuple[str, str, bytes]] = []
        self.stop = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def handle_request(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                fake.requests.append((self.command, self.path, body))
                fake.respond(self)

            do_GET = do_POST = do_PUT = handle_request

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/clientlib/"

    @staticmethod
    def _send(handler: http.server.BaseHTTPRequestHandler, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path
        if self.behaviour == "reject":
            self._send(handler, 401, {"msg": "Invalid api key", "code": 401, "sdk_error_code": 90212})
        elif self.behaviour == "silent":
            self.stop.wait()
            handler.close_connection = True
        elif self.behaviour == "slow":
            data = json.dumps({"runId": "run-1", "project_id": "project-1", "version": "3.50.0"}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.flush()
            for byte in data:
                if self.stop.wait(0.5):
                    break
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            handler.close_connection = True
        elif path.endswith("/logger/add/run"):
            self._send(handler, 200, {"runId": "run-1", "project_id": "project-1", "lastOffset": 0})
        elif "isAlive/ver" in path:
            self._send(handler, 200, {"version": "3.50.0"})
        elif path.endswith("/status-report/update"):
            self._send(handler, 200, {"is_alive_beat_duration_millis": 60_000, "gpu_monitor_interval_millis": 60_000,
                                      "cpu_monitor_interval_millis": 60_000, "parameter_update_interval_millis": 60_000,
                                      "pending_rpcs": False})
        else:
            self._send(handler, 200, {})

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (the capture of the running test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def offline_dir(tmp_path, monkeypatch):
    directory = tmp_path / "comet"
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(directory))
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    monkeypatch.delenv("COMET_URL_OVERRIDE", raising=False)
    monkeypatch.delenv(tracking.MODE_ENV, raising=False)
    return directory


@pytest.fixture
def comet_logs(tmp_path, monkeypatch, capfd):
    """Everything comet_ml logs, at every level, into ``tmp_path/comet-debug.log``; its
    console lines into this test's captured stderr (``capfd``, set up first)."""
    import comet_ml  # noqa: F401 -- its logger and handlers exist from here on

    logger = logging.getLogger("comet_ml")
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    assert consoles, "comet_ml has no console handler: the output checks would be void"
    for handler in consoles:  # it holds the stderr of the moment comet_ml was imported
        monkeypatch.setattr(handler, "stream", CurrentStderr())
    log_file = tmp_path / "comet-debug.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    yield log_file
    logger.removeHandler(handler)
    handler.close()


@pytest.fixture
def temp_files(tmp_path, monkeypatch):
    """Temporary files comet_ml writes land in ``tmp_path/tmp`` (and so are searched)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def fake_comet(monkeypatch):
    servers: list[FakeComet] = []

    def start(behaviour: str) -> FakeComet:
        server = FakeComet(behaviour)
        servers.append(server)
        monkeypatch.setenv("COMET_URL_OVERRIDE", server.url)
        return server

    yield start
    for server in servers:
        server.close()
    # An online attempt abandoned at the deadline ends once its server is gone.
    for thread in list(tracking.ABANDONED):
        thread.join(15)
    assert not tracking.ABANDONED, "an abandoned online attempt is still running"


def read_archive(path):
    with zipfile.ZipFile(path) as archive:
        raw = {name: archive.read(name) for name in archive.namelist()}
    messages = [json.loads(line) for line in raw["messages.json"].decode().splitlines() if line.strip()]
    return raw, messages


def logged(messages):
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg" and m["payload"]["param"]["source"] == "manual"}
    metrics = [(m["payload"]["metric"]["metricName"], m["payload"]["metric"]["metricValue"], m["payload"]["metric"]["step"])
               for m in messages if m["type"] == "metric_msg"]
    return params, metrics


def run_and_log(**start_kwargs):
    """Start an experiment, log the standard parameters and losses, end it; seconds taken."""
    started = time.perf_counter()
    experiment = tracking.start_experiment("unit-tests", parameters=PARAMETERS, **start_kwargs)
    for step, loss in LOSSES:
        experiment.log_metric("loss", loss, step=step)
    experiment.log_metrics({"accuracy": 0.75}, step=3)
    experiment.end()
    return experiment, time.perf_counter() - started


def assert_complete_archive(experiment, directory):
    archive = tracking.archive_path(experiment)
    assert archive is not None and archive.is_file() and archive.parent == directory, archive
    raw, messages = read_archive(archive)
    params, metrics = logged(messages)
    assert params == PARAMETERS
    assert [(n, v, s) for n, v, s in metrics if n == "loss"] == [("loss", v, s) for s, v in LOSSES]
    assert ("accuracy", 0.75, 3) in metrics
    return raw


def leaks(text: str | bytes) -> bool:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return MARKER in text or TAIL in text


def assert_no_leak_anywhere(captured, root: Path) -> None:
    """The marker is in no captured output and no file under ``root`` (zip members too)."""
    assert not leaks(captured.out + captured.err), captured
    files = [path for path in root.rglob("*") if path.is_file()]
    assert files, "nothing was written"
    for path in files:
        assert not leaks(path.read_bytes()), path
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    assert not leaks(name) and not leaks(archive.read(name)), (path, name)


def assert_one_offline_line(captured, *fragments: str) -> str:
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out
    line = lines[0]
    assert line.startswith("Comet: ") and "logging offline" in line and "comet upload" in line, line
    assert "online" not in line.replace("offline", ""), line
    for fragment in fragments:
        assert fragment in line, line
    assert "Traceback" not in captured.err and "COMET" not in captured.err, captured.err
    return line


# --- the offline archive -----------------------------------------------------------------


def test_offline_archive_holds_parameters_and_metrics(offline_dir, capfd):
    experiment, _ = run_and_log()
    assert_one_offline_line(capfd.readouterr(), "no COMET_API_KEY")
    raw = assert_complete_archive(experiment, offline_dir)
    _, messages = read_archive(tracking.archive_path(experiment))
    # Source code, stdout and environment are not collected.
    kinds = {m["type"] for m in messages}
    assert not kinds & {"code_msg", "standard_output", "os_packages", "installed_packages", "git_metadata"}, kinds
    assert not [n for n in raw if n.endswith((".py", ".ipynb"))]


# --- faults: each one ends offline, quickly, in one line, without the key ------------------

FAULTS = {
    # behaviour, key (as the user set it), words the line must hold, seconds allowed to start
    "rejected key": ("reject", KEY + "\n", "the server rejected COMET_API_KEY (HTTP 401)", 3.0),
    "silent server": ("silent", KEY, "the server did not answer", tracking.START_BUDGET_S + 1.5),
    "slow server": ("slow", KEY, "the server did not confirm the experiment", tracking.START_BUDGET_S + 1.5),
    "no server": (None, KEY, "server not reachable", 3.0),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_falls_back_to_a_complete_archive_within_seconds(
    fault, offline_dir, comet_logs, temp_files, fake_comet, monkeypatch, capfd, tmp_path
):
    behaviour, key, words, start_limit = FAULTS[fault]
    server = fake_comet(behaviour) if behaviour else None
    if server is None:
        monkeypatch.setenv("COMET_URL_OVERRIDE", f"http://127.0.0.1:{closed_port()}/clientlib/")
    monkeypatch.setenv("COMET_API_KEY", key)

    started = time.perf_counter()
    experiment = tracking.start_experiment("unit-tests", parameters=PARAMETERS)
    start_seconds = time.perf_counter() - started
    for step, loss in LOSSES:
        experiment.log_metric("loss", loss, step=step)
    experiment.log_metrics({"accuracy": 0.75}, step=3)
    experiment.end()
    seconds = time.perf_counter() - started

    assert start_seconds < start_limit and seconds < 10, (start_seconds, seconds)
    assert_one_offline_line(capfd.readouterr(), words)
    assert_complete_archive(experiment, offline_dir)
    if server is not None:
        assert server.requests, "the key never reached the fake server: this fault was not exercised"
        server.close()  # an attempt abandoned at the deadline now ends...
        for thread in list(tracking.ABANDONED):
            thread.join(15)
    # ... without a word, and without leaving the key anywhere.
    later = capfd.readouterr()
    assert later.out == "" and later.err == "", later
    assert_no_leak_anywhere(later, tmp_path)
    assert comet_logs.stat().st_size > 0  # comet_ml did log (at DEBUG), just never the key


MALFORMED = {
    "line break inside": KEY[:14] + "\n" + TAIL,
    "space inside": KEY[:14] + " " + TAIL,
    "quotes": '"' + KEY + '"',
    "unicode": KEY + "é" + TAIL,
    "several stars": KEY + "*" + TAIL + "*" + TAIL,
    "star, then not base64": KEY + "*" + TAIL + "!",
    "star, then not JSON": KEY + "*" + "VEFJTE1BUktFUnp5eHc=",  # base64 of TAIL
}
#: Run end to end (every form is checked by ``key_problem`` below).
MALFORMED_RUN = ["line break inside", "unicode", "several stars", "star, then not JSON"]


@pytest.mark.parametrize("name", MALFORMED_RUN)
def test_malformed_key_goes_offline_at_once_and_is_never_sent_or_shown(
    name, offline_dir, comet_logs, temp_files, fake_comet, monkeypatch, capfd, tmp_path
):
    server = fake_comet("reject")
    monkeypatch.setenv("COMET_API_KEY", MALFORMED[name])
    experiment, seconds = run_and_log()
    assert seconds < 5, seconds
    assert_one_offline_line(capfd.readouterr(), "COMET_API_KEY is malformed")
    assert_complete_archive(experiment, offline_dir)
    assert server.requests == [], "a malformed key was sent to the server"
    assert_no_leak_anywhere(capfd.readouterr(), tmp_path)


def test_key_problem_accepts_plain_and_extended_keys(monkeypatch):
    import base64

    monkeypatch.delenv("COMET_URL_OVERRIDE", raising=False)
    assert tracking.key_problem(KEY) is None
    attributes = base64.b64encode(json.dumps({"baseUrl": "https://comet.example.org"}).encode()).decode()
    extended = KEY + "*" + attributes.rstrip("=")
    assert tracking.key_problem(extended) is None
    assert tracking.comet_server_url(extended) == "https://comet.example.org/clientlib/"
    assert tracking.comet_server_url(KEY) == tracking.DEFAULT_SERVER
    for bad in MALFORMED.values():
        problem = tracking.key_problem(bad)
        assert problem and problem.startswith("COMET_API_KEY is malformed") and not leaks(problem), (bad, problem)


def test_redact_masks_the_key_in_every_escaped_form():
    key = KEY[:14] + "\n" + TAIL
    tracking._remember_secret(key)
    for form in (key, repr(key), json.dumps(key), key.encode("unicode_escape").decode()):
        assert not leaks(tracking.redact(f"header value: {form}!")), form


def test_comet_log_lines_mask_the_key_and_the_console_shows_no_traceback(offline_dir, comet_logs, monkeypatch,
                                                                         capfd):
    """Whatever comet_ml logs later goes through the wrapped handlers: the key masked in
    every form, one line on the console, the traceback only in the log file."""
    key = MALFORMED["line break inside"]
    monkeypatch.setenv("COMET_API_KEY", key)
    tracking.start_experiment("unit-tests").end()
    capfd.readouterr()
    logger = logging.getLogger("comet_ml.unit_test")
    try:
        raise ValueError(f"invalid header value {key!r}")
    except ValueError:
        logger.exception("request failed for %s", key)
    err = capfd.readouterr().err
    assert err.startswith("COMET ERROR: request failed for ***") and "Traceback" not in err and not leaks(err), err
    text = comet_logs.read_text(encoding="utf-8")
    assert "request failed for ***" in text and "Traceback" in text and "invalid header value" in text, text
    assert not leaks(text), text
    # A handler that fails to write does not print the record's arguments to stderr.
    for handler in logging.getLogger("comet_ml").handlers:
        if type(handler) is logging.StreamHandler:
            monkeypatch.setattr(handler, "stream", BrokenStream())
    logger.error("request failed for %s", key)
    err = capfd.readouterr().err
    assert not leaks(err), err


class BrokenStream:
    def write(self, text: str) -> int:
        raise ValueError("I/O operation on closed file.")

    def flush(self) -> None:
        raise ValueError("I/O operation on closed file.")


# --- a server that answers: online --------------------------------------------------------


def test_online_when_the_server_confirms_the_experiment(offline_dir, comet_logs, temp_files, fake_comet,
                                                        monkeypatch, capfd, tmp_path):
    server = fake_comet("healthy")
    monkeypatch.setenv("COMET_API_KEY", KEY)
    experiment, seconds = run_and_log(tags=["unit"])
    out = capfd.readouterr()
    assert out.out == "Comet: logging online to project 'unit-tests'.\n", out
    assert "Traceback" not in out.err and "COMET" not in out.err, out.err
    assert type(experiment).__name__ == "Experiment" and tracking.archive_path(experiment) is None
    assert seconds < 10, seconds
    # What was logged reached the server (and the key went there, as it must, and nowhere else).
    bodies = b"\n".join(body for _, path, body in server.requests if "/batch/logger/experiment/" in path)
    for name, value in PARAMETERS.items():
        assert name.encode() in bodies and str(value).encode() in bodies, name
    assert b'"loss"' in bodies and b"0.25" in bodies and b'"accuracy"' in bodies
    assert_no_leak_anywhere(capfd.readouterr(), tmp_path)


# --- comet_ml's own settings ---------------------------------------------------------------


def test_every_setting_we_write_is_one_comet_ml_reads(monkeypatch):
    """Each environment variable this module sets is the name comet_ml's config gives a
    setting it reads, and comet_ml reads our value from it."""
    import comet_ml
    from comet_ml.config.config_map import CONFIG_MAP

    config = comet_ml.get_config()
    names = {config.get_setting_name(key[len("comet."):].replace(".", "_")): key for key in CONFIG_MAP}
    for name, value in {**tracking.PRIVACY_ENV, **tracking.QUIET_ENV, **tracking.HANDSHAKE_ENV}.items():
        assert name in names, f"comet_ml {comet_ml.__version__} has no setting {name}"
        monkeypatch.setenv(name, value)
        setting = names[name]
        read = comet_ml.get_config()[setting]
        assert str(read).lower() in (value.lower(), {"1": "true", "0": "false"}.get(value, value).lower()), (name, read)


def test_comet_error_reporting_follows_the_setting(monkeypatch):
    """The check comet_ml makes before starting Sentry, with and without our setting
    (without it, comet_ml would start Sentry in about half of the runs)."""
    from comet_ml import error_tracking

    monkeypatch.setenv("COMET_ERROR_TRACKING_ENABLE", "false")
    assert error_tracking.enabled_in_config() is False
    monkeypatch.delenv("COMET_ERROR_TRACKING_ENABLE")
    assert error_tracking.enabled_in_config() is True


_SUBPROCESS = r"""
import importlib.util, json, logging, os, random, sys, time
sys.path.insert(0, sys.argv[1])
random.random = lambda: 0.99  # comet_ml's coin flip at import: start Sentry
order, tests_file = sys.argv[2], sys.argv[3]
report = {}
if order == "comet_ml first":
    from comet_ml import error_tracking
    report["sentry_started_before"] = error_tracking.initialized()
from utils import tracking
import comet_ml, sentry_sdk
from comet_ml import error_tracking
report["sentry_after_import"] = error_tracking.initialized()
if order == "utils.tracking first":  # a rejected and a malformed key, comet_ml logging to a file at DEBUG
    spec = importlib.util.spec_from_file_location("tracking_tests", tests_file)
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    server = tests.FakeComet("reject")
    os.environ["COMET_URL_OVERRIDE"] = server.url
    for name, key in (("rejected", tests.KEY), ("malformed", tests.MALFORMED["line break inside"])):
        os.environ["COMET_API_KEY"] = key
        started = time.perf_counter()
        experiment = tracking.start_experiment("subprocess", parameters={"p": 1})
        experiment.log_metric("loss", 0.5, step=1)
        experiment.end()
        report[name + "_s"] = time.perf_counter() - started
    server.close()
report["sentry_client"] = error_tracking.initialized() or sentry_sdk.get_client().is_active()
report["sentry_handlers"] = [type(h).__name__ for h in logging.getLogger("comet_ml").handlers
                             if type(h).__module__.startswith("sentry_sdk")]
print("REPORT " + json.dumps(report))
"""


def test_in_a_fresh_process_comet_error_reporting_is_off_and_its_log_file_holds_no_key(tmp_path):
    """Two fresh interpreters side by side, comet_ml's coin flip forced to "start Sentry":
    one imports utils.tracking first, the other comet_ml first. Both end with Sentry off.
    In the first, comet_ml's own log file (at DEBUG) holds no key after a rejected and a
    malformed one."""
    script = tmp_path / "run.py"
    script.write_text(_SUBPROCESS)
    runs = {}
    for order in ("utils.tracking first", "comet_ml first"):
        folder = tmp_path / order.split()[0]
        folder.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMET_", "LABS_"))}
        env.update(COMET_LOGGING_FILE=str(folder / "comet.log"), COMET_LOGGING_FILE_LEVEL="DEBUG",
                   COMET_OFFLINE_DIRECTORY=str(folder / "archives"), TMPDIR=str(folder), HOME=str(folder))
        runs[order] = (folder, subprocess.Popen(
            [sys.executable, str(script), str(ROOT), order, __file__], cwd=folder, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for order, (folder, process) in runs.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (order, out, err)
        report = json.loads(out.split("REPORT ", 1)[1])
        assert report["sentry_client"] is False and report["sentry_handlers"] == [], (order, report)
        assert not leaks(out) and not leaks(err) and "Traceback" not in err, (out, err)
        if order == "comet_ml first":
            assert report["sentry_started_before"] is True, "the forced coin flip did not start Sentry: test is void"
            continue
        assert report["sentry_after_import"] is False, "comet_ml started Sentry when it was imported"
        assert report["rejected_s"] < 10 and report["malformed_s"] < 10, report
        assert "the server rejected COMET_API_KEY (HTTP 401)" in out and "COMET_API_KEY is malformed" in out, out
        assert "DEBUG" in (folder / "comet.log").read_text(encoding="utf-8"), "no debug log: the check is void"
        for path in folder.rglob("*"):
            if path.is_file() and path != script:
                assert not leaks(path.read_bytes()), path
        assert len(list((folder / "archives").glob("*.zip"))) == 2


# --- the other modes and the reachability check --------------------------------------------


def test_disabled_mode_writes_nothing(offline_dir, monkeypatch, capfd):
    monkeypatch.setenv(tracking.MODE_ENV, "disabled")
    monkeypatch.setenv("COMET_API_KEY", MALFORMED["several stars"])
    experiment = tracking.start_experiment("unit-tests", parameters={"a": 1}, tags=["t"])
    experiment.log_metric("loss", 1.0)
    experiment.log_metrics({"loss": 1.0}, step=1)
    experiment.end()
    out = capfd.readouterr()
    assert out.out == "Comet: tracking disabled (nothing is logged).\n" and not leaks(out.err), out
    assert not offline_dir.exists() or not list(offline_dir.iterdir())


def test_offline_mode_requested_ignores_key(offline_dir, fake_comet, monkeypatch, capfd):
    server = fake_comet("healthy")
    monkeypatch.setenv("COMET_API_KEY", KEY)
    experiment = tracking.start_experiment("unit-tests", mode="offline")
    experiment.end()
    assert_one_offline_line(capfd.readouterr(), "offline mode requested")
    assert tracking.archive_path(experiment).is_file() and server.requests == []


def test_unknown_mode_is_an_error(offline_dir):
    with pytest.raises(ValueError, match="tracking mode 'sometimes'"):
        tracking.start_experiment("unit-tests", mode="sometimes")


def test_reachability_is_bounded_when_name_resolution_hangs(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(4)  # longer than the timeout below; then fail like a dead network
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    started = time.perf_counter()
    assert tracking.server_reachable("https://www.comet.com/clientlib/", timeout=1.0) is False
    assert time.perf_counter() - started < 3


def test_reachability_true_for_a_listening_server():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert tracking.server_reachable(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=2.0)
    assert not tracking.server_reachable(f"http://127.0.0.1:{closed_port()}/", timeout=2.0)


def test_an_offline_run_keeps_a_message_taken_but_not_yet_written(offline_dir, monkeypatch):
    """comet_ml's end() stops its offline writer once the queue is empty; a message the
    writer thread had taken but not yet written was skipped -- the last metric of a run,
    lost on a loaded CI machine. Here the writer is slowed down between taking a message
    and writing it, which made the loss certain."""
    experiment = tracking.start_experiment("unit-tests", mode="offline", parameters=PARAMETERS)
    streamer = experiment.streamer
    take = streamer.getn

    def slow_take(n):
        messages = take(n)
        if messages:
            time.sleep(0.2)  # the writer thread descheduled between taking and writing
        return messages

    monkeypatch.setattr(streamer, "getn", slow_take)
    for step, loss in LOSSES:
        experiment.log_metric("loss", loss, step=step)
    experiment.log_metrics({"accuracy": 0.75}, step=3)
    experiment.end()
    assert_complete_archive(experiment, offline_dir)
