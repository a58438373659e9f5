"""The steps of `finetune` on their own: phase headings, the history of phases, the feature
baseline's records."""

import json

import pytest

import kerascnn
from kerascnn.transfer.finetune import _append, _phase_heading
from kerascnn.transfer.freezing import HEAD, Phase


def test_a_phase_heading_names_what_it_trains():
    multipliers = {"conv1": 1.0, "conv2": 0.5, HEAD: 1.0}
    assert _phase_heading(Phase(1, [HEAD], 3, 1e-3), multipliers) == (
        "phase 1: head, base frozen (3 epochs, learning rate 0.001)")
    assert _phase_heading(Phase(2, ["conv2", HEAD], 1, 1e-4), multipliers) == (
        "phase 2: unfreeze conv2 + head (1 epoch, learning rate 0.0001; lr_mult conv2 ×0.5)")


def test_phase_histories_append_with_a_phase_column():
    history = {}
    _append(history, {"loss": [3.0, 2.0]}, 1)
    _append(history, {"loss": [1.0], "val_loss": [1.5]}, 2)
    assert history == {"loss": [3.0, 2.0, 1.0], "phase": [1, 1, 2],
                       "val_loss": [None, None, 1.5]}


def test_the_feature_baseline_writes_its_records(digits, tmp_path):
    out = tmp_path / "baseline"
    result = kerascnn.finetune("lenet5_mnist", digits, freeze="all", out=out, verbose=0)
    assert result.history == {} and result.run_dir == str(out)
    manifest = json.loads((out / "finetune.json").read_text())
    assert manifest["phases"] == [] and "status" not in manifest
    assert manifest["feature_baseline"] == {
        "features": 84, "classifier": "StandardScaler + LogisticRegression (scikit-learn)",
        "max_iter": 2000}
    assert manifest["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert manifest["test_metrics"] == {
        "accuracy": pytest.approx(result.metrics["accuracy"]),
        "macro_f1": pytest.approx(result.metrics["macro_f1"])}
    assert json.loads((out / "metrics.json").read_text()) == result.metrics
    assert not (out / "model.keras").exists()  # the baseline trains no network
