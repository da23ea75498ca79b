"""Strategy selection: the default strategy on one CPU; MirroredStrategy matches one device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from utils import hardware


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
