"""Multi-worker data-parallel training: Keras' own train and test steps in a TensorFlow loop.

Keras 3's `fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585): its symbolic build tries to reduce a per-replica batch, and each
step's scalar metrics are averaged along an axis 0 they do not have. The steps themselves
are sound: Keras scales each replica's loss by 1 / replicas and its optimizer sums the
gradients of all replicas before applying them. So `fit` here keeps `model.train_step` and
`model.test_step` and replaces only the loop around them: `strategy.run` on each batch of a
dataset sharded across the workers, and the metrics read once an epoch in cross-replica
context, where reading them sums them over every replica.

Data is split between the workers in one of two ways, to the same batches. A dataset of
global batches is read whole by every worker, each keeping its parts of every batch
(auto-shard policy DATA). A dataset made for the worker's `input_context`
(`Data.pipeline(..., input_context=...)`) already holds only its parts: each worker reads
and decodes only its own share of the files of a streamed folder, TFDS set or TFRecords,
the "shard by file" of tf.data for pools read by position.

A global batch split unevenly (the last, smaller one) is averaged per replica, as Keras'
`fit` does under MirroredStrategy; every other step equals one step on the global batch.
"""

import keras
import tensorflow as tf

from kerascnn import compat
from kerascnn.errors import InputError


def is_multi_worker(strategy):
    """True for a MultiWorkerMirroredStrategy, whose training needs `fit` from this module."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """True for the process that writes the run's files: the chief (worker 0), or the only one.

    Every worker must still save its model and checkpoints (saving reads variables that all
    workers reduce together); the others write them to a folder of their own and discard it.
    """
    return strategy.extended.should_checkpoint


def worker_input_context(strategy):
    """Returns the `tf.distribute.InputContext` of this worker's input pipeline.

    Give it to `Data.pipeline(..., input_context=...)` and to `fit`: the worker then reads only
    its share of every global batch.
    """
    replicas = strategy.num_replicas_in_sync
    if not is_multi_worker(strategy):
        return tf.distribute.InputContext(1, 0, replicas)
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", []))
    index = 0 if resolver.task_type == "chief" else chiefs + resolver.task_id
    return tf.distribute.InputContext(chiefs + len(cluster.get("worker", [])), index, replicas)


def fit(model, train_data, validation_data=None, *, epochs=1, initial_epoch=0, callbacks=None,
        verbose="auto", input_context=None):
    """Trains a compiled model like `model.fit`, on any tf.distribute strategy.

    The model must have been built and compiled under its strategy's scope. Every worker calls
    `fit` with the same arguments; each trains on its shard of every global batch.

    Args:
        model: a compiled keras.Model.
        train_data: a tf.data.Dataset of (inputs, targets) global batches, identical on every
            worker (seed its shuffle): each worker keeps its share of every batch. Or, with
            `input_context`, the dataset of this worker's replica batches only.
        validation_data: a dataset like `train_data`, evaluated after every epoch, or None.
        epochs: the index of the last epoch (as in `model.fit`).
        initial_epoch: the epoch to start from (a resumed run's completed epochs).
        callbacks: keras callbacks; they get every hook `model.fit` calls, with the epoch logs
            (`loss`, metrics, `val_` ones) of all workers together. Batch hooks get empty logs:
            reading metrics after every step would cost an all-reduce per step.
        verbose: progress display ("auto", 0, 1 or 2), shown by the chief only.
        input_context: None, or the `worker_input_context(strategy)` that both datasets
            were made for (`Data.pipeline(..., input_context=...)`).

    Returns:
        The keras.callbacks.History of this call.

    Raises:
        ValueError: the workers disagree on `epochs`, `initial_epoch` or the number of batches
            (they would wait for each other forever), or `input_context` is not this
            worker's.
    """
    strategy = model.distribute_strategy
    train_batches = _distribute(strategy, train_data, input_context)
    validation_batches = (_distribute(strategy, validation_data, input_context)
                          if validation_data is not None else None)
    steps = int(train_data.cardinality())
    if input_context is not None and steps >= 0:  # each replica takes one batch per step
        steps //= input_context.num_replicas_in_sync // input_context.num_input_pipelines
    _check_workers_agree(strategy, epochs=epochs, initial_epoch=initial_epoch, batches=steps)
    with strategy.scope():
        # The metrics' and optimizer's variables must exist before the first step (a replica
        # cannot create them). Keras builds them from a batch; a spec has all it reads.
        compat.symbolic_build(model, train_data.element_spec)
    history = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList(
        [*(callbacks or []), history], add_progbar=bool(verbose) and is_chief(strategy),
        verbose=verbose, epochs=epochs, steps=steps if steps >= 0 else None, model=model,
    )
    train_step = _distributed(strategy, model.train_step, model.jit_compile)
    test_step = _distributed(strategy, model.test_step, model.jit_compile)

    model.stop_training = False
    callbacks.on_train_begin()
    logs = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for step, batch in enumerate(train_batches):
            callbacks.on_train_batch_begin(step)
            train_step(batch)
            callbacks.on_train_batch_end(step, {})
            if model.stop_training:
                break
        logs = model.get_metrics_result()
        if validation_batches is not None:
            validation_logs = _evaluate(model, test_step, validation_batches, callbacks)
            logs.update({f"val_{name}": value for name, value in validation_logs.items()})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)  # EMA, as in fit
    callbacks.on_train_end(logs)
    return history


def _check_workers_agree(strategy, **values):
    """Raises ValueError unless every replica has the same `values` (integers)."""
    local = tf.constant([[v, v * v] for v in values.values()], tf.float64)

    @tf.function
    def total():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", local))

    sums = strategy.experimental_local_results(total())[0].numpy()
    replicas = strategy.num_replicas_in_sync
    differ = [name for name, (s, squares) in zip(values, sums) if s * s != squares * replicas]
    if differ:
        given = ", ".join(f"{name}={value}" for name, value in values.items())
        raise InputError(
            f"The workers called fit with different {', '.join(differ)} (this one: {given}); "
            "every worker must train the same epochs on as many batches. A resumed run must "
            "read its checkpoint from a folder that every worker sees."
        )


def _evaluate(model, test_step, batches, callbacks):
    model.reset_metrics()
    callbacks.on_test_begin()
    for step, batch in enumerate(batches):
        callbacks.on_test_batch_begin(step)
        test_step(batch)
        callbacks.on_test_batch_end(step, {})
    logs = model.get_metrics_result()
    callbacks.on_test_end(logs)
    return logs


def _distributed(strategy, step, jit_compile):
    """`step` run on every replica's part of a distributed batch, as one tf.function."""

    def run(batch):
        strategy.run(step, args=(batch,))

    return tf.function(run, reduce_retracing=True, jit_compile=jit_compile)


def _distribute(strategy, dataset, made_for):
    """The distributed form of `dataset`: global batches (`made_for` None) or this worker's."""
    if made_for is None:
        return _shard(strategy, dataset)
    given = (made_for.num_input_pipelines, made_for.input_pipeline_id,
             made_for.num_replicas_in_sync)

    def worker_dataset(context):
        actual = (context.num_input_pipelines, context.input_pipeline_id,
                  context.num_replicas_in_sync)
        if actual != given:
            raise InputError(
                f"The datasets were made for input pipeline {given[1]} of {given[0]} with "
                f"{given[2]} replicas, but this worker is pipeline {actual[1]} of {actual[0]} "
                f"with {actual[2]}; make them with "
                "input_context=multi_worker.worker_input_context(strategy).")
        return dataset

    return strategy.distribute_datasets_from_function(worker_dataset)


def _shard(strategy, dataset):
    """Splits every global batch between the replicas of all workers.

    A last batch with fewer examples than replicas is skipped: a replica given no example
    fails in its convolutions, and its peers would wait for it forever.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        dataset = dataset.filter(lambda x, *_: tf.shape(tf.nest.flatten(x)[0])[0] >= replicas)
    options = tf.data.Options()
    # Each worker reads the whole dataset and keeps its part of every batch: exact for
    # in-memory pipelines, which have no files to split between workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))
