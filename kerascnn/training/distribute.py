"""tf.distribute strategies by name."""

import tensorflow as tf

STRATEGIES = (None, "mirrored", "multi_worker")


def get_strategy(strategy=None):
    """Returns a tf.distribute.Strategy.

    Args:
        strategy: None (the default strategy: one device), "mirrored" (every local GPU, or
            the CPU when there is none; logical CPU devices set up before TensorFlow starts
            count as devices too), or a Strategy instance. "multi_worker" is refused with an
            explanation until Keras 3's fit supports MultiWorkerMirroredStrategy.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy is None:
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if strategy == "multi_worker":
        raise ValueError(
            "strategy='multi_worker' cannot train yet: Keras 3's fit fails under "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585). Use 'mirrored' on one machine."
        )
    raise ValueError(f"strategy={strategy!r} is unknown; choose one of {STRATEGIES} or pass a tf.distribute.Strategy.")

