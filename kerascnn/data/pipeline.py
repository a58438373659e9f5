"""The tf.data input pipeline: index -> (train) shuffle -> batch -> decode -> augment -> prefetch.

Examples stay in one in-memory tensor per split pool; the pipeline shuffles and batches their
int64 positions and gathers each batch, so a fold or a validation split never copies the
data. Decoding (gather, cast to float32, one-hot labels) is cached when the order is fixed.
"""

import tensorflow as tf

from kerascnn.data.augment import Augmentation


def batches(images, labels, positions, num_classes, batch_size, *, shuffle, seed, augment):
    """Returns a tf.data.Dataset of (float32 images at raw scale, one-hot float32 labels).

    Args:
        images: tensor holding the examples of the pool, examples first.
        labels: int64 tensor of class indices for the pool.
        positions: int64 array of the pool positions in this split.
        num_classes: length of the one-hot labels.
        batch_size: examples per batch (the last batch may be smaller).
        shuffle: reshuffle the positions each epoch (full-size buffer, so class-sorted
            data still gives mixed batches).
        seed: int seed of the shuffle.
        augment: None, an `Augmentation` (resampling in parallel calls, keyed by per-batch
            seeds) or any callable (images, labels) -> (images, labels), applied to batches
            in order.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")

    def decode(index):
        x = tf.cast(tf.gather(images, index), tf.float32)
        return x, tf.one_hot(tf.gather(labels, index), num_classes, dtype=tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices(positions)
    if shuffle:
        dataset = dataset.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if not shuffle:
        dataset = dataset.cache()
    if isinstance(augment, Augmentation):
        dataset = augment.map(dataset)
    elif augment is not None:
        # Sequential: a fixed call order keeps a stateful callable repeatable.
        dataset = dataset.map(augment)
    return dataset.prefetch(tf.data.AUTOTUNE)
