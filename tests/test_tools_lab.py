"""`make lab` (``python -m tools.lab``): the shipped notebooks are trusted, root can start
it, and a course notebook saved the way JupyterLab 4 saves it is stored canonical and
still signed. The browser test (tests/test_browser.py) checks the same in a real JupyterLab."""

from __future__ import annotations

import copy
import json
import shutil

import nbformat
import pytest

from tools import lab, notebooks
from utils import ROOT


@pytest.fixture
def jupyter_data(tmp_path, monkeypatch):
    """A private Jupyter data folder: the signature store and its secret live there."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    return tmp_path / "jupyter-data"


def test_shipped_notebooks_are_trusted_by_the_launcher(jupyter_data, tmp_path):
    from nbformat.sign import NotebookNotary

    copies = [shutil.copy(ROOT / "notebooks" / "04_music_lstm.ipynb", tmp_path / "nb04.ipynb"),
              shutil.copy(ROOT / "labs" / "01_tensors_gradienttape.ipynb", tmp_path / "lab01.ipynb")]
    notary = NotebookNotary()
    assert not any(notary.check_signature(nbformat.read(p, as_version=4)) for p in copies)
    assert lab.trust(copies) == 2
    assert all(NotebookNotary().check_signature(nbformat.read(p, as_version=4)) for p in copies)
    assert lab.trust(copies) == 0  # already trusted


def test_lab_command_opens_notebook_01_allows_root_only_as_root_and_keeps_saves_canonical():
    as_root, as_user = lab.lab_command([], euid=0), lab.lab_command(["--port=9999"], euid=1000)
    assert "--allow-root" in as_root and "--allow-root" not in as_user and as_user[-1] == "--port=9999"
    assert "--LabApp.default_url=/lab/tree/notebooks/01_tensors_gradienttape.ipynb" in as_root
    assert "--ContentsManager.pre_save_hook=tools.lab.canonical_on_save" in as_root


def _as_jupyterlab_sends_it(path):
    """The model JupyterLab 4 sends to the server when it saves an opened notebook: kernel
    display name and language details from the kernel, UI state and `trusted` in cell
    metadata, its own id for a cell the learner added, an empty cell left behind."""
    nb = json.loads(json.dumps(nbformat.read(path, as_version=4)))  # sources as one string each
    nb["metadata"] = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                          "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                          "pygments_lexer": "ipython3", "version": "3.11.7"},
    }
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["metadata"].update({"trusted": True, "scrolled": True, "collapsed": False,
                                     "execution": {"iopub.status.busy": "2026-01-01T00:00:00.000Z"}})
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "3f2a9c1e-7b4d-4c1a-9e0f-1a2b3c4d5e6f",
                        "metadata": {"trusted": True}, "outputs": [], "source": ""})
    return {"type": "notebook", "format": "json", "content": nb}


@pytest.mark.parametrize("name", ["notebooks/01_tensors_gradienttape.ipynb", "labs/04_music_lstm.ipynb"])
def test_a_notebook_saved_by_jupyterlab_stays_canonical_and_trusted(name, tmp_path, jupyter_data):
    from jupyter_server.services.contents.filemanager import FileContentsManager

    (tmp_path / name).parent.mkdir(parents=True)
    shutil.copy(ROOT / name, tmp_path / name)
    model = _as_jupyterlab_sends_it(ROOT / name)
    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook="tools.lab.canonical_on_save")
    manager.save(copy.deepcopy(model), name)
    saved = tmp_path / name
    assert notebooks.format_all([saved], check=True) == [], "saved by JupyterLab, then `make check`: not canonical"
    assert saved.read_text() == (ROOT / name).read_text()  # nothing but JupyterLab's additions changed
    reopened = manager.get(name)["content"]
    assert all(c["metadata"].get("trusted") for c in reopened["cells"] if c["cell_type"] == "code"), \
        "the server no longer trusts the outputs the learner made"


def test_a_learners_own_notebook_is_saved_as_it_is(tmp_path, jupyter_data):
    from jupyter_server.services.contents.filemanager import FileContentsManager

    model = _as_jupyterlab_sends_it(ROOT / "notebooks" / "01_tensors_gradienttape.ipynb")
    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook="tools.lab.canonical_on_save")
    manager.save(copy.deepcopy(model), "my_notes.ipynb")
    stored = json.loads((tmp_path / "my_notes.ipynb").read_text())
    assert stored["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert len(stored["cells"]) == len(model["content"]["cells"]) and stored["cells"][-1]["source"] in ("", [])
