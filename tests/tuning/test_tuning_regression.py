"""kerascnn.tune on regression data (digits' values), against scikit-learn: KFold, scores, layout."""

import csv
import json

import keras
import numpy as np
import pytest
from sklearn import metrics as sk_metrics
from sklearn.model_selection import KFold

import kerascnn
from kerascnn.cli import main

SEED = 4
SPACE = {"learning_rate": [3e-3, 1e-2], "batch_size": [64]}


def tiny_regressor(hp):
    """One hidden layer on 8×8 digits and a linear output: the digit's value."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(hp.Int("units", 16, 32, step=16), activation="relu")(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name="tiny_regressor")


@pytest.fixture(scope="module")
def values(digit_values):
    return kerascnn.data.load(digit_values, task="regression", seed=0)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, values):
    """3 shuffled folds, 2 trials of 2 epochs, the default objective (the recipe's MSE)."""
    out = tmp_path_factory.mktemp("search")
    result = kerascnn.tune(tiny_regressor, values, space=SPACE, folds=3, max_trials=2, epochs=2,
                           out=out, seed=SEED, verbose=0)
    return result, out


def _held_out_folds(values):
    n = len(values.training_labels())
    return list(KFold(3, shuffle=True, random_state=SEED).split(np.zeros(n)))


def test_folds_are_scikit_learns_shuffled_kfold(searched, values):
    _, out = searched
    saved = json.loads((out / "folds.json").read_text())["folds"]
    for fold, (train, held_out) in zip(saved, _held_out_folds(values), strict=True):
        np.testing.assert_array_equal(fold["train"], train)
        np.testing.assert_array_equal(fold["held_out"], held_out)


def test_fold_scores_are_scikit_learns_mse_of_the_fold_models(searched, values):
    result, out = searched
    x, y = values.x_train, values.training_labels()  # no validation split: train is all of it
    results = json.loads((out / "results.json").read_text())
    assert (results["objective"], results["direction"]) == ("val_mse", "min")
    assert results["cv_results_scorer"] == "neg_mean_squared_error"
    for trial in result.trials:  # KerasTuner's own record: it minimises the mean MSE
        saved = json.loads((out / "keras_tuner" / f"trial_{trial['trial_id']}" / "trial.json")
                           .read_text())
        assert saved["metrics"]["metrics"]["val_mse"]["direction"] == "min"
        assert saved["score"] == pytest.approx(trial["score"])
    for trial in result.trials:
        for j, (_, held_out) in enumerate(_held_out_folds(values)):
            model = keras.models.load_model(
                out / "trials" / trial["trial_id"] / f"fold-{j}" / "model.keras")
            predicted = model.predict(x[held_out], verbose=0)
            assert trial["fold_scores"][j] == pytest.approx(
                sk_metrics.mean_squared_error(y[held_out], predicted), rel=1e-5)

    # scikit-learn's convention: greater is better, so the MSE is negated ("neg_mean_squared_error").
    cv = result.cv_results
    for k in range(3):
        np.testing.assert_allclose(cv[f"split{k}_test_score"],
                                   [-t["fold_scores"][k] for t in result.trials])
    np.testing.assert_allclose(cv["mean_test_score"], [-t["score"] for t in result.trials])
    best = int(np.argmax(cv["mean_test_score"]))
    assert cv["rank_test_score"][best] == 1 and sorted(cv["rank_test_score"]) == [1, 2]
    assert cv["params"][best] == result.best_hyperparameters
    assert min(t["score"] for t in result.trials) == result.trials[best]["score"]


def test_the_refit_regressor_beats_predicting_the_mean(searched, values):
    result, out = searched
    x, y = values.arrays("test")
    predicted = result.best_model.predict(x, verbose=0)
    r2 = sk_metrics.r2_score(y, predicted)
    assert r2 > 0  # predicting the mean scores 0
    assert result.test_metrics["r2"] == pytest.approx(r2, rel=1e-4)
    assert result.test_metrics["mae"] == pytest.approx(
        sk_metrics.mean_absolute_error(y, predicted), rel=1e-4)
    saved = json.loads((out / "refit" / "evaluation" / "metrics.json").read_text())
    assert saved["task"] == "regression" and saved["r2"] == pytest.approx(r2, rel=1e-4)


@pytest.mark.parametrize("data, objective, message", [
    ("values", "val_accuracy",
     ("objective='val_accuracy' scores classification, but the data holds regression targets; "
      "choose one of ['val_mae', 'val_mse', 'val_r2'].")),
    ("digits", "val_r2",
     ("objective='val_r2' scores regression, but the data holds classification targets; "
      "choose one of ['val_accuracy', 'val_loss'].")),
])
def test_an_objective_of_the_other_task_is_refused_before_any_work(
        data, objective, message, values, tmp_path):
    data = values if data == "values" else "digits"
    with pytest.raises(ValueError) as error:
        kerascnn.tune(tiny_regressor, data, objective=objective, out=tmp_path / "s", verbose=0)
    assert str(error.value) == message
    assert not (tmp_path / "s").exists()


def test_cli_bad_combinations_fail_in_one_line(digit_values, tmp_path, capsys):
    for argv, message in [
        (["--task", "regression", "--data", str(digit_values), "--objective", "val_loss"],
         "objective='val_loss' scores classification, but the data holds regression targets"),
        (["--task", "regression", "--data", "digits"],
         "holds int64 class labels, but task='regression'"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["tune", *argv, "--out", str(tmp_path / "s")])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and message in err and "\n" not in err
        assert not (tmp_path / "s" / "results.json").exists()


@pytest.mark.slow
def test_cli_tunes_a_registry_regressor_on_r2(digit_values, tmp_path, capsys):
    out = tmp_path / "search"
    main(["tune", "--model", "lenet5", "--task", "regression", "--data", str(digit_values),
          "--objective", "val_r2", "--folds", "2", "--max-trials", "1", "--epochs", "4",
          "--out", str(out)])
    printed = capsys.readouterr().out
    assert "refit test R²" in printed
    results = json.loads((out / "results.json").read_text())
    assert (results["objective"], results["direction"]) == ("val_r2", "max")
    trial = results["trials"][0]
    assert trial["score"] > 0
    row = next(csv.DictReader((out / "cv_results.csv").open()))
    mean = float(row["mean_test_score"])
    assert mean == pytest.approx(trial["score"])  # R² is greater-is-better: its sign is kept
    metrics = json.loads((out / "refit" / "evaluation" / "metrics.json").read_text())
    assert metrics["r2"] > 0
