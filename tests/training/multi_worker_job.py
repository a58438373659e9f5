"""One worker of test_multi_worker: LeNet-1 on digits for one epoch, results in a folder.

Usage: TF_CONFIG=... python multi_worker_job.py fit|train|stream OUT_FOLDER BATCH_SIZE [IMAGES]

"fit" trains the model of `build` with `kerascnn.training.multi_worker.fit`; "train" runs
`kerascnn.train(..., strategy="multi_worker", out=OUT_FOLDER/run)`; "stream" is "fit" on the
image folder IMAGES loaded with stream=True, each worker reading only its share of the
files. All write OUT_FOLDER/worker-<index>.npz (weights initial_<i> and final_<i>; no
initial ones for "train") and worker-<index>.json (history, chief, and for "stream" the
positions of the files this worker read, and the seconds its epoch took).
"""

import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.training import distribute, multi_worker, network


def main(mode, out, batch_size, images=None):
    strategy = distribute.get_strategy("multi_worker")  # first: collectives start with TF
    index = strategy.cluster_resolver.task_id
    extra = {}
    if mode == "stream":
        keras.utils.set_random_seed(0)
        data = kerascnn.data.load(images, stream=True, validation_split=0.1, test_split=None,
                                  seed=0)
        read = record_reads(data)
        with strategy.scope():
            model = build(data)
        initial = model.get_weights()
        worker = multi_worker.worker_input_context(strategy)
        start = time.perf_counter()
        history = multi_worker.fit(
            model, data.pipeline("train", batch_size, seed=0, input_context=worker),
            data.pipeline("validation", batch_size, input_context=worker), epochs=1, verbose=0,
            input_context=worker,
        ).history
        extra = {"read": sorted(read), "seconds": time.perf_counter() - start}
    elif mode == "train":
        result = kerascnn.train("lenet1", "digits", epochs=1, batch_size=batch_size,
                                strategy=strategy, out=os.path.join(out, "run"), verbose=0)
        model, history, initial = result.model, result.history, []
    else:
        keras.utils.set_random_seed(0)  # the same shuffle on every worker: each keeps its share
        data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
        with strategy.scope():
            model = build(data)
        initial = model.get_weights()
        history = multi_worker.fit(
            model, data.pipeline("train", batch_size, seed=0),
            data.pipeline("validation", batch_size), epochs=1, verbose=0,
        ).history
    weights = {**{f"initial_{i}": w for i, w in enumerate(initial)},
               **{f"final_{i}": w for i, w in enumerate(model.get_weights())}}
    np.savez(os.path.join(out, f"worker-{index}.npz"), **weights)
    with open(os.path.join(out, f"worker-{index}.json"), "w") as f:
        json.dump({"history": history, "chief": multi_worker.is_chief(strategy), **extra}, f)


def record_reads(data):
    """Makes the training pool's reader note every position it reads; returns the list."""
    pool = data._split("train").pool  # the validation split shares it
    read, labels = pool.tensors()
    positions = []

    def note(position):
        positions.append(int(position))
        return position

    def recording(position):
        position = tf.numpy_function(note, [position], tf.int64, stateful=True)
        return read(tf.ensure_shape(position, []))

    pool.tensors = lambda: (recording, labels)
    return positions


def build(data):
    """LeNet-1 behind kerascnn's preprocessing, with SGD: its steps scale with the gradients."""
    shape = network.network_input_shape("lenet1", data.input_shape, {})
    backbone = kerascnn.build_model("lenet1", input_shape=shape, num_classes=data.num_classes)
    model = network.wrap(backbone, data, "standardize")
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
