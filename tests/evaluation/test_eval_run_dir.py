"""Evaluating a run folder scores the run's own test split: no training example leaks in."""

import json

import keras
import pytest
from sklearn.metrics import confusion_matrix

import kerascnn
from kerascnn.run_folder import MANIFEST, RunFolderError


def _examples(x, y):
    return {image.tobytes() + bytes([label]) for image, label in zip(x, y)}


def test_a_run_is_evaluated_on_its_own_test_split(tmp_path):
    run = tmp_path / "run"
    kerascnn.train("lenet1", "digits", epochs=1, seed=1, out=run, verbose=0)
    saved = json.loads((run / "metrics.json").read_text())
    report = kerascnn.evaluate(str(run), out=tmp_path / "evaluation")

    # The run's split, rebuilt independently: none of its test examples was seen in training.
    data = kerascnn.data.load("digits", validation_split=0.1, seed=1)
    seen = _examples(*data.arrays("train")) | _examples(*data.arrays("validation"))
    x_test, y_test = data.arrays("test")
    assert not _examples(x_test, y_test) & seen
    predicted = keras.models.load_model(run / "model.keras").predict(x_test, verbose=0).argmax(1)
    assert report.metrics["num_examples"] == len(y_test) == saved["num_examples"]
    assert report.metrics["confusion_matrix"] == confusion_matrix(y_test, predicted).tolist()
    assert report.metrics["accuracy"] == saved["accuracy"]
    assert "diagnosis" in report.metrics  # the run's history.csv was picked up
    manifest = json.loads((tmp_path / "evaluation" / MANIFEST).read_text())
    assert manifest["kind"] == "evaluation" and "metrics.json" in manifest["files"]
    # A report inside the run folder is the run's child: the run still owns all it holds.
    inside = kerascnn.evaluate(str(run), out=run / "eval")
    assert inside.metrics == report.metrics
    assert "eval" in json.loads((run / MANIFEST).read_text())["files"]
    assert json.loads((run / "eval" / MANIFEST).read_text())["kind"] == "evaluation"

    # The leak: the default split (seed 0) holds mostly examples the run trained on.
    leaky = kerascnn.data.load("digits", seed=0)
    assert len(_examples(*leaky.arrays("test")) & seen) > 200
    by_name = kerascnn.evaluate(str(run / "model.keras"), "digits")  # reloaded with seed 1
    assert by_name.metrics["confusion_matrix"] == report.metrics["confusion_matrix"]
    with pytest.raises(RunFolderError, match=r"not the one the run in .* held out .*seed=1"):
        kerascnn.evaluate(str(run / "model.keras"), leaky)
    with pytest.raises(RunFolderError, match="split its data with seed 1; split_seed=0"):
        kerascnn.evaluate(str(run), split_seed=0)
    with pytest.raises(RunFolderError, match="not a run folder"):
        kerascnn.evaluate(str(tmp_path))
    # Model files outside run folders are evaluated as before, split with split_seed.
    plain = tmp_path / "plain.keras"
    (run / "model.keras").replace(plain)
    other = kerascnn.evaluate(str(plain), "digits", split_seed=1)
    assert other.metrics["confusion_matrix"] == report.metrics["confusion_matrix"]
