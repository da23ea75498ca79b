"""Fast-mode switch, seeding, strategy selection, session set-up and plots."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from utils import hardware, mode, plots, seeding


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


def test_set_seed_makes_numpy_and_tensorflow_repeat():
    import tensorflow as tf

    seeding.set_seed(123)
    a = (np.random.rand(3), tf.random.normal((3,)).numpy())
    seeding.set_seed(123)
    b = (np.random.rand(3), tf.random.normal((3,)).numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        seeding.set_seed(-1)


def test_default_strategy_on_cpu(monkeypatch):
    import tensorflow as tf

    for var in ("TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(var, raising=False)
    strategy = hardware.get_strategy()
    if not tf.config.list_logical_devices("GPU"):
        assert strategy.num_replicas_in_sync == 1
    assert "replica" in hardware.describe(strategy)
    with pytest.raises(ValueError):
        hardware.get_strategy(devices=[])


def test_mirrored_strategy_over_two_cpus_matches_one_device():
    """The same model trained a few steps under MirroredStrategy over two logical CPUs
    gives the same weights as on one device (within float32 round-off: 1e-5)."""
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from utils import hardware, seeding

        def train(strategy):
            seeding.set_seed(0)
            x = np.random.rand(64, 8).astype("float32"); y = np.random.randint(0, 3, 64)
            with strategy.scope():
                model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
                model.compile(optimizer=keras.optimizers.SGD(0.1),
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
            return model.get_weights()

        mirrored = hardware.get_strategy(devices=["/cpu:0", "/cpu:1"])
        assert mirrored.num_replicas_in_sync == 2
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(train(tf.distribute.get_strategy()), train(mirrored)))
        print("max weight difference", diff)
        assert diff < 1e-5, diff
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max weight difference" in done.stdout


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


def test_session_start_reports_mode_and_run_time(monkeypatch, capsys):
    from utils import session

    monkeypatch.setenv(mode.FAST_ENV, "1")
    run = session.start("unit")
    out = capsys.readouterr().out
    assert "fast mode" in out and "TensorFlow 2.21" in out and run.fast
    run.finish()
    assert capsys.readouterr().out.startswith("[metric] unit/run_time_s = ")
