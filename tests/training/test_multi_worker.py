"""Multi-worker training: two worker processes on 127.0.0.1 against one process's `model.fit`."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from multi_worker_job import build
from PIL import Image
from sklearn.datasets import load_digits

import kerascnn
from kerascnn.training import distribute, multi_worker

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_worker_job.py")
BATCH_SIZE = 64  # 1,295 training digits: 20 batches of 64 (32 per worker), then 15 (8 + 7)
# A folder of 332 digits (35 zeros, 33 of each other class): 301 to train, 4 batches of 64,
# then 45 (23 + 22), and 31 to validate (16 + 15).
PER_CLASS = {label: 35 if label == 0 else 33 for label in range(10)}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(mode, out, *args, count=2):
    """Runs multi_worker_job.py on `count` local workers; returns each one's results."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps(config)}
        processes.append(subprocess.Popen(
            [sys.executable, JOB, mode, str(out), str(BATCH_SIZE), *map(str, args)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    try:
        outputs = [p.communicate(timeout=300)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:  # a peer waiting for a collective that never comes
                p.kill()
    for index, (process, output) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index} failed:\n{output[-3000:]}"
    results = []
    for index in range(count):
        result = json.loads((out / f"worker-{index}.json").read_text())
        with np.load(out / f"worker-{index}.npz") as arrays:
            for kind in ("initial", "final"):
                names = [name for name in arrays.files if name.startswith(kind)]
                result[kind] = [arrays[f"{kind}_{i}"] for i in range(len(names))]
        results.append(result)
    return results


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    return run_workers("fit", tmp_path_factory.mktemp("workers"))


def test_two_workers_end_with_identical_weights_that_learned(workers):
    chief, other = workers
    assert [chief["chief"], other["chief"]] == [True, False]
    assert all(np.array_equal(a, b) for a, b in zip(chief["final"], other["final"]))
    moved = max(np.abs(a - b).max() for a, b in zip(chief["initial"], chief["final"]))
    assert moved > 0.05
    assert chief["history"] == other["history"]  # metrics of both workers' examples together
    history = {name: values[0] for name, values in chief["history"].items()}
    assert history["accuracy"] > 0.3 and history["val_accuracy"] > 0.5  # chance: 0.1


def test_two_workers_step_like_one_process_on_the_global_batch(workers):
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    model = build(data)
    model.set_weights(workers[0]["initial"])
    validation = data.pipeline("validation", BATCH_SIZE)
    before = model.evaluate(validation, verbose=0, return_dict=True)
    history = model.fit(data.pipeline("train", BATCH_SIZE, seed=0), validation_data=validation,
                        epochs=1, shuffle=False, verbose=0).history
    distributed = workers[0]["history"]
    # The epoch's training metrics come from every step's forward pass: equal steps, equal
    # metrics. Only the last step differs (15 examples averaged per replica, 8 and 7).
    for name in ("loss", "accuracy"):
        assert distributed[name][0] == pytest.approx(history[name][0], rel=1e-5)
    for reference, trained in zip(model.get_weights(), workers[0]["final"]):
        np.testing.assert_allclose(trained, reference, atol=1e-3)  # weights moved by ~0.4
    assert distributed["val_loss"][0] == pytest.approx(history["val_loss"][0], rel=1e-2)
    assert distributed["val_loss"][0] < before["loss"] / 2


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """A folder of 8×8 grey PNGs of scikit-learn's digits, `PER_CLASS` of each."""
    images, labels = load_digits(return_X_y=True)
    root = tmp_path_factory.mktemp("digit_files")
    for label in range(10):
        (root / str(label)).mkdir()
        for i, row in enumerate(np.flatnonzero(labels == label)[:PER_CLASS[label]]):
            pixels = (images[row].reshape(8, 8) * 15).astype(np.uint8)
            Image.fromarray(pixels).save(root / str(label) / f"{i:03d}.png")
    return root


@pytest.mark.slow  # the test budget: the in-memory two-worker runs above stay in the default run
def test_two_workers_read_only_their_share_of_a_streamed_folder(digit_files, tmp_path):
    chief, other = run_workers("stream", tmp_path, digit_files)
    data = kerascnn.data.load(digit_files, stream=True, validation_split=0.1, test_split=None,
                              seed=0)
    epoch = [*data._split("train").all_positions(), *data._split("validation").all_positions()]
    # Together the workers read every file of the epoch once; neither read one twice.
    assert sorted(chief["read"] + other["read"]) == sorted(int(p) for p in epoch)
    assert not set(chief["read"]) & set(other["read"])
    assert [len(chief["read"]), len(other["read"])] == [128 + 23 + 16, 128 + 22 + 15]
    assert all(np.array_equal(a, b) for a, b in zip(chief["final"], other["final"]))
    assert chief["history"] == other["history"]

    # ... and stepped like one process on the global batches of the same files.
    model = build(data)
    model.set_weights(chief["initial"])
    validation = data.pipeline("validation", BATCH_SIZE)
    history = model.fit(data.pipeline("train", BATCH_SIZE, seed=0), validation_data=validation,
                        epochs=1, shuffle=False, verbose=0).history
    for name in ("loss", "accuracy"):  # every step's forward pass: equal steps, equal metrics
        assert chief["history"][name][0] == pytest.approx(history[name][0], rel=1e-5), name
    for reference, trained in zip(model.get_weights(), chief["final"]):
        np.testing.assert_allclose(trained, reference, atol=1e-3)
    assert chief["history"]["val_loss"][0] == pytest.approx(history["val_loss"][0], rel=1e-2)
    moved = max(np.abs(a - b).max() for a, b in zip(chief["initial"], chief["final"]))
    assert moved > 0.01


@pytest.mark.parametrize("workers, replicas", [(2, 2), (2, 4), (3, 3)])
def test_worker_pipelines_split_every_global_batch_as_data_sharding_does(digit_files, workers,
                                                                         replicas):
    # DATA sharding (`_shard`) cuts each global batch as np.array_split does, replica r
    # keeping part r (two workers on 127.0.0.1 kept 32 + 32 of 64, 8 + 7 of 15, 3 + 3 of 6,
    # 4 + 3 of 7); a batch smaller than `replicas` is dropped.
    for data in (kerascnn.data.load("digits", validation_split=0.1, seed=0),
                 kerascnn.data.load(digit_files, stream=True, test_split=None, seed=0)):
        expected = [part for x, y in data.pipeline("train", 62, seed=4).as_numpy_iterator()
                    if len(x) >= replicas
                    for part in zip(np.array_split(x, replicas), np.array_split(y, replicas))]
        shares = [list(data.pipeline("train", 62, seed=4, input_context=tf.distribute.InputContext(
            workers, index, replicas)).as_numpy_iterator()) for index in range(workers)]
        local = replicas // workers
        given = [part for step in range(len(shares[0]) // local) for share in shares
                 for part in share[step * local:(step + 1) * local]]
        assert len(given) == len(expected) and len(expected) > 2 * replicas
        for (x, y), (x_ref, y_ref) in zip(given, expected):
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)


def test_datasets_made_for_another_worker_are_refused_clearly():
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    other = tf.distribute.InputContext(2, 1, 2)
    with pytest.raises(ValueError, match="made for input pipeline 1 of 2 with 2 replicas, but "
                                         "this worker is pipeline 0 of 1 with 1"):
        multi_worker.fit(build(data), data.pipeline("train", 64, input_context=other),
                         input_context=other, verbose=0)
    with pytest.raises(ValueError, match="pass epochs=None, not epochs=2"):
        data.pipeline("train", 64, epochs=2, input_context=other)


def test_fit_on_one_process_equals_model_fit():
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    reference, model = build(data), build(data)
    model.set_weights(reference.get_weights())

    class Hooks(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_begin(self, logs=None):
            self.calls.append("train_begin")

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append((epoch, sorted(logs)))

        def on_train_end(self, logs=None):
            self.calls.append("train_end")

    # Unshuffled: model.fit skips every other reshuffle (it trains on orders 1, 3, 5...).
    train = data.pipeline("train", BATCH_SIZE, shuffle=False)
    validation = data.pipeline("validation", BATCH_SIZE)
    expected = reference.fit(train, validation_data=validation, epochs=3, initial_epoch=1,
                             shuffle=False, verbose=0).history
    hooks = Hooks()
    history = multi_worker.fit(model, train, validation, epochs=3, initial_epoch=1,
                               callbacks=[hooks], verbose=0)
    assert history.epoch == [1, 2]
    assert history.history.keys() == expected.keys()
    for name, values in expected.items():
        assert history.history[name] == pytest.approx(values, rel=1e-6), name
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    logs = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert hooks.calls == ["train_begin", (1, logs), (2, logs), "train_end"]


@pytest.mark.slow  # two more worker processes: `fit` itself is tested above
def test_train_on_two_workers_writes_one_run_folder(tmp_path):
    chief, other = run_workers("train", tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(chief["final"], other["final"]))
    assert chief["history"] == other["history"]
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"model.keras", "best.keras", "history.csv",
                                                "run.json", "metrics.json", "logs", "checkpoints"}
    assert len((run / "history.csv").read_text().splitlines()) == 2  # header, epoch 1
    assert len(list((run / "logs" / "train").iterdir())) == 1  # the chief's events only
    model = keras.models.load_model(run / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), chief["final"]))


def test_multi_worker_without_a_cluster_is_refused_clearly(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable, which is not set"):
        distribute.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ValueError, match="TF_CONFIG='{\"cluster\": {}}' must be JSON with"):
        distribute.get_strategy("multi_worker")
