"""Choose a ``tf.distribute`` strategy so one notebook runs unchanged anywhere.

- a TPU (Colab TPU runtime, or ``TPU_NAME`` set): ``TPUStrategy``;
- two or more GPUs: ``MirroredStrategy`` over all of them -- unless Keras is older than
  3.8, which trains wrong under that strategy (see :mod:`utils.versions`): then one GPU,
  with a one-line reason;
- otherwise (one GPU or a CPU): TensorFlow's default strategy, which already places
  work on the single GPU when there is one.

Build the model and optimizer inside ``with strategy.scope():``; ``model.fit`` and
``strategy.run`` do the rest.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


def _tpu_requested() -> bool:
    """A TPU is only looked for where one can exist: asking elsewhere may wait on a
    metadata server that a laptop cannot reach."""
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")) or os.path.exists(
        "/dev/accel0"
    )


def get_strategy(devices: Sequence[str] | None = None) -> "tf.distribute.Strategy":
    """Return the distribution strategy for this machine.

    Args:
        devices: force ``MirroredStrategy`` over these devices (for example two logical
            CPUs in a test). ``None`` chooses from the hardware.
    """
    import tensorflow as tf

    if devices is not None:
        if len(devices) == 0:
            raise ValueError("devices must name at least one device, e.g. ['/cpu:0', '/cpu:1']")
        return tf.distribute.MirroredStrategy(list(devices))
    if _tpu_requested():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as err:
            print(f"A TPU was expected but could not be used ({err}); continuing without it.")
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) >= 2:
        import keras

        from utils import versions

        problem = versions.mirrored_strategy_problem(keras.__version__)
        if problem:
            print(f"{len(gpus)} GPUs found, but {problem}: training on one GPU.")
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def describe(strategy: "tf.distribute.Strategy") -> str:
    """One line naming the strategy and how many replicas it trains on."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices()
    kinds = sorted({d.device_type for d in devices if d.device_type in ("CPU", "GPU", "TPU")})
    return (
        f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s); "
        f"devices: {', '.join(kinds)}"
    )
