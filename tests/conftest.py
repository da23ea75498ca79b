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
