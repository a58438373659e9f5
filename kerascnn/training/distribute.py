"""tf.distribute strategies by name."""

import json
import os

import tensorflow as tf

from kerascnn.errors import InputError

STRATEGIES = (None, "mirrored", "multi_worker")


def get_strategy(strategy=None):
    """Returns a tf.distribute.Strategy.

    Args:
        strategy: None (the default strategy: one device), "mirrored" (every local GPU, or
            the CPU when there is none; logical CPU devices set up before TensorFlow starts
            count as devices too), "multi_worker" (MultiWorkerMirroredStrategy over the
            cluster in $TF_CONFIG; create it before any other TensorFlow work in the
            process), or a Strategy instance.

    Raises:
        ValueError: an unknown name; "multi_worker" without a usable $TF_CONFIG.
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
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InputError(f"strategy={strategy!r} is unknown; choose one of {STRATEGIES} or pass a tf.distribute.Strategy.")


def check_tf_config(text):
    """Raises ValueError unless `text` is a TF_CONFIG naming the cluster's workers and this task.

    Args:
        text: the value of $TF_CONFIG, or None when it is not set.
    """
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
               '"task": {"type": "worker", "index": 0}}\' (index 1 on host2)')
    if not text:
        raise InputError(
            "strategy='multi_worker' reads its cluster from the TF_CONFIG environment variable, "
            f"which is not set. Set it on every worker, e.g. {example}; or use 'mirrored' on one "
            "machine."
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        config = None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    addresses = isinstance(cluster, dict) and (cluster.get("worker") or cluster.get("chief"))
    if not (addresses and isinstance(task, dict) and {"type", "index"} <= set(task)):
        raise InputError(
            f"TF_CONFIG={text!r} must be JSON with a 'cluster' listing the 'worker' (and "
            f"'chief') addresses and this process's 'task' (type and index); e.g. {example}."
        )
