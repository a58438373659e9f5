"""A search's records never lie: extended searches, bad settings, failed trials, groups, refit."""

import csv
import json
import math
import re
import time

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
from tuning_models import tiny

import kerascnn
from kerascnn.tuning import SearchError, SpaceError, StudyError, load_study
from kerascnn.training.checkpoints import TrainingDivergedError
from kerascnn.tuning import results as results_module
from kerascnn.tuning import cross_validation
from kerascnn.tuning.cross_validation import TUNERS, TrialError, fold_indices
from kerascnn.tuning.study import TUNER_NAMES, check_settings

GOOD = 1e-2  # a learning rate that learns digits in one epoch
BAD = 1e-6  # one that does not


def _json(path):
    return json.loads(path.read_text())


def test_a_grown_search_refits_its_new_best_and_its_files_agree(tmp_path, digits):
    # With seed 1 the Oracle draws the bad rate first: trial 0 is refit as the best of one
    # trial, then trial 1 (the other rate: an Oracle never repeats a trial) beats it.
    space = {"units": 16, "learning_rate": [BAD, GOOD], "batch_size": [64]}
    settings = dict(space=space, folds=2, epochs=1, seed=1, out=tmp_path, verbose=0)
    first = kerascnn.tune(tiny, digits, max_trials=1, **settings)
    assert first.refit["trial_id"] == "0" and first.best_hyperparameters["learning_rate"] == BAD
    grown = kerascnn.tune(tiny, digits, max_trials=2, **settings)
    assert [t["trial_id"] for t in grown.trials] == ["0", "1"]
    assert grown.trials[1]["score"] > grown.trials[0]["score"]
    results = _json(tmp_path / "results.json")
    best = _json(tmp_path / "best_hyperparameters.json")
    refit = _json(tmp_path / "refit.json")
    assert results["best_trial_id"] == best["trial_id"] == refit["trial_id"] == "1"
    assert results["refit"] == refit == grown.refit and refit["status"] == "done"
    rows = list(csv.DictReader((tmp_path / "cv_results.csv").open()))
    assert [r["rank_test_score"] for r in rows] == ["2", "1"]
    # refit/ holds the new best's model, not the old one's.
    run = _json(tmp_path / "refit" / "run.json")
    assert run["recipe"]["learning_rate"] == GOOD
    assert _json(tmp_path / "refit" / "evaluation" / "metrics.json")["accuracy"] == (
        pytest.approx(grown.test_metrics["accuracy"]))


@pytest.mark.slow
def test_a_grown_grid_search_goes_on_where_it_stopped(tmp_path, digits):
    space = {"units": 16, "learning_rate": [GOOD, BAD, 3e-3], "batch_size": [64]}
    settings = dict(space=space, tuner="grid", folds=2, epochs=1, refit=False, out=tmp_path,
                    verbose=0)
    kerascnn.tune(tiny, digits, max_trials=1, **settings)
    grown = kerascnn.tune(tiny, digits, max_trials=3, **settings)
    rates = [t["hyperparameters"]["learning_rate"] for t in grown.trials]
    assert rates == [GOOD, BAD, 3e-3]  # the rest of the grid, in its order, once each


@pytest.mark.parametrize("settings, message", [
    ({"prune": -0.1}, r"prune must be None \(off\) or a margin >= 0 .*got prune=-0.1"),
    ({"nested": 1}, r"nested must be 0 or None .* K >= 2; got nested=1"),
    ({"nested": -2}, r"nested must be .*got nested=-2"),
    ({"seed": -3}, r"seed must be a non-negative integer; got seed=-3"),
    ({"error_score": 0}, r"error_score must be nan .* or \"raise\" .*got error_score=0"),
    ({"space": {"dropout": {"min": 0.0, "max": 0.4, "step": 0.0}}},
     r"range 'dropout' has step=0.0; use a step > 0"),
    ({"space": {"dropout": {"min": 0.0, "max": 0.4, "step": -0.1}}}, r"has step=-0.1"),
])
def test_bad_settings_are_refused_before_any_work(tmp_path, settings, message):
    start = time.perf_counter()
    with pytest.raises((StudyError, SpaceError), match=message) as error:
        kerascnn.tune("lenet5", "digits", out=tmp_path / "s", verbose=0, **settings)
    assert "\n" not in str(error.value) and time.perf_counter() - start < 10
    assert not (tmp_path / "s").exists()


def test_nested_off_and_study_settings_name_the_file(tmp_path):
    assert check_settings(nested=0) is None and check_settings(nested=None) is None
    assert check_settings(nested=3) == 3
    assert sorted(TUNER_NAMES) == sorted(TUNERS)
    study = tmp_path / "bad.toml"
    study.write_text('model = "lenet5"\nprune = -0.05\n')
    with pytest.raises(StudyError, match=rf"study file {re.escape(str(study))}: prune must be"):
        load_study(study)
    study.write_text('model = "lenet5"\nerror_score = nan\n')
    assert math.isnan(load_study(study)["error_score"])
    study.write_text('model = "lenet5"\nerror_score = "raise"\n')
    assert load_study(study)["error_score"] == "raise"


def test_a_study_file_that_is_not_utf8_is_named(tmp_path):
    study = tmp_path / "latin1.toml"
    study.write_bytes('model = "lenet5"\n# café\n'.encode("latin-1"))
    with pytest.raises(StudyError, match=rf"study file {re.escape(str(study))} is not UTF-8"):
        load_study(study)


@pytest.mark.parametrize("settings, message", [
    ({"space": {"norm": ["batch", "wrong"]}}, r"'norm': norm='wrong' is refused"),
    ({"space": {"width_multiplier": {"min": -1.0, "max": 2.0}}},
     r"'width_multiplier': width_multiplier=-1.0 is refused"),
    ({"space": {"augment": ["none", "rotate=abc"]}}, r"'augment': augment='rotate=abc'"),
    ({"space": {"loss": ["hinge"]}, "objective": "val_loss"},
     r"loss='hinge' gives class scores.*objective='val_loss'"),
    ({"tuner": "banana"}, r"Unknown tuner 'banana'"),
])
def test_a_bad_space_value_is_one_line_before_any_training(tmp_path, settings, message):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message) as error:
        kerascnn.tune("lenet5", "digits", out=tmp_path / "s", verbose=0, **settings)
    assert "\n" not in str(error.value)
    assert time.perf_counter() - start < 5  # validation, not training
    assert not (tmp_path / "s").exists()


def flaky(hp):
    """`tiny`, unless the drawn "explode" is 1: then the builder refuses it, as a builder
    refuses an option it cannot build (the default, 0, lets KerasTuner declare the space)."""
    if hp.Choice("explode", [0, 1]):
        raise ValueError("explode=1 is not buildable")
    return tiny(hp)


def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path, digits, capsys):
    space = {"units": 16, "learning_rate": [GOOD], "batch_size": [64], "explode": [0, 1]}
    result = kerascnn.tune(flaky, digits, space=space, tuner="grid", folds=2, max_trials=2,
                           epochs=1, out=tmp_path, verbose=1)
    good, failed = result.trials
    assert failed["status"] == "failed" and failed["score"] is None
    assert failed["error"] == "fold 0: ValueError: explode=1 is not buildable"
    assert good["status"] == "completed" and result.best_hyperparameters["explode"] == 0
    saved = _json(tmp_path / "results.json")
    assert [t["status"] for t in saved["trials"]] == ["completed", "failed"]
    assert saved["best_index"] == result.best_index == 0
    rows = list(csv.DictReader((tmp_path / "cv_results.csv").open()))
    assert rows[1]["mean_test_score"] == "nan" and rows[1]["rank_test_score"] == "2"
    assert rows[0]["rank_test_score"] == "1" and rows[1]["status"] == "failed"
    assert result.test_metrics["accuracy"] > 0.5  # the refit of the completed trial
    # Trials and folds are numbered from 0 in the progress lines, as in the folder.
    printed = capsys.readouterr().out
    assert "trial 1 failed, the search goes on: fold 0: ValueError" in printed
    progress = re.findall(r"^trial (\S+) fold (\d+):", printed, re.MULTILINE)
    assert progress == [("0", "0"), ("0", "1")]
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["0", "1"]
    assert (tmp_path / "trials" / "0" / "fold-1.json").exists()
    assert _json(tmp_path / "best_hyperparameters.json")["trial_id"] == "0"
    # Resuming finds the search finished: the failed trial is not handed back.
    again = kerascnn.tune(flaky, digits, space=space, tuner="grid", folds=2, max_trials=2,
                          epochs=1, out=tmp_path, verbose=0)
    assert again.trials == result.trials and again.refit_time == result.refit_time


def test_error_score_raise_stops_and_all_failed_says_so(tmp_path, digits, monkeypatch):
    space = {"units": 16, "learning_rate": [GOOD, BAD], "batch_size": [64]}
    settings = dict(space=space, tuner="grid", folds=2, max_trials=2, epochs=1, verbose=0)

    def diverges(*args, **kwargs):
        raise TrainingDivergedError("the loss became NaN at epoch 1")

    monkeypatch.setattr(cross_validation, "train", diverges)
    with pytest.raises(TrialError, match="trial 0 fold 0: the loss became NaN"):
        kerascnn.tune(tiny, digits, out=tmp_path / "raise", error_score="raise", **settings)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(cross_validation, "train", out_of_memory)
    with pytest.raises(SearchError, match=r"no trial completed: 2 of 2 failed; the first, "
                                          r"trial 0: fold 0: MemoryError: out of memory") as error:
        kerascnn.tune(tiny, digits, out=tmp_path / "nan", **settings)
    assert "\n" not in str(error.value)
    saved = _json(tmp_path / "nan" / "results.json")
    assert [t["status"] for t in saved["trials"]] == ["failed", "failed"]
    assert saved["best_index"] is None and not (tmp_path / "nan" / "refit").exists()


def test_integer_folds_keep_groups_whole(digits):
    labels = digits.training_labels()
    groups = np.arange(len(labels)) // 10  # 144 groups of 10 neighbouring examples
    folds = fold_indices(digits, 3, seed=2, groups=groups)
    expected = StratifiedGroupKFold(3, shuffle=True, random_state=2).split(
        np.zeros(len(labels)), labels, groups)
    held_groups = []
    for (train, held_out), (train_ref, held_ref) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(held_out, held_ref)
        np.testing.assert_array_equal(train, train_ref)
        assert not set(groups[train]) & set(groups[held_out])
        held_groups.append(set(groups[held_out]))
    assert sum(len(g) for g in held_groups) == len(set().union(*held_groups)) == 144
    values = kerascnn.data.load((digits.x_train, labels.astype("float32")), task="regression",
                                test_split=None)
    regression = fold_indices(values, 3, seed=2, groups=groups)
    for (_, held_out), (_, held_ref) in zip(regression, GroupKFold(3).split(
            np.zeros(len(labels)), labels, groups), strict=True):
        np.testing.assert_array_equal(held_out, held_ref)


@pytest.mark.slow
def test_nested_outer_and_inner_folds_keep_groups_whole(tmp_path, digits):
    labels = digits.training_labels()
    groups = np.arange(len(labels)) // 10
    kerascnn.tune(tiny, digits, space={"units": 8, "learning_rate": [GOOD], "batch_size": [128]},
                  folds=2, max_trials=1, epochs=1, nested=2, groups=groups, out=tmp_path,
                  verbose=0)
    outer = list(StratifiedGroupKFold(2, shuffle=True, random_state=0).split(
        np.zeros(len(labels)), labels, groups))
    for i, (train, held_out) in enumerate(outer):
        assert not set(groups[train]) & set(groups[held_out])
        inner = _json(tmp_path / "nested" / f"outer-{i}" / "folds.json")["folds"]
        part = groups[train]
        for fold in inner:
            assert not set(part[fold["train"]]) & set(part[fold["held_out"]])


def test_the_refit_trains_on_all_training_data_without_early_stopping(tmp_path, digits):
    recipe = kerascnn.training.get_recipe("quick", early_stopping=1, schedule="cosine")
    result = kerascnn.tune(tiny, digits, space={"units": 16, "learning_rate": [GOOD],
                                                "batch_size": [64]},
                           recipe=recipe, folds=2, max_trials=1, epochs=3, out=tmp_path,
                           verbose=0)
    best_epochs = [f["best_epoch"] for f in result.trials[0]["folds"]]
    refit = result.refit
    assert refit["epochs"] == result.refit_epochs == max(1, round(np.mean(best_epochs)))
    assert refit["train_examples"] == len(digits.training_labels()) == 1438
    assert refit["early_stopping"] is False
    run = _json(tmp_path / "refit" / "run.json")
    assert run["recipe"]["early_stopping"] == 0 and run["recipe"]["epochs"] == refit["epochs"]
    assert run["epochs_completed"] == refit["epochs"]
    assert set(run["data"]["splits"]) == {"train"}  # nothing held out for validation
    assert run["data"]["splits"]["train"]["size"] == 1438
    if refit["epochs"] != 3:
        assert any("cosine schedule spans" in d for d in refit["differences"])
    # scikit-learn's best_index_, best_score_, refit_time_ and score times.
    assert result.best_index == 0 and result.best_score == result.trials[0]["score"]
    assert result.refit_time > 0
    saved = _json(tmp_path / "results.json")
    assert (saved["best_index"], saved["best_score"]) == (0, result.best_score)
    assert saved["refit"]["seconds"] == result.refit_time
    cv = result.cv_results
    assert cv["mean_score_time"][0] > 0 and cv["std_score_time"][0] >= 0
    assert all(f["score_seconds"] > 0 for f in result.trials[0]["folds"])


def test_cv_results_round_values_and_rank_nan_last():
    trial = {"hyperparameters": {"dropout": 0.1 * 3, "tuner/epochs": 2}, "status": "completed",
             "fold_scores": [0.5, 0.7], "folds": [{"seconds": 1.0}, {"seconds": 2.0}]}
    trials = [{**trial, "trial_id": "0"},
              {**trial, "trial_id": "1", "status": "failed", "fold_scores": [], "folds": []},
              {**trial, "trial_id": "2", "fold_scores": [0.9, 0.9]}]
    cv = results_module.cv_results(trials, "max")
    assert cv["params"][0] == {"dropout": 0.3} and cv["param_dropout"][0] == 0.3
    assert cv["rank_test_score"] == [2, 3, 1]
    assert np.isnan(cv["mean_test_score"][1]) and np.isnan(cv["split0_test_score"][1])
    text = results_module.cv_results_csv(cv)
    assert "0.30000000000000004" not in text and '{""dropout"": 0.3}' in text
    assert results_module.ranks([1.0, math.nan, 1.0], "min") == [1, 3, 1]
    assert sorted(["10", "9", "0"], key=lambda i: results_module.trial_order(
        {"trial_id": i})) == ["0", "9", "10"]
