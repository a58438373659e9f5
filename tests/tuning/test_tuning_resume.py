"""A search killed with SIGKILL mid-fold resumes without retraining finished folds."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.training import checkpoints
from kerascnn.tuning import cross_validation
from tuning_models import SPACE, tiny

HERE = pathlib.Path(__file__).parent


def test_sigkill_mid_fold_then_resume(tmp_path, digits, monkeypatch):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    job = subprocess.run([sys.executable, str(HERE / "tuning_killed_job.py"), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == -signal.SIGKILL, job.stderr[-2000:]
    trial = tmp_path / "trials" / "0"
    finished = (trial / "fold-0.json").read_bytes()
    assert not (trial / "fold-1.json").exists()
    assert checkpoints.read_state(trial / "fold-1" / "checkpoints")["epoch"] == 1
    first_epoch = (trial / "fold-1" / "history.csv").read_text().splitlines()

    calls = []
    train = cross_validation.train

    def spy(model, data, *, out, **kwargs):
        state = checkpoints.read_state(os.path.join(out, "checkpoints"))
        calls.append((os.path.relpath(out, tmp_path), state["epoch"] if state else 0))
        return train(model, data, out=out, **kwargs)

    monkeypatch.setattr(cross_validation, "train", spy)
    result = kerascnn.tune(tiny, digits, space=SPACE, folds=3, max_trials=1, epochs=2,
                           out=tmp_path, seed=0, refit=False, verbose=0)
    # Fold 0 is not retrained, fold 1 continues from its saved epoch, fold 2 starts.
    assert calls == [("trials/0/fold-1", 1), ("trials/0/fold-2", 0)]
    assert (trial / "fold-0.json").read_bytes() == finished
    history = (trial / "fold-1" / "history.csv").read_text().splitlines()
    assert history[:2] == first_epoch and len(history) == 3
    assert [t["trial_id"] for t in result.trials] == ["0"]
    assert len(result.trials[0]["fold_scores"]) == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["trials"][0]["fold_scores"] == result.trials[0]["fold_scores"]


class Killed(BaseException):
    """Stands for a kill: no `except Exception` catches it."""


def test_a_fold_killed_after_its_last_epoch_is_scored_from_its_checkpoint(tmp_path, digits,
                                                                           monkeypatch):
    settings = dict(space=SPACE, folds=2, max_trials=1, epochs=1, out=tmp_path, seed=0,
                    refit=False, verbose=0)
    original = checkpoints.RunCheckpoint.on_epoch_end

    def on_epoch_end_then_die(self, epoch, logs=None):
        original(self, epoch, logs)  # the last epoch is saved, fold-1.json is not written
        if self.run.path.endswith(os.path.join("trials", "0", "fold-1")):
            raise Killed

    monkeypatch.setattr(checkpoints.RunCheckpoint, "on_epoch_end", on_epoch_end_then_die)
    with pytest.raises(Killed):
        kerascnn.tune(tiny, digits, **settings)
    monkeypatch.undo()
    trial = tmp_path / "trials" / "0"
    assert (trial / "fold-0.json").exists() and not (trial / "fold-1.json").exists()
    state = checkpoints.read_state(trial / "fold-1" / "checkpoints")
    assert state["epoch"] == 1

    calls = []
    monkeypatch.setattr(cross_validation, "train", lambda *args, **kwargs: calls.append(kwargs))
    result = kerascnn.tune(tiny, digits, **settings)
    # Nothing trains again: fold 1 is scored with the model its checkpoint saved.
    assert calls == []
    fold = json.loads((trial / "fold-1.json").read_text())
    assert fold["epochs"] == 1 and result.trials[0]["status"] == "completed"
    held_out = json.loads((tmp_path / "folds.json").read_text())["folds"][1]["held_out"]
    model = keras.models.load_model(trial / "fold-1" / "checkpoints" /
                                    os.path.basename(state["model"]))
    predicted = model.predict(digits.x_train[held_out], verbose=0).argmax(axis=1)
    accuracy = np.mean(predicted == digits.training_labels()[held_out])
    assert fold["score"] == pytest.approx(accuracy)
    assert result.trials[0]["fold_scores"][1] == fold["score"]
