"""What a run folder keeps, and every training fault ending in one clear line (issue 14)."""

import csv
import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.run_folder import RunFolderError
from kerascnn.training import RECIPES, get_recipe
from kerascnn.training.checkpoints import TrainingDivergedError, read_state
from kerascnn.training.optimizers import L2SGD, build_optimizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_folder_with_a_users_files_is_refused_and_they_survive(tmp_path):
    # The issue's `--fresh` case: kerascnn never deletes checkpoints/mine.h5. It refuses the
    # folder (rather than training around the file): a folder holding files kerascnn did not
    # write may be another tool's run, and mixing the two is what the issue forbids.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "mine.h5").write_text("keep")
    (tmp_path / "report.md").write_text("my notes")
    with pytest.raises(RunFolderError) as error:
        kerascnn.train("lenet1", "digits", epochs=1, out=tmp_path, resume=False, verbose=0)
    message = str(error.value)
    assert "\n" not in message and "checkpoints/mine.h5" in message and "report.md" in message
    assert "choose an empty folder or another --out" in message
    assert (tmp_path / "checkpoints" / "mine.h5").read_text() == "keep"
    assert (tmp_path / "report.md").read_text() == "my notes"
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "report.md"]


def test_fresh_keeps_a_users_file_in_the_tensorboard_logs(tmp_path):
    # Issue 24, item 9: `echo x > t/logs/notes.txt; train --fresh --out t` deleted notes.txt.
    # logs/ is TensorBoard's: only its event files are kerascnn's, at any depth.
    kerascnn.train("lenet1", "digits", epochs=1, out=tmp_path, verbose=0)
    events = [os.path.join(folder, name) for folder, _, names in os.walk(tmp_path / "logs")
              for name in names]
    assert events and all("events.out.tfevents." in path for path in events)
    (tmp_path / "logs" / "notes.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"logs/notes\.txt.*choose an empty folder"):
        kerascnn.train("lenet1", "digits", epochs=1, out=tmp_path, resume=False, verbose=0)
    assert (tmp_path / "logs" / "notes.txt").read_text() == "x"
    assert all(os.path.exists(path) for path in events)  # the refused command deleted nothing


WAITING_TRAIN = textwrap.dedent("""
    import sys
    import keras
    import kerascnn

    class Wait(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print("training", flush=True)
            sys.stdin.readline()

    kerascnn.train("lenet1", "digits", epochs=1, out=sys.argv[1], verbose=0, callbacks=[Wait()])
""")


def test_a_second_train_on_a_folder_in_use_fails_at_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen([sys.executable, "-c", WAITING_TRAIN, str(out)], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert first.stdout.readline().strip() == "training"
        start = time.perf_counter()
        with pytest.raises(RunFolderError, match=rf"in use by another kerascnn process \(pid {first.pid}\)"):
            kerascnn.train("lenet5", "digits", epochs=1, out=out, verbose=0)
        assert time.perf_counter() - start < 5  # refused before loading data or building
        first.communicate("\n", timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "lenet1" and run["epochs_completed"] == 1  # one run, not two mixed


def test_history_state_paths_and_fresh_in_one_run_folder(tmp_path, capsys):
    out = tmp_path / "a" / "run"
    options = dict(epochs=2, schedule="constant", out=out)  # constant: a longer run resumes
    kerascnn.train("lenet1", "digits", verbose=0, **options)
    seconds = json.loads((out / "run.json").read_text())["train_seconds_this_call"]

    # What a SIGKILL right after state.json reached epoch 2 leaves: history.csv one row short,
    # no model.keras yet, an interrupted atomic save. The rerun rewrites the history from the
    # state, says the run is finished, and keeps the training time of the call that trained.
    rows = _rows(out / "history.csv")
    with open(out / "history.csv", "w") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerow(rows[0])
    (out / "model.keras").unlink()
    (out / ".tmp-k1ll3d00.keras").write_bytes(b"partial")
    result = kerascnn.train("lenet1", "digits", **options)
    assert "finished after 2 epochs: nothing to train" in capsys.readouterr().out
    assert _rows(out / "history.csv") == rows and [int(r["epoch"]) for r in rows] == [1, 2]
    assert (out / "model.keras").is_file() and not list(out.rglob(".tmp-*"))
    assert result.seconds == 0.0
    assert json.loads((out / "run.json").read_text())["train_seconds_this_call"] == seconds > 0

    # Paths read from state.json stay inside the run: the victim is neither loaded nor deleted.
    victim = tmp_path / "a" / "victim.keras"  # where checkpoints/../../victim.keras points
    victim.write_text("not yours")
    state_path = out / "checkpoints" / "state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "model": "../../victim.keras"}))
    with pytest.raises(RunFolderError, match=r"names the checkpoint '\.\./\.\./victim\.keras'.*--fresh"):
        kerascnn.train("lenet1", "digits", verbose=0, **{**options, "epochs": 3})
    assert victim.read_text() == "not yours"
    state_path.write_text("{not json")
    with pytest.raises(RunFolderError, match=r"state\.json is not a readable run state.*--fresh"):
        kerascnn.train("lenet1", "digits", verbose=0, **{**options, "epochs": 3})

    # --fresh deletes what the run wrote, and only that, and starts over.
    result = kerascnn.train("lenet1", "digits", verbose=0, resume=False, **{**options, "epochs": 1})
    assert len(result.history["loss"]) == 1 and victim.exists()
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch-1.keras", "state.json"]
    assert [int(r["epoch"]) for r in _rows(out / "history.csv")] == [1]


def test_divergence_stops_at_the_first_non_finite_loss_and_keeps_the_last_finite_epoch(tmp_path):
    class Explode(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate.assign(float("inf"))  # blows up at once

    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as error:
        kerascnn.train("lenet1", "digits", epochs=3, optimizer="sgd", learning_rate=0.01,
                       schedule="constant", out=out, verbose=0, callbacks=[Explode()])
    message = str(error.value)
    assert "diverged in epoch 2" in message and "learning rate too high" in message
    assert "best.keras from epoch 1" in message and "\n" not in message
    assert not (out / "model.keras").exists()
    assert read_state(out / "checkpoints")["epoch"] == 1
    assert [int(r["epoch"]) for r in _rows(out / "history.csv")] == [1]
    best = keras.models.load_model(out / "best.keras")
    epoch_1 = keras.models.load_model(out / "checkpoints" / "epoch-1.keras")
    assert all(np.isfinite(w).all() for w in best.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(best.get_weights(), epoch_1.get_weights()))


@pytest.mark.parametrize("overrides, match", [
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0; got nan"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0; got inf"),
    ({"momentum": 1.5}, r"momentum must be a finite number in \[0, 1\); got 1.5"),
    ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0"),
    ({"gradient_clip": -1.0}, "gradient_clip must be a finite number > 0; got -1.0"),
    ({"epochs": 2.5}, "epochs must be an integer >= 1; got 2.5"),
    ({"label_smoothing": float("nan")}, "label_smoothing must be a finite number"),
    ({"augment": "mixup=inf"}, "mixup='inf': the value must be a finite number"),
])
def test_numeric_options_are_checked_before_training(overrides, match):
    with pytest.raises(ValueError, match=match):
        kerascnn.train("lenet1", "digits", verbose=0, **overrides)


def test_augment_none_switches_the_recipes_augmentation_off():
    result = kerascnn.train("lenet1", "digits", recipe="mnist_best", epochs=1, batch_size=64,
                            augment="none", verbose=0)
    assert RECIPES["mnist_best"].augment and result.recipe.augment is None
    assert len(result.history["loss"]) == 1


def test_a_model_ending_in_logits_is_refused_before_training():
    logits = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(10)], name="logits")

    class Started(keras.callbacks.Callback):
        began = False

        def on_train_begin(self, logs=None):
            Started.began = True

    with pytest.raises(ValueError, match="ends in logits.*softmax"):
        kerascnn.train(logits, "digits", epochs=1, verbose=0, callbacks=[Started()])
    assert not Started.began


def test_ema_validation_best_model_and_final_model_use_the_averaged_weights(tmp_path):
    class Record(keras.callbacks.Callback):
        raw, averaged = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.raw.append([w.copy() for w in self.model.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            self.averaged.append([w.copy() for w in self.model.get_weights()])

    momentum = 0.8
    out = tmp_path / "run"
    result = kerascnn.train("lenet1", "digits", epochs=2, ema=momentum, schedule="constant",
                            out=out, verbose=0, callbacks=[Record()])
    # Keras' EMA: the first average is the first updated weights, then m * avg + (1 - m) * w.
    average = Record.raw[0]
    steps = len(Record.raw) // 2
    expected = []
    for step, raw in enumerate(Record.raw[1:], start=1):
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, raw)]
        if step % steps == steps - 1:
            expected.append(average)
    for seen, reference in zip(Record.averaged, expected):  # callbacks see the average
        assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(seen, reference))
    final = result.model.get_weights()
    assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(final, expected[-1]))
    assert not all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(final, Record.raw[-1]))
    # Validation scored the averaged model: its val_loss is the saved model's loss.
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    x, y = data.arrays("validation")
    probabilities = keras.models.load_model(out / "model.keras").predict(x, verbose=0)
    loss = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert result.history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)
    best_epoch = int(np.argmin(result.history["val_loss"]))
    best = keras.models.load_model(out / "best.keras").get_weights()
    assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(best, expected[best_epoch]))


def test_l2_recipes_step_as_sgd_on_the_loss_plus_the_l2_penalty():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    w0 = rng.normal(size=(3, 1))
    lr, momentum, wd = 0.1, 0.9, 0.05

    def run(optimizer, steps=3):
        w = keras.Variable(w0.astype("float32"))
        for _ in range(steps):
            residual = x.astype("float32") @ keras.ops.convert_to_numpy(w) - y
            gradient = x.T @ residual / len(x)  # of the loss 0.5 * mean squared residual
            optimizer.apply([keras.ops.convert_to_tensor(gradient.astype("float32"))], [w])
        return keras.ops.convert_to_numpy(w)

    # NumPy SGD with momentum (Keras' form: v = mu v - lr g, w += v) on
    # loss + wd / 2 * ||w||^2, whose gradient is g + wd * w.
    w, velocity = w0.copy(), np.zeros_like(w0)
    for _ in range(3):
        gradient = x.T @ (x @ w - y) / len(x) + wd * w
        velocity = momentum * velocity - lr * gradient
        w = w + velocity
    assert np.allclose(run(L2SGD(l2=wd, learning_rate=lr, momentum=momentum)), w, rtol=1e-5)
    decoupled = run(keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=wd))
    assert not np.allclose(decoupled, w, rtol=1e-3)  # Keras' decoupled decay is another rule
    for name, coefficient in (("alexnet", 5e-4), ("resnet", 1e-4)):
        optimizer = build_optimizer(RECIPES[name], 0.01, 10)
        assert isinstance(optimizer, L2SGD) and optimizer.l2 == coefficient
        assert optimizer.weight_decay is None
    with pytest.raises(ValueError, match="weight_decay_mode='l2' is implemented for SGD"):
        get_recipe("resnet", optimizer="adam")
