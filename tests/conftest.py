"""Shared test set-up: quiet TensorFlow, the repository on sys.path.

MPLBACKEND is deliberately left alone: notebook kernels started by nbval inherit this
process's environment and must keep ipykernel's inline backend (headless Matplotlib
falls back to Agg by itself)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
