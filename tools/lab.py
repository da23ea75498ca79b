"""Open the course in JupyterLab: ``make lab`` runs ``python -m tools.lab``.

- It trusts the shipped notebooks (``notebooks/`` and ``labs/``) in this user's Jupyter
  signature store first, so their stored audio players and HTML work when opened
  (JupyterLab strips active HTML, such as an ``<audio>`` source, from untrusted outputs).
  It does so at every start: a ``git pull`` that changes a notebook changes its signature.
- The URL it prints opens notebook 01, not the Launcher.
- As root (Docker, many cloud VMs) it adds ``--allow-root``; as a user it does not.
- Every save of a course notebook goes through :func:`canonical_on_save` (a Jupyter
  server pre-save hook), so opening, running or saving a notebook in JupyterLab keeps
  it in the canonical form that ``make check`` and ``make test`` expect.

Further arguments go to ``jupyter lab`` unchanged, e.g. ``python -m tools.lab --port 8890
--no-browser``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat

from tools import notebooks
from utils import ROOT

#: The notebooks whose saves are kept canonical (the ones `make check` checks), as
#: JupyterLab names them: relative to the server's root, the repository.
COURSE_NOTEBOOK = re.compile(r"^/?(notebooks|labs)/[^/]+\.ipynb$")


def course_notebooks() -> list[Path]:
    """The shipped notebooks: ``notebooks/`` and ``labs/``."""
    return notebooks.all_notebooks() + sorted((ROOT / "labs").glob("*.ipynb"))


def trust(paths: list[Path]) -> int:
    """Sign ``paths`` in this user's notebook signature store (what ``jupyter trust``
    does); return how many were newly trusted."""
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    signed = 0
    for path in paths:
        nb = notebooks.read(path)
        if not notary.check_signature(nb):
            notary.sign(nb)
            signed += 1
    return signed


def first_notebook_url_path() -> str:
    """The URL path that opens notebook 01 in JupyterLab."""
    return "/lab/tree/" + notebooks.all_notebooks()[0].relative_to(ROOT).as_posix()


def lab_command(extra: list[str], euid: int) -> list[str]:
    """The ``jupyter lab`` command line (run from the repository root).

    >>> command = lab_command(["--no-browser"], euid=0)
    >>> "--allow-root" in command, "--allow-root" in lab_command([], euid=1000)
    (True, False)
    >>> command[-1], [a for a in command if "default_url" in a]
    ('--no-browser', ['--LabApp.default_url=/lab/tree/notebooks/01_tensors_gradienttape.ipynb'])
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.default_url={first_notebook_url_path()}",
        "--ContentsManager.pre_save_hook=tools.lab.canonical_on_save",
    ]
    if euid == 0:
        command.append("--allow-root")
    return command + list(extra)


def canonical_on_save(model: dict[str, Any], path: str, contents_manager: Any = None, **kwargs: Any) -> None:
    """Jupyter server pre-save hook: store a course notebook in canonical form.

    JupyterLab saves the kernel's display name and language details in the notebook's
    metadata and UI state in its cells'; this keeps the file as ``make fmt`` writes it.
    Cells' ``trusted`` flags are kept, so the server still signs a notebook whose
    outputs the learner produced. Other notebooks (a learner's own) are left alone.
    """
    if model.get("type") != "notebook" or not COURSE_NOTEBOOK.match(path):
        return
    flags = [cell.get("metadata", {}).get("trusted") for cell in model["content"].get("cells", [])]
    nb = nbformat.reads(json.dumps(model["content"]), as_version=4)  # sources as lists or strings; drops `trusted`
    trusted = {id(cell): flag for cell, flag in zip(nb.cells, flags)}
    notebooks.canonicalize(nb)
    for cell in nb.cells:
        if trusted.get(id(cell)) is not None:
            cell.metadata["trusted"] = trusted[id(cell)]
    model["content"] = nb


def fast_mode_warning() -> str | None:
    """A warning when ``LABS_FAST`` is on: a notebook saved from this session would store
    a fast-mode run over the full-mode one in ``notebooks/``.

    >>> import os; saved = os.environ.get("LABS_FAST")
    >>> os.environ["LABS_FAST"] = "1"
    >>> print(fast_mode_warning())  # doctest: +ELLIPSIS
    warning: LABS_FAST=1: the notebooks run in fast mode here. ... (File → Save Notebook As...), or unset LABS_FAST ...
    >>> os.environ["LABS_FAST"] = "0"
    >>> fast_mode_warning() is None
    True
    >>> _ = os.environ.pop("LABS_FAST") if saved is None else os.environ.update(LABS_FAST=saved)
    """
    from utils import mode

    if not mode.is_fast():
        return None
    return (
        f"warning: {mode.FAST_ENV}=1: the notebooks run in fast mode here. The stored notebooks are "
        f"full-mode runs: keep a fast run out of notebooks/ (File → Save Notebook As...), or unset "
        f"{mode.FAST_ENV} to learn with the full runs."
    )


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    try:
        signed = trust(course_notebooks())
        warning = fast_mode_warning()
    except (notebooks.NotebookError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if signed:
        print(f"Trusted {signed} course notebooks, so their stored sound and HTML outputs play when opened.")
    if warning:
        print(warning, file=sys.stderr)
    print("Opening notebook 01 in JupyterLab (Ctrl-C twice to stop) ...", flush=True)
    os.chdir(ROOT)  # the server imports this module's pre-save hook from here
    command = lab_command(extra, euid=os.geteuid() if hasattr(os, "geteuid") else 1)
    os.execv(command[0], command)
    return 0  # pragma: no cover (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
