"""Shared test set-up: quiet TensorFlow, the repository on sys.path.

MPLBACKEND is deliberately left alone: notebook kernels started by nbval inherit this
process's environment and must keep ipykernel's inline backend (headless Matplotlib
falls back to Agg by itself)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
