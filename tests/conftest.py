"""Shared test set-up: quiet TensorFlow, the repository on sys.path, and notebook kernels
that draw inline whatever the caller's MPLBACKEND says.

Notebook kernels started by nbval and nbclient inherit this process's environment, and
ipykernel selects its inline backend only where MPLBACKEND is unset: a caller's
``MPLBACKEND=Agg`` (common on CI machines) would make every ``plt.show()`` in a notebook
display nothing and fail nbval. So MPLBACKEND is removed here, and this process itself
draws with Agg."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("MPLBACKEND", None)  # before any kernel starts: see the module docstring
import matplotlib  # noqa: E402

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rejects(check: Callable[..., object], *args: object, fragment: str) -> str:
    """Run a lab check that must fail; assert its message contains ``fragment`` and
    reads as a message, not a traceback. Returns the message."""
    from utils.checks import CheckError

    with pytest.raises(CheckError) as info:
        check(*args)
    message = str(info.value)
    assert fragment in message, message
    assert "Traceback" not in message and "function_node" not in message, message
    return message


@pytest.fixture
def rejects() -> Callable[..., str]:
    """``rejects(check, *args, fragment=...)``: the check must fail with that text."""
    return _rejects


def _committed_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as committed: the working tree itself when ``notebooks/``, ``labs/``
    and ``docs/`` match ``HEAD`` (a fresh clone, CI), else a copy of them exported from
    ``HEAD`` -- so a learner who runs or fills in a notebook locally, which changes its
    stored outputs or a lab, does not fail the staleness tests (they check what is
    committed; `make check` checks the working tree)."""
    import shutil
    import subprocess

    paths = ["notebooks", "labs", "docs"]
    try:
        changed = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True,
                                 text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ROOT  # not a git checkout (a downloaded archive): the working tree is all there is
    if not changed:
        return ROOT
    target = tmp_path_factory.mktemp("committed")
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", *paths], cwd=ROOT, capture_output=True,
                             timeout=60, check=True).stdout
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    shutil.copytree(ROOT / "utils", target / "utils", dirs_exist_ok=True)
    return target


@pytest.fixture(scope="session")
def committed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """See :func:`_committed_tree`."""
    return _committed_tree(tmp_path_factory)
