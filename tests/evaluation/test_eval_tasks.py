"""`evaluate` on a regressor and on a hinge-loss classifier's raw class scores."""

import os
import re

import keras
import numpy as np
import pytest
from sklearn import metrics as sk

from kerascnn import evaluation, losses

HISTORY = {"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.7, 0.6]}
REPORT_FILES = ["metrics.json", "report.md", "report.html"]
RUN_FILES = [".kerascnn-run.json", ".kerascnn-run.lock"]


def _linear_model(name, units, loss):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(units)], name=name)
    model.compile("adam", loss)
    return model


def _headings(markdown):
    return re.findall(r"^#+ (.*)$", markdown, flags=re.M)


def test_a_regressor_is_scored_with_mae_rmse_and_r2(tmp_path, digits):
    _, _, x_test, _ = digits
    y = np.stack([x_test.mean(axis=(1, 2, 3)), x_test[:, 3, 3, 0]], axis=1)
    model = _linear_model("regressor", 2, keras.losses.MeanSquaredError())
    report = evaluation.evaluate(model, (x_test, y), history=HISTORY, out=tmp_path)
    predictions = model.predict(x_test, verbose=0)
    m = report.metrics
    assert (m["model"], m["task"], m["num_targets"]) == ("regressor", "regression", 2)
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(y, predictions), rel=1e-5)
    assert m["r2"] == pytest.approx(sk.r2_score(y, predictions), rel=1e-5)
    assert "Regression on 2 target(s)" in m["notes"][0]
    assert m["diagnosis"]["verdict"] == report.diagnosis.verdict
    assert _headings(report.to_markdown()) == [
        "Evaluation of regressor", "Notes", "Summary", "Predicted against true values",
        f"Learning curves: {report.diagnosis.verdict}"]
    assert report.summary().startswith(f"regressor: MAE {m['mae']:.4f}")
    figures = ["predictions.png", "learning_curves.png"]
    assert sorted(os.listdir(tmp_path)) == sorted(figures + REPORT_FILES + RUN_FILES)
    with pytest.raises(ValueError, match="summarise predicted probabilities; this model "
                                         "outputs regression values"):
        evaluation.evaluate(model, (x_test, y), mc_dropout=2)
    with pytest.raises(ValueError, match="Class labels need a classifier"):
        evaluation.evaluate(model, (x_test, np.arange(len(x_test))))


def test_raw_class_scores_are_scored_on_their_argmax_without_probabilities(tmp_path, digits):
    _, _, x_test, y_test = digits
    model = _linear_model("scorer", 10, losses.MulticlassHinge())
    report = evaluation.evaluate(model, (x_test, y_test), history=HISTORY, out=tmp_path)
    scores = model.predict(x_test, verbose=0)
    m = report.metrics
    assert m["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == y_test))
    assert m["outputs"] == "scores" and m["log_loss"] is None and "uncertainty" not in m
    assert "raw class scores" in m["notes"][0]
    assert _headings(report.to_markdown()) == [
        "Evaluation of scorer", "Notes", "Summary", "Per-class precision, recall and F1",
        "Confusion matrix", f"Learning curves: {report.diagnosis.verdict}"]
    assert "no log loss or ECE" in report.summary()
    figures = ["confusion_matrix.png", "learning_curves.png"]
    assert sorted(os.listdir(tmp_path)) == sorted(figures + REPORT_FILES + RUN_FILES)
    with pytest.raises(ValueError, match="this model outputs raw class scores"):
        evaluation.evaluate(model, (x_test, y_test), ensemble=[model, model])


def test_the_report_sections_of_a_classifier(trained, second_model, digits):
    model, history = trained
    _, _, x_test, y_test = digits
    plain = evaluation.evaluate(model, (x_test, y_test))
    assert _headings(plain.to_markdown()) == [
        "Evaluation of digits_cnn", "Summary", "Per-class precision, recall and F1",
        "Confusion matrix", "Calibration", "Accuracy against confidence",
        "Most confident mistakes"]
    full = evaluation.evaluate(model, (x_test, y_test), history=history,
                               ensemble=[model, second_model])
    assert _headings(full.to_markdown())[-2:] == [
        f"Learning curves: {full.diagnosis.verdict}",
        "Uncertainty: single model, MC dropout and ensemble"]
