"""Comet tracking for real: offline archives hold what was logged, a key without network
lands offline within seconds, the key never appears, disabled mode writes nothing."""

from __future__ import annotations

import json
import socket
import time
import zipfile

import pytest

from utils import tracking

FAKE_KEY = "FAKEcometKEY0123456789abcdefXYZ"


@pytest.fixture
def offline_dir(tmp_path, monkeypatch):
    directory = tmp_path / "comet"
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(directory))
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    monkeypatch.delenv(tracking.MODE_ENV, raising=False)
    return directory


def read_archive(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        raw = {name: archive.read(name) for name in names}
    messages = [json.loads(line) for line in raw["messages.json"].decode().splitlines() if line.strip()]
    return raw, messages


def logged(messages):
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg" and m["payload"]["param"]["source"] == "manual"}
    metrics = [(m["payload"]["metric"]["metricName"], m["payload"]["metric"]["metricValue"], m["payload"]["metric"]["step"])
               for m in messages if m["type"] == "metric_msg"]
    return params, metrics


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_archive_holds_parameters_and_metrics(offline_dir, capsys):
    experiment = tracking.start_experiment("unit-tests", parameters={"learning_rate": 0.01, "batch_size": 32})
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "no COMET_API_KEY" in line and "offline" in line
    for step, loss in enumerate([0.9, 0.5, 0.25]):
        experiment.log_metric("loss", loss, step=step)
    experiment.end()
    archive = tracking.archive_path(experiment)
    assert archive is not None and archive.is_file() and archive.parent == offline_dir
    raw, messages = read_archive(archive)
    params, metrics = logged(messages)
    assert params == {"learning_rate": 0.01, "batch_size": 32}
    assert [(n, v, s) for n, v, s in metrics if n == "loss"] == [("loss", 0.9, 0), ("loss", 0.5, 1), ("loss", 0.25, 2)]
    # Source code, stdout and environment are not collected.
    kinds = {m["type"] for m in messages}
    assert not kinds & {"code_msg", "standard_output", "os_packages", "installed_packages", "git_metadata"}, kinds
    assert not [n for n in raw if n.endswith((".py", ".ipynb"))]


def test_key_without_network_goes_offline_fast_and_never_leaks(offline_dir, monkeypatch, capsys):
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", f"http://127.0.0.1:{closed_port()}/clientlib/")
    started = time.perf_counter()
    experiment = tracking.start_experiment("unit-tests", parameters={"units": 8})
    experiment.log_metric("accuracy", 0.75, step=1)
    experiment.end()
    assert time.perf_counter() - started < 15
    out = capsys.readouterr()
    assert "not reachable" in out.out
    assert FAKE_KEY not in out.out + out.err
    raw, messages = read_archive(tracking.archive_path(experiment))
    assert all(FAKE_KEY.encode() not in blob for blob in raw.values())
    params, metrics = logged(messages)
    assert params == {"units": 8} and ("accuracy", 0.75, 1) in metrics


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


def test_disabled_mode_writes_nothing(offline_dir, monkeypatch, capsys):
    monkeypatch.setenv(tracking.MODE_ENV, "disabled")
    experiment = tracking.start_experiment("unit-tests", parameters={"a": 1})
    experiment.log_metric("loss", 1.0)
    experiment.end()
    assert "disabled" in capsys.readouterr().out
    assert not offline_dir.exists() or not list(offline_dir.iterdir())


def test_offline_mode_requested_ignores_key(offline_dir, monkeypatch, capsys):
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    experiment = tracking.start_experiment("unit-tests", mode="offline")
    experiment.end()
    assert "offline mode requested" in capsys.readouterr().out
    assert tracking.archive_path(experiment).is_file()


def test_online_mode_uses_the_key_when_server_answers(offline_dir, monkeypatch):
    """Online is chosen when a key exists and the server answers; the key goes to Comet
    only as an argument (the online Experiment itself is replaced: no network here)."""
    import comet_ml

    seen = {}

    class FakeExperiment:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def log_parameters(self, params):
            seen["params"] = params

    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setattr(tracking, "server_reachable", lambda *a, **k: True)
    monkeypatch.setattr(comet_ml, "Experiment", FakeExperiment)
    tracking.start_experiment("unit-tests", parameters={"p": 1})
    assert seen["api_key"] == FAKE_KEY and seen["log_code"] is False and seen["auto_output_logging"] is None
    assert seen["log_env_details"] is False and seen["log_git_metadata"] is False and seen["params"] == {"p": 1}


def test_unknown_mode_is_an_error(offline_dir):
    with pytest.raises(ValueError, match="tracking mode 'sometimes'"):
        tracking.start_experiment("unit-tests", mode="sometimes")
