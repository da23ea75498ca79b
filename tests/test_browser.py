"""The course in a real JupyterLab, driven in headless Chromium.

``python -m tools.lab`` (what ``make lab`` runs) is started on a scratch copy of the course
(a free port, its own token, its own Jupyter folders: nothing in the repository or the
user's Jupyter set-up changes), with ``LABS_FAST=1`` so the runs are CI-sized. Chromium
opens the URL the server prints, as a learner would, and the test checks what a learner
sees: notebook 01 (not the Launcher) opens and runs without an error and draws its plots;
lab 01 stops at TODO 1 with a one-line message; the stored notebook 04 shows its images
and its audio players have a playable source without running anything (the notebooks are
trusted); run in fast mode, it plays a new tune; a notebook JupyterLab saved is still
canonical. Skipped, with the reason, where Chromium, its driver or Selenium is missing
(``.ci/run`` installs them when it runs as root with ``apt-get``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from utils import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
_MISSING = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if not found]
if _MISSING:
    pytest.skip(
        f"{' and '.join(_MISSING)} not installed (Debian: `apt-get install -y chromium chromium-driver`; "
        f".ci/run does it when it runs as root)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (tests/requirements.txt)")

NB01 = "notebooks/01_tensors_gradienttape.ipynb"
LAB01 = "labs/01_tensors_gradienttape.ipynb"
NB04 = "notebooks/04_music_lstm.ipynb"
SERVER_START_S = 180
RUN_S = 600  # failure guards only: on a 2-core machine at load 22-25 the three runs side by side took 4-5 min
RENDER_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab started by ``python -m tools.lab`` on a scratch copy of the course."""
    scratch = tmp_path_factory.mktemp("course")
    for folder in ("notebooks", "labs", "utils", "tools"):
        shutil.copytree(ROOT / folder, scratch / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (scratch / "data").symlink_to(ROOT / "data")  # read only
    home = tmp_path_factory.mktemp("jupyter")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "LABS_FAST": "1",
        "LABS_TRACKING": "disabled",
    }
    env.pop("MPLBACKEND", None)
    log_path = home / "server.log"
    port = _free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tools.lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
             "--ServerApp.ip=127.0.0.1", "--LabApp.expose_app_in_browser=True"],
            cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.5)
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+\?token=\w+", log_path.read_text())
            url = found.group(0) if found else None
        assert url, f"JupyterLab did not print its URL within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}"
        yield {"url": url, "root": scratch, "log": log_path}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def browser(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_script_timeout(100)  # each script waits briefly; long waits are polled from here
    try:
        yield driver
    finally:
        driver.quit()


# JavaScript run in the page: `window.jupyterapp` is JupyterLab itself (expose_app_in_browser);
# every script finds its notebook panel by path (the focus-based `currentWidget` is unset
# in a headless window). `arguments[0]` is the path.
_PANEL = """
const panelOf = path => window.jupyterapp
  && [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
"""

_WAIT_FOR_NOTEBOOK = _PANEL + """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const started = Date.now();
(async () => {
  while (!panelOf(path)) {
    if (Date.now() - started > 60000) {
      const open = window.jupyterapp ? [...jupyterapp.shell.widgets('main')].map(w => w.title.label) : [];
      return done({error: 'notebook ' + path + ' did not open; open tabs: ' + JSON.stringify(open)});
    }
    await new Promise(r => setTimeout(r, 250));
  }
  const panel = panelOf(path);
  await panel.context.ready;
  await panel.sessionContext.ready;
  done({tabs: [...jupyterapp.shell.widgets('main')].map(w => w.title.label),
        launcher: document.querySelectorAll('.jp-Launcher').length,
        trusted: panel.content.widgets.filter(c => c.model.type === 'code').every(c => c.model.trusted)});
})().catch(e => done({error: String(e)}));
"""

# Starts "Run All Cells" and returns at once; `_RESULT` polls for its outcome (a long run
# in one call would outlast the WebDriver connection's own time-out).
_RUN_ALL = _PANEL + """
const path = arguments[0];
const panel = panelOf(path);
window.__runs = window.__runs || {};
window.__runs[path] = null;
panel.sessionContext.ready  // `widgetId`: this notebook, whichever has the focus
  .then(() => jupyterapp.commands.execute('notebook:run-all-cells', {widgetId: panel.id}))
  .then(ok => { window.__runs[path] = {ok: ok}; }, e => { window.__runs[path] = {error: String(e)}; });
"""

_RESULT = "return (window.__runs || {})[arguments[0]] || null;"

_OUTPUTS = _PANEL + """
return panelOf(arguments[0]).content.model.toJSON().cells.filter(c => c.cell_type === 'code')
  .map(c => ({source: Array.isArray(c.source) ? c.source.join('') : c.source, count: c.execution_count,
              outputs: c.outputs}));
"""

# How many images and audio players the notebook's outputs hold, and how many are in the
# page (outputs render after the model loads).
_RENDERED = _PANEL + """
const panel = panelOf(arguments[0]);
jupyterapp.shell.activateById(panel.id);
const outputs = panel.content.model.toJSON().cells.flatMap(c => c.outputs || []);
const node = panel.content.node;
return {want: {img: outputs.filter(o => o.data && o.data['image/png']).length,
               audio: outputs.filter(o => o.data && /<audio/.test([].concat(o.data['text/html'] || []).join(''))).length},
        have: {img: node.querySelectorAll('.jp-OutputArea-output img').length,
               audio: node.querySelectorAll('.jp-OutputArea-output audio').length}};
"""

# Every image in the notebook's outputs decoded; every audio player's source and whether
# it loads (readyState, duration) and plays (currentTime moves).
_MEDIA = _PANEL + """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const node = panelOf(path).content.node;
(async () => {
  const images = [];
  for (const img of node.querySelectorAll('.jp-OutputArea-output img')) {
    img.scrollIntoView();
    if (img.decode) { try { await img.decode(); } catch (e) {} }
    images.push({width: img.naturalWidth, src: img.src.slice(0, 22)});
  }
  const audios = [];
  for (const audio of node.querySelectorAll('.jp-OutputArea-output audio')) {
    const source = audio.querySelector('source');
    const src = (source && source.getAttribute('src')) || audio.getAttribute('src') || '';
    audio.scrollIntoView();
    if (audio.readyState < 1) {
      await new Promise(r => { audio.addEventListener('loadedmetadata', r, {once: true});
                               audio.addEventListener('error', r, {once: true}); audio.load(); setTimeout(r, 10000); });
    }
    let played = null;
    try {
      audio.muted = true;
      await audio.play();
      const playing = Date.now();
      while (audio.currentTime === 0 && Date.now() - playing < 10000) await new Promise(r => setTimeout(r, 100));
      played = audio.currentTime;
      audio.pause();
    } catch (e) { played = String(e); }
    audios.push({src: src.slice(0, 22), readyState: audio.readyState, duration: audio.duration, played: played,
                 error: audio.error ? audio.error.code : null});
  }
  done({images: images, audios: audios});
})().catch(e => done({error: String(e)}));
"""

_STDERR_SHOWN = _PANEL + """
return [...panelOf(arguments[0]).content.node.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(n => n.textContent.trim());
"""

_OPEN = "jupyterapp.commands.execute('docmanager:open', {path: arguments[0]});"

_SAVE_AND_SHUT_DOWN = _PANEL + """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const panel = panelOf(path);
panel.context.save().then(() => panel.sessionContext.shutdown()).then(() => done({ok: true}))
  .catch(e => done({error: String(e)}));
"""

_SHUT_DOWN = _PANEL + """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
panelOf(path).sessionContext.shutdown().then(() => done({ok: true}), e => done({error: String(e)}));
"""


def _call(driver: Any, script: str, *args: Any) -> Any:
    result = driver.execute_async_script(script, *args)
    assert not (isinstance(result, dict) and result.get("error")), result
    return result


def _start_run_all(driver: Any, path: str) -> None:
    """Start "Run All Cells" on ``path`` (returns at once; :func:`_wait_run_all` waits)."""
    driver.execute_script(_RUN_ALL, path)


def _wait_run_all(driver: Any, path: str) -> bool:
    """Wait for the run :func:`_start_run_all` started: whether all ran (False: one failed)."""
    deadline = time.monotonic() + RUN_S
    while (result := driver.execute_script(_RESULT, path)) is None:
        if time.monotonic() > deadline:
            counts = [c["count"] for c in driver.execute_script(_OUTPUTS, path)]
            pytest.fail(f"{path} still running after {RUN_S} s; execution counts so far: {counts}")
        time.sleep(0.5)
    assert not result.get("error"), result
    return result["ok"]


def _media(driver: Any, path: str) -> dict[str, Any]:
    """The notebook's images and audio players as the page shows them, once all rendered."""
    deadline = time.monotonic() + RENDER_S
    while (counts := driver.execute_script(_RENDERED, path))["have"] != counts["want"]:
        if time.monotonic() > deadline:
            break  # report what is there: the assertions say what is missing
        time.sleep(0.5)
    return {**_call(driver, _MEDIA, path), "expected": counts["want"]}


def _open(driver: Any, path: str) -> dict[str, Any]:
    driver.execute_script(_OPEN, path)
    return _call(driver, _WAIT_FOR_NOTEBOOK, path)


def _errors(cells: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, o) for i, c in enumerate(cells) for o in c["outputs"] if o["output_type"] == "error"]


def _text(output: dict[str, Any]) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else text


@pytest.fixture(scope="module")
def course(lab: dict[str, Any], browser: Any) -> dict[str, Any]:
    """Opens the printed URL; looks at the stored notebook 04 before anything runs; then
    starts notebook 04 (the longest run), notebook 01 and lab 01 side by side."""
    browser.get(lab["url"])  # the URL the server printed, as a learner would copy it
    seen = {"url": _call(browser, _WAIT_FOR_NOTEBOOK, NB01)}
    seen["stored 04"] = _open(browser, NB04)
    seen["stored 04 media"] = _media(browser, NB04)
    _start_run_all(browser, NB04)
    _start_run_all(browser, NB01)
    _open(browser, LAB01)
    _start_run_all(browser, LAB01)
    return seen


def test_printed_url_opens_notebook_01_not_the_launcher(course):
    opened = course["url"]
    assert opened["launcher"] == 0 and opened["tabs"] == [Path(NB01).name], opened


def test_stored_notebook_04_shows_images_and_plays_audio_without_running(course):
    assert course["stored 04"]["trusted"], "the shipped notebook is not trusted: its HTML outputs are sanitised"
    media = course["stored 04 media"]
    assert len(media["images"]) == media["expected"]["img"] > 0, media
    assert all(i["width"] > 100 for i in media["images"]), media["images"]
    assert media["audios"], "no <audio> player in the stored notebook 04"
    for audio in media["audios"]:
        assert audio["src"].startswith("data:audio/wav;base64"), audio
        assert audio["error"] is None and audio["readyState"] >= 1 and 1 < audio["duration"] < 600, audio
        assert isinstance(audio["played"], (int, float)) and audio["played"] > 0, audio


def test_notebook_01_runs_without_errors_and_plots_and_saves_canonical(lab, browser, course):
    assert _wait_run_all(browser, NB01)
    cells = browser.execute_script(_OUTPUTS, NB01)
    assert _errors(cells) == []
    assert [c["count"] for c in cells] == list(range(1, len(cells) + 1))
    assert any("fast mode" in _text(o) for c in cells for o in c["outputs"] if o["output_type"] == "stream")
    assert any("image/png" in o.get("data", {}) for c in cells for o in c["outputs"])
    media = _media(browser, NB01)
    assert media["images"] and all(i["width"] > 100 for i in media["images"]), media["images"]
    # JupyterLab's own save (autosave does the same) leaves the file canonical.
    _call(browser, _SAVE_AND_SHUT_DOWN, NB01)
    from tools import notebooks

    saved = lab["root"] / NB01
    assert notebooks.format_all([saved], check=True) == [], "a notebook saved by JupyterLab is not canonical"
    assert '"display_name": "Python 3"' in saved.read_text()


def test_untouched_lab_01_stops_at_todo_1_with_one_line(browser, course):
    assert not _wait_run_all(browser, LAB01), "an untouched lab must stop at its first check"
    cells = browser.execute_script(_OUTPUTS, LAB01)
    [(index, error)] = _errors(cells)
    first_todo = next(i for i, c in enumerate(cells) if re.search(r"# TODO 1:", c["source"]))
    assert index == first_todo + 1 and error["ename"] == "TodoNotDone"
    assert len(error["traceback"]) == 1 and "\n" not in error["traceback"][0].strip()
    assert "TODO 1" in error["evalue"] or "still `...`" in error["evalue"], error["evalue"]
    assert all(c["count"] is None for c in cells[index + 1:]), "cells after the failed check ran"
    shown = browser.execute_script(_STDERR_SHOWN, LAB01)
    assert len(shown) == 1 and len(shown[0].splitlines()) == 1 and error["evalue"] in shown[0], shown
    _call(browser, _SHUT_DOWN, LAB01)


def test_notebook_04_in_fast_mode_plays_a_new_tune(browser, course):
    assert _wait_run_all(browser, NB04)
    cells = browser.execute_script(_OUTPUTS, NB04)
    assert _errors(cells) == []
    assert any("fast mode" in _text(o) for c in cells for o in c["outputs"] if o["output_type"] == "stream")
    media = _media(browser, NB04)
    assert media["audios"] and all(a["src"].startswith("data:audio/wav;base64") for a in media["audios"])
    assert all(a["readyState"] >= 1 and a["duration"] > 0 for a in media["audios"]), media["audios"]
    _call(browser, _SHUT_DOWN, NB04)
