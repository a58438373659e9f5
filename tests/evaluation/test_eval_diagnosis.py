"""Learning-curve diagnosis on histories with a known answer, and history loading."""

import csv

import keras
import pytest

from kerascnn.evaluation import diagnosis
from kerascnn.evaluation.diagnosis import FitThresholds


def history(loss, val_loss, accuracy=None, val_accuracy=None):
    columns = {"loss": loss, "val_loss": val_loss}
    if accuracy is not None:
        columns.update(accuracy=accuracy, val_accuracy=val_accuracy)
    return columns


OVERFITTING = history(
    loss=[1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05],
    val_loss=[1.0, 0.7, 0.5, 0.45, 0.5, 0.6, 0.7],
    accuracy=[0.7, 0.85, 0.9, 0.93, 0.96, 0.98, 0.99],
    val_accuracy=[0.7, 0.82, 0.88, 0.9, 0.9, 0.89, 0.88])


def test_overfitting_starts_after_the_validation_loss_minimum():
    result = diagnosis.diagnose(OVERFITTING)
    assert result.verdict == "overfitting"
    assert result.best_epoch == 4
    assert result.overfitting_epoch == 5
    assert "epoch 4 of 7" in result.explanation


def test_underfitting_when_both_errors_are_high():
    result = diagnosis.diagnose(history(
        loss=[2.0, 1.8, 1.7], val_loss=[2.0, 1.85, 1.75],
        accuracy=[0.3, 0.4, 0.45], val_accuracy=[0.3, 0.38, 0.42]))
    assert result.verdict == "underfitting"
    assert result.overfitting_epoch is None
    assert "55.00%" in result.explanation  # the final training error


def test_good_fit_and_the_stated_thresholds():
    good = history(loss=[0.5, 0.2, 0.1, 0.08], val_loss=[0.4, 0.2, 0.12, 0.121],
                   accuracy=[0.9, 0.95, 0.97, 0.98], val_accuracy=[0.9, 0.95, 0.96, 0.96])
    result = diagnosis.diagnose(good)
    assert result.verdict == "good fit"
    # A rise of 0.8% stays under the 5% threshold, and comes 1 epoch after the minimum.
    assert diagnosis.diagnose(good, FitThresholds(min_rise=0.005, patience=1)).verdict == (
        "overfitting")
    # Final errors of 2% and 4% are high only for a stricter threshold.
    assert diagnosis.diagnose(good, FitThresholds(high_error=0.015)).verdict == "underfitting"
    rules = result.to_dict()["rules"]
    assert "10%" in rules and "5%" in rules and "2 epochs" in rules


def test_rise_must_last_patience_epochs():
    late_rise = history(loss=[1.0, 0.5, 0.3, 0.2], val_loss=[1.0, 0.6, 0.4, 0.8],
                        accuracy=[0.8, 0.9, 0.95, 0.97], val_accuracy=[0.8, 0.9, 0.93, 0.9])
    assert diagnosis.diagnose(late_rise).verdict == "good fit"


def test_without_accuracy_underfitting_is_not_assessed():
    result = diagnosis.diagnose(history(loss=[3.0, 2.9, 2.8], val_loss=[3.0, 2.95, 2.9]))
    assert result.verdict == "good fit"
    assert "not assessed" in result.explanation


def test_history_from_csv_and_from_keras_history(tmp_path, trained):
    path = tmp_path / "history.csv"
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    with open(path, "w", newline="") as f:  # the layout of keras.callbacks.CSVLogger
        writer = csv.writer(f)
        writer.writerow(["epoch"] + keys)
        for epoch in range(7):
            writer.writerow([epoch] + [OVERFITTING[key][epoch] for key in keys])
    loaded = diagnosis.load_history(str(path))
    assert loaded["epoch"] == [float(e) for e in range(7)]
    assert all(loaded[key] == pytest.approx(OVERFITTING[key]) for key in keys)
    assert diagnosis.diagnose(path) == diagnosis.diagnose(OVERFITTING)

    _, keras_history = trained
    assert isinstance(keras_history, keras.callbacks.History)
    assert diagnosis.load_history(keras_history) == keras_history.history


def test_bad_histories_are_refused():
    with pytest.raises(ValueError, match=r"lacks \['val_loss'\].*\['accuracy', 'loss'\]"):
        diagnosis.load_history({"loss": [1.0], "accuracy": [0.5]})
    with pytest.raises(ValueError, match="one value per epoch"):
        diagnosis.load_history({"loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(TypeError, match="list"):
        diagnosis.load_history([1.0, 0.5])
