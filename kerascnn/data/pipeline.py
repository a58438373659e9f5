"""The tf.data input pipeline: index -> (train) shuffle -> batch -> decode -> augment -> prefetch.

Examples stay in one in-memory tensor per split pool; the pipeline shuffles and batches their
int64 positions and gathers each batch, so a fold or a validation split never copies the
data. When the order is fixed, the gathered batches are cached as stored (uint8 images: a
quarter of float32's memory), then cast to float32 with one-hot labels.
For multi-worker training, `batches(..., input_context=...)` gives one worker the parts of
every global batch that tf.distribute would give its replicas, and reads only those: a
streamed pool's files are split between the workers instead of read by each.

`epoch_stream` is the training form: the batches of a range of epochs in one dataset, each
epoch's order and augmentation a pure function of (seed, epoch, batch), so a run resumed at
epoch k sees exactly the batches an uninterrupted run sees from epoch k on.
"""

import tensorflow as tf

from kerascnn.data.augment import Augmentation
from kerascnn.errors import InputError

SEED_STATE = "seed_generator_state"  # Keras' name of a SeedGenerator's state variable


def _check_batch_size(batch_size):
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")


def _decoder(images, labels, num_classes):
    """Gathers a batch: float32 examples, and one-hot labels (float32 targets as they are
    when `num_classes` is None: regression)."""
    def decode(index, read=None):
        # `read`: the batch already read (a file pool's, by `_batch`) or gathered (cached).
        x = tf.cast(tf.gather(images, index) if read is None else read, tf.float32)
        y = tf.gather(labels, index)
        if num_classes is None:
            return x, tf.cast(y, tf.float32)
        return x, tf.one_hot(y, num_classes, dtype=tf.float32)

    return decode


def _batch(positions, images, batch_size):
    """Batches a dataset of positions; a file pool's examples are read one by one first.

    A callable `images` (a file pool's reader, position -> example) runs in parallel calls
    before batching, giving (positions, examples) batches; one marked `reads_batches` (a
    memory-mapped cache) reads a whole batch of positions per call instead. The loader
    decoded every file once and left out the unreadable ones, so the batch count stays known
    (Keras needs it).
    """
    if callable(images) and getattr(images, "reads_batches", False):
        return positions.batch(batch_size).map(lambda index: (index, images(index)),
                                               num_parallel_calls=tf.data.AUTOTUNE)
    if callable(images):
        positions = positions.map(lambda index: (index, images(index)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    return positions.batch(batch_size)


def _replica_share(positions, images, batch_size, input_context):
    """Batches a dataset of positions into this input pipeline's replica batches, read.

    Every global batch of `batch_size` positions is cut into `num_replicas_in_sync`
    contiguous parts, the first `size % replicas` of them one longer: the parts that
    `experimental_distribute_dataset` gives the replicas (it rebatches each global batch so,
    then each worker keeps its own parts). Pipeline i keeps parts i * local .. (i + 1) * local
    - 1 and reads only their examples, so no example is read twice across workers. A batch
    smaller than the replica count is dropped: a replica given no example fails in its
    convolutions, and its peers would wait for it forever.
    """
    replicas = input_context.num_replicas_in_sync
    local = replicas // input_context.num_input_pipelines
    first = input_context.input_pipeline_id * local

    def parts(index):
        size = tf.size(index, out_type=tf.int64)
        replica = tf.range(first, first + local, dtype=tf.int64)
        starts = replica * (size // replicas) + tf.minimum(replica, size % replicas)
        ends = starts + size // replicas + tf.cast(replica < size % replicas, tf.int64)
        return tf.data.Dataset.from_tensor_slices((starts, ends)).map(
            lambda start, end: index[start:end])

    shares = (positions.batch(batch_size)
              .filter(lambda index: tf.size(index) >= replicas)
              .flat_map(parts))
    if not callable(images):
        return shares
    if getattr(images, "reads_batches", False):
        return shares.map(lambda index: (index, images(index)),
                          num_parallel_calls=tf.data.AUTOTUNE)
    # Each part is read example by example in parallel calls, then batched whole; the
    # ordered interleave reads several parts at once and keeps their order.
    return shares.interleave(
        lambda index: _batch(tf.data.Dataset.from_tensor_slices(index), images, batch_size),
        cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _replica_batch_count(examples, batch_size, input_context):
    """The number of batches `_replica_share` gives a pipeline from `examples` examples."""
    steps = steps_per_epoch(examples, batch_size)
    if examples % batch_size and examples % batch_size < input_context.num_replicas_in_sync:
        steps -= 1
    return steps * (input_context.num_replicas_in_sync // input_context.num_input_pipelines)


def batches(images, labels, positions, num_classes, batch_size, *, shuffle, seed, augment,
            input_context=None):
    """Returns a tf.data.Dataset of (float32 images at raw scale, one-hot float32 labels).

    Args:
        images: tensor holding the examples of the pool, examples first, or a callable
            (int64 position) -> example that reads one from its file.
        labels: int64 tensor of class indices for the pool.
        positions: int64 array of the pool positions in this split.
        num_classes: length of the one-hot labels; None for float targets (regression).
        batch_size: examples per batch (the last batch may be smaller).
        shuffle: reshuffle the positions each epoch (full-size buffer, so class-sorted
            data still gives mixed batches).
        seed: int seed of the shuffle.
        augment: None, an `Augmentation` (resampling in parallel calls, keyed by per-batch
            seeds) or any callable (images, labels) -> (images, labels), applied to batches
            in order.
        input_context: None, or a `tf.distribute.InputContext`: then the dataset holds this
            input pipeline's replica batches of every global batch of `batch_size` (the
            parts `experimental_distribute_dataset` would give its replicas), and only their
            examples are read; give it to `strategy.distribute_datasets_from_function`.
            Every pipeline must get the same `positions`, `shuffle` and `seed`.
    """
    _check_batch_size(batch_size)
    dataset = tf.data.Dataset.from_tensor_slices(positions)
    if shuffle:
        dataset = dataset.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
    if input_context is None:
        dataset = _batch(dataset, images, batch_size)
    else:
        dataset = _replica_share(dataset, images, batch_size, input_context).apply(
            tf.data.experimental.assert_cardinality(
                _replica_batch_count(len(positions), batch_size, input_context)))
    if not shuffle and not callable(images):  # files stream: memory must not grow with N
        dataset = dataset.map(lambda index: (index, tf.gather(images, index)),
                              num_parallel_calls=tf.data.AUTOTUNE).cache()
    dataset = dataset.map(_decoder(images, labels, num_classes),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if isinstance(augment, Augmentation):
        dataset = augment.map(dataset)
    elif augment is not None:
        # Sequential: a fixed call order keeps a stateful callable repeatable.
        dataset = dataset.map(augment)
    return dataset.prefetch(tf.data.AUTOTUNE)


def epoch_stream(images, labels, positions, num_classes, batch_size, *, shuffle, seed, augment,
                 epochs, initial_epoch=0):
    """Returns the batches of epochs `initial_epoch` .. `epochs - 1` as one tf.data.Dataset.

    Epoch e is shuffled by a stateless permutation keyed by (seed, e), and batch b of it is
    augmented with draws keyed by (seed, e, b): the stream is a pure function of its
    arguments. Give it to `model.fit` with `steps_per_epoch=steps_per_epoch(...)`.

    Args:
        images, labels, positions, num_classes, batch_size, shuffle, seed: as in `batches`.
        augment: None or an `Augmentation`. Its Keras layers that draw from seed generators
            (brightness, contrast, colour, RandAugment, MixUp, CutMix) have their generators
            set from the batch's key before each batch, in one sequential call.
        epochs: the index after the last epoch.
        initial_epoch: the first epoch of the stream.

    Raises:
        ValueError: for a bad batch size or an augmentation that is not an `Augmentation`.
    """
    _check_batch_size(batch_size)
    if augment is not None and not isinstance(augment, Augmentation):
        raise InputError("A resumable training stream needs an augmentation spec, not a "
                         f"callable; got {augment!r}.")
    positions = tf.constant(positions, dtype=tf.int64)
    steps = steps_per_epoch(int(positions.shape[0]), batch_size)
    base = tf.constant(int(seed), dtype=tf.int64)

    def one_epoch(epoch):
        key = tf.stack([base, epoch])
        order = (tf.random.experimental.stateless_shuffle(positions, seed=key) if shuffle
                 else positions)
        augment_key = tf.random.experimental.stateless_fold_in(key, 1)
        keys = tf.data.Dataset.range(steps).map(
            lambda step: (tf.random.experimental.stateless_fold_in(augment_key, step), epoch))
        indices = _batch(tf.data.Dataset.from_tensor_slices(order), images, batch_size)
        return tf.data.Dataset.zip(indices, keys)

    decode = _decoder(images, labels, num_classes)
    coins = (augment.flip_coins(int(labels.shape[0]))
             if augment is not None and augment.alternate_flip else None)

    def decoded(batch, key_and_epoch):
        key, epoch = key_and_epoch
        batch = batch if isinstance(batch, tuple) else (batch,)
        x, y = decode(*batch)
        if coins is not None:  # batch[0]: the examples' positions in the pool
            x = augment.alternate(x, tf.gather(coins, batch[0]), epoch)
        return x, y, key

    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)
    dataset = dataset.map(decoded, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None and augment.resampling:
        dataset = dataset.map(lambda x, y, key: (augment.resample(x, key), y, key),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None and (augment.layers or augment.mix is not None):
        layers = augment.layers + ([augment.mix] if augment.mix is not None else [])
        states = [v for layer in layers for v in layer.variables if v.name == SEED_STATE]

        def keyed(x, y, key):
            for index, state in enumerate(states):
                state.assign(tf.cast(tf.random.experimental.stateless_fold_in(key, index + 2),
                                     state.dtype))
            x, y = augment._apply_layers(x, y)
            return x, y, key

        dataset = dataset.map(keyed)  # sequential: each batch sets, then draws
    dataset = dataset.map(lambda x, y, key: (x, y))
    batches = steps * max(0, epochs - initial_epoch)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(examples, batch_size):
    """The number of batches of one epoch of `examples` examples (the last may be smaller)."""
    return -(-examples // batch_size)
