"""Regression: float targets, a linear head, MAE / RMSE / R² from scikit-learn, end to end."""

import json

import keras
import numpy as np
import pytest
from sklearn import datasets
from sklearn import metrics as sk_metrics

import kerascnn
from kerascnn.cli import main


def test_cli_train_and_evaluate_a_regressor_that_beats_the_mean(digit_values, tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--task", "regression", "--data", str(digit_values), "--epochs", "6",
          "--out", str(out)])
    printed = capsys.readouterr().out
    assert '"r2"' in printed and '"mae"' in printed

    # The run's own test split, reloaded with the recorded task: no stratification, floats.
    data = kerascnn.data.load(digit_values, task="regression", validation_split=0.1, seed=0)
    x, y = data.arrays("test")
    model = keras.models.load_model(out / "model.keras")
    head = model.get_layer("lenet5").get_layer("predictions")
    assert head.get_config()["activation"] == "linear" and head.units == 1
    predictions = model.predict(x, verbose=0)
    expected = {"mae": sk_metrics.mean_absolute_error(y, predictions),
                "rmse": sk_metrics.root_mean_squared_error(y, predictions),
                "r2": sk_metrics.r2_score(y, predictions)}
    assert expected["r2"] > 0.5  # predicting the mean scores 0

    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5)
        assert run[f"test_{key}"] == pytest.approx(value, rel=1e-5)
    assert (run["task"], run["loss"], metrics["task"]) == ("regression", "mse", "regression")
    assert (out / "predictions.png").stat().st_size > 0
    assert "R²" in (out / "report.md").read_text()

    report = kerascnn.evaluate(str(out))  # the run folder alone: its data, split and task
    assert report.metrics["r2"] == pytest.approx(expected["r2"], rel=1e-5)
    assert report.summary().startswith(f"{model.name}: MAE {expected['mae']:.4f}")


def test_several_targets_get_one_output_each_and_per_target_metrics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8, 8, 1)).astype("float32")
    y = np.stack([x.mean(axis=(1, 2, 3)), x[:, 0, 0, 0]], axis=1)
    result = kerascnn.train("lenet1", (x, y), task="regression", loss="mae", epochs=1, verbose=0)
    assert result.model.output_shape == (None, 2)
    assert set(result.metrics["per_target"]) == {"0", "1"}
    report = kerascnn.evaluate(result.model, (x[:50], y[:50]))  # the compiled loss says regression
    truth = sk_metrics.mean_absolute_error(y[:50], result.model.predict(x[:50], verbose=0))
    assert report.metrics["mae"] == pytest.approx(truth, rel=1e-5)


@pytest.mark.parametrize("task, y, message", [
    ("regression", "labels", "holds int64 class labels, but task='regression'"),
    ("regression", "nan", "holds NaN or infinite targets (first at example 3)"),
    ("classification", "floats", "For real-valued targets train a regressor"),
])
def test_targets_that_do_not_fit_the_task_fail_in_one_line_before_training(
        task, y, message, tmp_path, capsys):
    digits = datasets.load_digits()
    targets = {"labels": digits.target, "floats": digits.target + 0.25,
               "nan": np.where(np.arange(len(digits.target)) == 3, np.nan, 1.0)}[y]
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=digits.images, y_train=targets)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", task, "--data", str(path), "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in error and "\n" not in error
    assert not (tmp_path / "run" / "model.keras").exists()
