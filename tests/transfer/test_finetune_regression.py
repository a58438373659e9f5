"""Fine-tuning a classifier into a regressor: digits 0-4 classes -> digits 5-9 values."""

import json

import keras
import numpy as np
import pytest
from sklearn import datasets
from sklearn import metrics as sk_metrics
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import kerascnn
from kerascnn.cli import main
from kerascnn.data import load
from kerascnn.transfer import TransferError, features, surgery


@pytest.fixture(scope="module")
def halves():
    """A classifier of digits 0-4, and digits 5-9 as a regression set (the digit's value)."""
    digits = datasets.load_digits()
    low = digits.target < 5
    classes = load((digits.images[low], digits.target[low]), seed=0)
    source = kerascnn.train("lenet1", classes, epochs=4, seed=0, verbose=0).model
    values = load((digits.images[~low], digits.target[~low].astype("float32")),
                  task="regression", validation_split=0.1, seed=0)
    return source, values


def test_a_classifier_finetuned_into_a_regressor_beats_the_mean(halves, tmp_path):
    source, values = halves
    out = tmp_path / "run"
    result = kerascnn.finetune(source, values, freeze="none", head_epochs=4, epochs=4,
                               out=out, seed=0, verbose=0)
    predictions_layer = result.model.get_layer("lenet1").get_layer("predictions")
    assert predictions_layer.units == 1
    assert predictions_layer.get_config()["activation"] == "linear"  # no softmax
    x, y = values.arrays("test")
    predicted = result.model.predict(x, verbose=0)
    r2 = sk_metrics.r2_score(y, predicted)
    assert r2 > 0.3  # predicting the mean scores 0 (measured: 0.76)
    assert result.metrics["r2"] == pytest.approx(r2, rel=1e-4)
    assert result.metrics["mae"] == pytest.approx(sk_metrics.mean_absolute_error(y, predicted),
                                                  rel=1e-4)
    manifest = json.loads((out / "finetune.json").read_text())
    assert manifest["recipe"]["task"] == "regression" and manifest["recipe"]["loss"] is None
    assert manifest["classes"]["target"] == "1 regression target(s)"
    assert manifest["test_metrics"]["r2"] == pytest.approx(r2, rel=1e-4)
    assert json.loads((out / "run.json").read_text())["loss"] == "mse"
    reloaded = keras.models.load_model(out / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x[:8], verbose=0), predicted[:8], atol=1e-4)


def test_the_feature_baseline_is_a_ridge_regression(halves):
    source, values = halves
    baseline = kerascnn.finetune(source, values, freeze="all", verbose=0)
    found = features.split_features(features.feature_model(source), values)
    reference = make_pipeline(StandardScaler(), RidgeCV(alphas=features.RIDGE_ALPHAS))
    reference.fit(*found["train"])
    x, y = found["test"]
    assert baseline.metrics["r2"] == pytest.approx(
        sk_metrics.r2_score(y, reference.predict(x)), rel=1e-6)
    assert baseline.metrics["r2"] > 0


def test_a_task_against_the_data_is_one_line_before_any_work(halves, tmp_path, capsys):
    source, values = halves
    with pytest.raises(TransferError) as error:
        kerascnn.finetune(source, values, task="classification", out=tmp_path / "a", verbose=0)
    assert str(error.value) == (
        "task='classification', but values were loaded for regression; pass "
        "task='regression', or load the data with task='classification'.".replace(
            "values were", f"{values.name} was"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(SystemExit) as exit_info:  # class labels are no regression targets
        main(["finetune", "lenet5_mnist", "--data", "digits", "--task", "regression",
              "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert "holds int64 class labels, but task='regression'" in err
    assert not (tmp_path / "b").exists()


def test_a_softmax_layer_after_the_classifier_becomes_linear_too():
    inputs = keras.Input((8, 8, 1))  # keras.applications' MobileNet ends so: logits, Softmax
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(7, name="logits")(x)
    classifier = keras.Model(inputs, keras.layers.Softmax(name="predictions")(x))
    regressor = surgery.rebuild(classifier, classes=2, linear_head=True)
    surgery.transfer_weights(classifier, regressor, replaced=["logits"])
    assert regressor.output_shape == (None, 2)
    assert regressor.get_layer("predictions").get_config()["activation"] == "linear"
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype("float32")
    logits = keras.Model(regressor.inputs, regressor.get_layer("logits").output)
    np.testing.assert_allclose(regressor.predict(x, verbose=0), logits.predict(x, verbose=0))
