"""The fast-mode switch: read in one place, strict about what it accepts."""

from __future__ import annotations

import pytest

from utils import mode


@pytest.mark.parametrize("raw, fast", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("off", False)])
def test_fast_switch(monkeypatch, raw, fast):
    monkeypatch.setenv(mode.FAST_ENV, raw)
    assert mode.is_fast() is fast
    assert mode.pick(full="full", fast="fast") == ("fast" if fast else "full")
    assert mode.mode_name() == ("fast" if fast else "full")

def test_fast_switch_default_is_full(monkeypatch):
    monkeypatch.delenv(mode.FAST_ENV, raising=False)
    assert mode.is_fast() is False

def test_fast_switch_rejects_garbage(monkeypatch):
    monkeypatch.setenv(mode.FAST_ENV, "maybe")
    with pytest.raises(ValueError, match="LABS_FAST='maybe' is not understood"):
        mode.is_fast()
