"""Plots work headless: curves, image grids, live curves outside Jupyter."""

from __future__ import annotations

import numpy as np
import pytest

from utils import plots


def test_plot_curves_and_grid_headless():
    fig = plots.plot_curves({"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.4], "accuracy": [0.1, 0.5, 0.9]})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["loss", "val_loss"]
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), [1.1, 0.7, 0.4])
    grid = plots.image_grid(np.random.rand(10, 28, 28, 1), labels=list(range(10)), ncols=5)
    titled = [ax.get_title() for ax in grid.axes if ax.get_images()]
    assert titled == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves({})
    with pytest.raises(ValueError, match="labels"):
        plots.image_grid(np.zeros((3, 4, 4)), labels=[1])

def test_live_curves_collects_history_outside_jupyter():
    live = plots.LiveCurves(xlabel="step", every=2)
    for step in range(5):
        live.update(loss=1.0 / (step + 1))
    assert live.history["loss"][-1] == pytest.approx(0.2)
    fig = live.done()
    assert fig.axes[0].get_title() == "loss"
    callback = live.keras_callback()
    callback.on_epoch_end(0, {"loss": 0.1, "accuracy": 0.9})
    assert live.history["accuracy"] == [0.9]
