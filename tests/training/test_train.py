"""Real training on scikit-learn's digits: the main job, determinism, crash safety, distribution."""

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import pytest
import sklearn.datasets

import kerascnn
from kerascnn.cli import main
from kerascnn.files import atomic_save_model
from kerascnn.training.checkpoints import read_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_main_job_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--epochs", "3", "--out", str(out)])
    assert "test metrics" in capsys.readouterr().out
    for name in ("model.keras", "best.keras", "metrics.json", "history.csv", "run.json"):
        assert (out / name).is_file(), name
    assert any(f.startswith("events") for _, _, files in os.walk(out / "logs") for f in files)
    metrics = json.loads((out / "metrics.json").read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert metrics["accuracy"] > 0.8  # LeNet-5 after three epochs on 1,437 digits
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    assert {"macro_f1", "weighted_f1"} <= set(metrics)
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "lenet5" and run["recipe"]["name"] == "quick"
    assert run["network_input_shape"] == [32, 32, 1]  # 8×8 digits resized inside the model

    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    x, y = data.arrays("test")
    accuracy = (model.predict(x, verbose=0).argmax(1) == y).mean()  # raw 8×8 inputs
    assert accuracy == pytest.approx(metrics["accuracy"])


@pytest.mark.slow  # the test budget: test_exact_resume compares two runs of one seed bitwise
def test_same_seed_gives_the_same_weights():
    def weights(seed):
        result = kerascnn.train("lenet5", "digits", epochs=1, seed=seed, verbose=0)
        return result.model.get_weights()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.slow  # the test budget: resuming after a kill is checked bitwise in-process by
# test_exact_resume, and after SIGKILL of a real process by test_tuning_resume
def test_resume_after_sigkill_loses_no_completed_epoch(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "kerascnn", "train", "--epochs", "6", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    state = None
    while time.time() < deadline and process.poll() is None:
        state = read_state(out / "checkpoints")
        if state and state["epoch"] >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed = read_state(out / "checkpoints")
    assert killed["epoch"] >= 2 and killed["epoch"] < 6

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    for name, values in killed["history"].items():
        assert [float(r[name]) for r in rows[: killed["epoch"]]] == pytest.approx(values)
    assert len(list((out / "checkpoints").glob("epoch-*.keras"))) == 1
    assert not list(out.rglob(".tmp-*"))


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "model.keras"
    model = kerascnn.build_model("lenet1")
    atomic_save_model(model, path)
    before = path.read_bytes()

    class Broken(keras.layers.Layer):
        def call(self, x):
            return x

        def get_config(self):
            raise RuntimeError("disk full")

    inputs = keras.Input((4,))
    broken = keras.Model(inputs, Broken()(inputs))
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save_model(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_another_run_in_the_same_folder_is_refused(tmp_path):
    kerascnn.train("lenet1", "digits", epochs=1, out=tmp_path, verbose=0)
    with pytest.raises(ValueError, match="holds another run .*lenet1 on digits.*differs in "
                                         "model lenet1 -> lenet5"):
        kerascnn.train("lenet5", "digits", epochs=1, out=tmp_path, verbose=0)
    # The cosine schedule of the "quick" recipe depends on the run's length: not a resume.
    with pytest.raises(ValueError, match="holds another run .*differs in recipe.epochs 1 -> 3\\)"):
        kerascnn.train("lenet1", "digits", epochs=3, out=tmp_path, verbose=0)
    # A longer run with a length-free schedule resumes (test_precision.py, the auto test).


def test_mirrored_strategy_trains_and_multi_worker_needs_a_cluster(monkeypatch):
    result = kerascnn.train("lenet1", "digits", epochs=1, strategy="mirrored", verbose=0)
    assert result.metrics["accuracy"] > 0.2
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable, which is not set"):
        kerascnn.train("lenet1", "digits", epochs=1, strategy="multi_worker", verbose=0)


def test_extra_callbacks_see_every_epoch():
    class Recorder(keras.callbacks.Callback):
        epochs = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((epoch, sorted(logs)))

    recorder = Recorder()
    kerascnn.train("lenet1", "digits", epochs=2, callbacks=[recorder], verbose=0)
    assert [e for e, _ in recorder.epochs] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(recorder.epochs[0][1])


def test_a_run_without_a_folder_writes_no_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where train's scratch folder goes

    def written():
        return [os.path.relpath(os.path.join(folder, name), tmp_path)
                for folder, _, names in os.walk(tmp_path) for name in names
                if folder != str(tmp_path)]  # autograph's generated files lie at the top

    class Files(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(written())

    seen = []
    result = kerascnn.train("lenet1", "digits", epochs=2, callbacks=[Files()], verbose=0)
    # After each epoch, only the scratch run folder's manifest and lock: no model, state or
    # history file.
    assert len(seen) == 2 and all(
        {os.path.basename(f) for f in files} == {".kerascnn-run.json", ".kerascnn-run.lock"}
        for files in seen)
    assert len(result.history["val_loss"]) == 2 and result.metrics["accuracy"] > 0.5
    assert written() == []  # the scratch folder is gone


def test_training_continues_from_a_saved_model(data_dir):
    with np.load(data_dir / "mnist.npz") as mnist:
        x, y = mnist["x_train"][:1500], mnist["y_train"][:1500]
    data = kerascnn.data.load((x, y), validation_split=0.1, seed=0)
    path = os.path.join(REPO, "kerascnn", "saved_models", "lenet5_mnist.keras")
    saved = keras.models.load_model(path)
    x_test, y_test = data.arrays("test")
    before = (saved.predict(x_test, verbose=0).argmax(1) == y_test).mean()
    result = kerascnn.train(path, data, epochs=1, learning_rate=1e-4, verbose=0)
    preprocessing = [l for l in result.model.layers if isinstance(l, kerascnn.data.Preprocessing)]
    assert len(preprocessing) == 1  # the saved model's own, not a second one
    assert before > 0.97 and result.metrics["accuracy"] > 0.97  # fine-tuned, not retrained


def test_a_different_custom_model_does_not_resume_another_run(tmp_path):
    def dense(units):
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(units, activation="relu"),
                                 keras.layers.Dense(10, activation="softmax")], name="mlp")

    kerascnn.train(dense(16), "digits", epochs=1, out=tmp_path, verbose=0)
    with pytest.raises(ValueError, match="holds another run .*mlp"):
        kerascnn.train(dense(32), "digits", epochs=1, out=tmp_path, verbose=0)


def test_a_run_without_validation_of_signals_is_evaluated_on_its_own_split(tmp_path):
    x, y = sklearn.datasets.load_digits(return_X_y=True)
    source = tmp_path / "digits.npz"
    np.savez(source, x_train=x[:1400], y_train=y[:1400], x_test=x[1400:], y_test=y[1400:])
    run = tmp_path / "run"
    result = kerascnn.train("lenet1", str(source), kind="signal", validation_split=0, epochs=2,
                            out=run, verbose=0)
    assert set(result.history) == {"loss", "accuracy"}  # nothing held out
    assert result.model.inputs[0].shape[1:] == (64, 1)  # each row a 64-sample signal
    record = json.loads((run / "run.json").read_text())
    assert record["data"]["source"]["kind"] == "signal"
    again = kerascnn.evaluate(str(run), out=tmp_path / "again")
    assert again.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert again.diagnosis is None  # no validation loss to diagnose the fit with
    with pytest.raises(ValueError, match="kind='signal' tells how to read"):
        kerascnn.train("lenet1", kerascnn.data.load("digits"), kind="signal", verbose=0)


def test_a_call_records_the_seconds_of_its_steps(tmp_path):
    import json
    import time

    import kerascnn

    started = time.perf_counter()
    result = kerascnn.train("lenet1", "digits", epochs=1, out=tmp_path, verbose=0)
    wall = time.perf_counter() - started
    steps = ("load", "build", "pipeline", "fit", "first_step", "save", "evaluate")
    assert set(result.timings) == set(steps)
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert result.timings["first_step"] <= result.timings["fit"]
    assert sum(v for k, v in result.timings.items() if k != "first_step") <= wall
    assert abs(result.timings["fit"] - result.seconds) < 0.01
    recorded = json.loads((tmp_path / "run.json").read_text())["timings"]
    assert {k: v for k, v in recorded.items() if k != "save"} == \
        {k: v for k, v in result.timings.items() if k != "save"}
