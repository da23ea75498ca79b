"""Guards every item pytest runs here -- tests, doctests in utils/ and tools/, nbval cells.

``make test`` runs the whole suite in one process with ``LABS_FAST=1``, and the notebook
kernels nbval starts last inherit this process's environment. A test or doctest that
changes ``os.environ`` without putting it back silently changes what later items see: a
doctest that removed ``LABS_FAST`` once made every notebook run in full mode under nbval
(53 minutes, cells past their time limit). So an item that leaves the environment changed
is reported as an error naming the variables, and they are restored. Only the variables that
change what the course does are watched (libraries may set their own on first import)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

WATCHED_PREFIXES = ("LABS_", "COMET_", "MPLBACKEND", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES")


def _watched() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(WATCHED_PREFIXES)}


@pytest.fixture(autouse=True)
def _environment_left_as_found() -> Iterator[None]:
    before = _watched()
    yield
    after = _watched()
    if after == before:
        return
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for name in changed:
        if name in before:
            os.environ[name] = before[name]
        else:
            os.environ.pop(name, None)
    pytest.fail(f"this test changed os.environ without restoring it: {', '.join(changed)} "
                "(use pytest's monkeypatch.setenv/delenv, or put the old value back)", pytrace=False)
