"""A search killed with SIGKILL mid-fold resumes without retraining finished folds."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import kerascnn
from kerascnn.training import checkpoints
from kerascnn.tuning import search as search_module
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
    train = search_module.train

    def spy(model, data, *, out, **kwargs):
        state = checkpoints.read_state(os.path.join(out, "checkpoints"))
        calls.append((os.path.relpath(out, tmp_path), state["epoch"] if state else 0))
        return train(model, data, out=out, **kwargs)

    monkeypatch.setattr(search_module, "train", spy)
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
