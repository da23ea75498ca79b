"""The fast-mode switch, read in one place.

Every notebook has two configurations with the same code path:

- **full** (the default): what learners run and what the stored outputs show;
- **fast** (``LABS_FAST=1``): smaller data subsets and fewer steps, for CI.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.

>>> import os
>>> saved = os.environ.get("LABS_FAST")
>>> os.environ["LABS_FAST"] = "1"
>>> pick(full=3000, fast=100)
100
>>> os.environ["LABS_FAST"] = "0"
>>> pick(full=3000, fast=100), mode_name()
(3000, 'full')
>>> _ = os.environ.pop("LABS_FAST") if saved is None else os.environ.update(LABS_FAST=saved)
"""

from __future__ import annotations

import os
from typing import TypeVar

#: The environment variable that switches every notebook to its fast configuration.
FAST_ENV = "LABS_FAST"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

T = TypeVar("T")


def is_fast() -> bool:
    """Return ``True`` when ``LABS_FAST`` asks for the fast (CI) configuration.

    Raises:
        ValueError: the variable holds something that is neither yes nor no.
    """
    raw = os.environ.get(FAST_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{FAST_ENV}={os.environ[FAST_ENV]!r} is not understood: "
        f"set it to 1 for the fast configuration or 0 (or leave it unset) for the full one."
    )


def mode_name() -> str:
    """``"fast"`` or ``"full"``."""
    return "fast" if is_fast() else "full"


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise."""
    return fast if is_fast() else full
