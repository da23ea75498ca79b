"""End to end: a notebook that tracks its training (the course's own setup cell, then
``run.track``, a logged loss per step, ``run.report`` and ``run.finish`` as in notebooks
03 on), run with a Comet key but no reachable server, finishes within seconds of its
no-key run, its metrics land in Comet's offline archive, and the key is in no output,
notebook or archive."""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from utils import ROOT

pytestmark = pytest.mark.slow

FAKE_KEY = "FAKEcometKEYforTESTS0123456789abcdef"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NUM_STEPS = 120
TRAINING = f"""\
experiment = run.track("keras-labs-tracking-test", {{"num_steps": {NUM_STEPS}}})
for step in range({NUM_STEPS}):
    experiment.log_metric("loss", 1.0 / (step + 1), step=step)
run.report("final_loss", 1.0 / {NUM_STEPS})
run.finish()"""


def tracked_notebook():
    """The course's setup cell (the same in every notebook), then a tracked training loop."""
    setup = nbformat.read(ROOT / "notebooks" / "01_tensors_gradienttape.ipynb", as_version=4).cells[1]
    return nbformat.v4.new_notebook(cells=[setup, nbformat.v4.new_code_cell(TRAINING)])


def run_notebook(monkeypatch, archive_dir, key):
    monkeypatch.setenv("LABS_FAST", "1")
    monkeypatch.delenv("LABS_TRACKING", raising=False)
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(archive_dir))
    # "No network" for Comet, made deterministic: its server address points at a closed port.
    monkeypatch.setenv("COMET_URL_OVERRIDE", f"http://127.0.0.1:{closed_port()}/clientlib/")
    if key:
        monkeypatch.setenv("COMET_API_KEY", key)
    else:
        monkeypatch.delenv("COMET_API_KEY", raising=False)
    nb = tracked_notebook()
    started = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return nb, time.perf_counter() - started


def test_key_without_network_lands_offline_within_seconds(monkeypatch, tmp_path):
    _, no_key_seconds = run_notebook(monkeypatch, tmp_path / "no-key", key=None)
    nb, key_seconds = run_notebook(monkeypatch, tmp_path / "key", key=FAKE_KEY)
    assert key_seconds < no_key_seconds + 10, (key_seconds, no_key_seconds)

    text = nbformat.writes(nb)
    assert FAKE_KEY not in text
    assert "not reachable" in text and "logging offline" in text

    archives = list((tmp_path / "key").glob("*.zip"))
    assert len(archives) == 1
    with zipfile.ZipFile(archives[0]) as archive:
        blobs = {name: archive.read(name) for name in archive.namelist()}
    assert all(FAKE_KEY.encode() not in blob for blob in blobs.values())
    messages = [json.loads(line) for line in blobs["messages.json"].decode().splitlines() if line.strip()]
    metrics = [m["payload"]["metric"] for m in messages if m["type"] == "metric_msg"]
    losses = [m for m in metrics if m["metricName"] == "loss"]
    assert len(losses) == NUM_STEPS  # every step logged
    assert any(m["metricName"] == "nb01/final_loss" for m in metrics)
    assert os.environ.get("COMET_API_KEY") == FAKE_KEY  # the test set it; it was never written anywhere
