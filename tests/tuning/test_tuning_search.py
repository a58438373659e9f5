"""kerascnn.tune on digits, against scikit-learn and NumPy: folds, scores, layout, no leakage."""

import json

import keras
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from tuning_models import SPACE, tiny

import kerascnn
from kerascnn.data import dataset
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.tuning import search as search_module

SEED = 3


@pytest.fixture(scope="module")
def searched(tmp_path_factory, digits):
    """One small search (3 folds, 2 trials, 2 epochs) whose test-split reads are counted."""
    out = tmp_path_factory.mktemp("search")
    test_split = digits._splits["test"]
    reads = {"search": 0, "refit": 0}
    phase = ["search"]
    patch = pytest.MonkeyPatch()
    for name in ("examples", "labels", "arrays", "all_positions"):
        original = getattr(dataset.Split, name)

        def counted(self, *args, _original=original, **kwargs):
            if self is test_split:
                reads[phase[0]] += 1
            return _original(self, *args, **kwargs)

        patch.setattr(dataset.Split, name, counted)
    refit = search_module.Search.refit

    def refit_phase(*args, **kwargs):
        phase[0] = "refit"
        return refit(*args, **kwargs)

    patch.setattr(search_module.Search, "refit", refit_phase)
    try:
        result = kerascnn.tune(tiny, digits, space=SPACE, folds=3, max_trials=2, epochs=2,
                               out=out, seed=SEED, verbose=0)
    finally:
        patch.undo()
    return result, out, reads


def test_folds_are_scikit_learns(searched, digits):
    _, out, _ = searched
    saved = json.loads((out / "folds.json").read_text())["folds"]
    labels = digits.training_labels()
    expected = StratifiedKFold(3, shuffle=True, random_state=SEED).split(np.zeros(len(labels)), labels)
    for fold, (train, held_out) in zip(saved, expected, strict=True):
        np.testing.assert_array_equal(fold["train"], train)
        np.testing.assert_array_equal(fold["held_out"], held_out)


def test_fold_scores_are_accuracies_on_held_out_parts(searched, digits):
    result, out, _ = searched
    x, labels = digits.x_train, digits.training_labels()  # digits has no validation split
    folds = StratifiedKFold(3, shuffle=True, random_state=SEED).split(np.zeros(len(labels)), labels)
    trial = result.trials[0]
    for j, (_, held_out) in enumerate(folds):
        model = keras.models.load_model(out / "trials" / trial["trial_id"] / f"fold-{j}" / "model.keras")
        predicted = model.predict(x[held_out], verbose=0).argmax(axis=1)
        assert trial["fold_scores"][j] == pytest.approx(accuracy_score(labels[held_out], predicted))
    assert trial["score"] == pytest.approx(np.mean(trial["fold_scores"]))
    assert trial["std"] == pytest.approx(np.std(trial["fold_scores"]))
    assert len(trial["folds"]) == 3 and all(f["epochs"] == 2 and f["seconds"] > 0 for f in trial["folds"])


def test_cv_results_have_scikit_learns_layout(searched, digits):
    result, out, _ = searched
    x, y = digits.arrays("train")
    reference = GridSearchCV(DummyClassifier(), {"strategy": ["prior", "uniform"]}, cv=3).fit(
        x.reshape(len(x), -1), y).cv_results_
    shared = {k for k in reference if not k.startswith("param_")}
    cv = result.cv_results
    assert shared <= set(cv), shared - set(cv)
    scores = np.array([cv[f"split{k}_test_score"] for k in range(3)]).T
    np.testing.assert_allclose(cv["mean_test_score"], scores.mean(axis=1))
    np.testing.assert_allclose(cv["std_test_score"], scores.std(axis=1))
    best = int(np.argmax(cv["mean_test_score"]))
    assert cv["rank_test_score"][best] == 1 and sorted(cv["rank_test_score"]) == [1, 2]
    assert cv["params"][best] == result.best_hyperparameters
    assert set(cv["param_learning_rate"]) <= set(SPACE["learning_rate"])
    header = (out / "cv_results.csv").read_text().splitlines()[0].split(",")
    assert header == list(cv)
    saved = json.loads((out / "results.json").read_text())["trials"]
    assert [t["fold_scores"] for t in saved] == [t["fold_scores"] for t in result.trials]
    assert (out / "scores.png").stat().st_size > 0
    assert json.loads((out / "best_hyperparameters.json").read_text())["hyperparameters"] == (
        result.best_hyperparameters)


def test_normalisation_uses_each_folds_training_part_only(searched, digits):
    result, out, _ = searched
    x, labels = digits.x_train.astype(np.float64), digits.training_labels()
    folds = StratifiedKFold(3, shuffle=True, random_state=SEED).split(np.zeros(len(labels)), labels)
    for j, (train, _) in enumerate(folds):
        model = keras.models.load_model(out / "trials" / "0" / f"fold-{j}" / "model.keras")
        layer = next(layer for layer in model.layers if isinstance(layer, Preprocessing))
        np.testing.assert_allclose(layer.mean.numpy(), [x[train].mean()], rtol=1e-5)
        np.testing.assert_allclose(layer.std.numpy(), [x[train].std()], rtol=1e-5)
        assert abs(layer.mean.numpy()[0] - x.mean()) > 1e-4  # not the whole training data's


def test_the_search_never_reads_the_test_split(searched, digits):
    result, out, reads = searched
    assert reads["search"] == 0
    assert reads["refit"] > 0  # the refit is tested once
    assert result.test_metrics["accuracy"] > 0.5
    refit_metrics = json.loads((out / "refit" / "evaluation" / "metrics.json").read_text())
    assert refit_metrics["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert result.refit_epochs == 2  # the mean best epoch of the best trial's folds


def test_a_folder_holding_another_search_is_refused(searched, digits):
    _, out, _ = searched
    before = {p: p.read_bytes() for p in out.glob("*.json")}
    with pytest.raises(ValueError, match="holds another search .*seed"):
        kerascnn.tune(tiny, digits, space=SPACE, folds=3, max_trials=2, epochs=2, out=out,
                      seed=SEED + 1, verbose=0)
    assert {p: p.read_bytes() for p in out.glob("*.json")} == before


def test_group_splitter_keeps_groups_apart(tmp_path, digits):
    labels = digits.training_labels()
    groups = np.arange(len(labels)) % 7
    result = kerascnn.tune(tiny, digits, space=SPACE, folds=GroupKFold(3), groups=groups,
                           max_trials=1, epochs=1, out=tmp_path, refit=False, verbose=0)
    saved = json.loads((tmp_path / "folds.json").read_text())["folds"]
    expected = list(GroupKFold(3).split(np.zeros(len(labels)), labels, groups))
    for fold, (train, held_out) in zip(saved, expected, strict=True):
        np.testing.assert_array_equal(fold["held_out"], held_out)
        assert not set(groups[fold["train"]]) & set(groups[fold["held_out"]])
    assert len(result.trials[0]["fold_scores"]) == 3 and result.best_model is None


# The default run tries one oracle; the others run with -m slow (the test budget).
@pytest.mark.parametrize("tuner", ["random", pytest.param("grid", marks=pytest.mark.slow),
                                   pytest.param("bayesian", marks=pytest.mark.slow)])
def test_each_oracle_runs_the_cross_validated_trials(tmp_path, digits, tuner):
    space = {"learning_rate": [3e-3, 1e-2], "batch_size": [64]}
    result = kerascnn.tune(tiny, digits, space=space, tuner=tuner, folds=2, max_trials=2,
                           epochs=1, out=tmp_path, refit=False, seed=1, verbose=0)
    assert len(result.trials) == 2 and all(len(t["fold_scores"]) == 2 for t in result.trials)
    combinations = {tuple(sorted(t["hyperparameters"].items())) for t in result.trials}
    assert len(combinations) == 2  # every oracle proposes new values


@pytest.mark.slow
def test_hyperband_continues_promoted_folds_from_their_checkpoints(tmp_path, digits):
    result = kerascnn.tune(tiny, digits, space={"learning_rate": [1e-2], "batch_size": [64]},
                           tuner="hyperband", folds=2, epochs=3, out=tmp_path, refit=False,
                           seed=0, verbose=0)
    promoted = [t for t in result.trials if "tuner/trial_id" in t["hyperparameters"]]
    assert promoted, [t["hyperparameters"] for t in result.trials]
    for trial in promoted:
        values = trial["hyperparameters"]
        parent = values["tuner/trial_id"]
        for j, fold in enumerate(trial["folds"]):
            assert fold["epochs"] == values["tuner/epochs"]
            # The first epochs are the parent's, row for row: continued, not retrained.
            own = (tmp_path / "trials" / trial["trial_id"] / f"fold-{j}" / "history.csv").read_text()
            before = (tmp_path / "trials" / parent / f"fold-{j}" / "history.csv").read_text()
            assert own.splitlines()[: values["tuner/initial_epoch"] + 1] == before.splitlines()


@pytest.mark.slow
def test_nested_cross_validation_tests_each_outer_fold_once(tmp_path, digits):
    result = kerascnn.tune(tiny, digits, space={"learning_rate": [1e-2], "batch_size": [64]},
                           folds=2, max_trials=1, epochs=1, nested=2, out=tmp_path, verbose=0)
    labels = digits.training_labels()
    outer = list(StratifiedKFold(2, shuffle=True, random_state=0).split(np.zeros(len(labels)), labels))
    assert len(result.nested["outer_test_accuracy"]) == 2
    assert result.nested["mean"] == pytest.approx(np.mean(result.nested["outer_test_accuracy"]))
    for i, (train, _) in enumerate(outer):
        inner = json.loads((tmp_path / "nested" / f"outer-{i}" / "folds.json").read_text())["folds"]
        # The inner folds partition the outer training part only.
        assert sorted(np.concatenate([f["held_out"] for f in inner])) == list(range(len(train)))
    assert json.loads((tmp_path / "nested.json").read_text()) == result.nested


def test_cv_fold_keeps_the_scored_part_out_of_training_and_validation(digits):
    labels = digits.training_labels()
    train, held_out = next(StratifiedKFold(4, shuffle=True, random_state=0).split(
        np.zeros(len(labels)), labels))
    fit, held = digits.cv_fold(train, held_out, validation_split=0.2, seed=0)
    x = digits.x_train.reshape(len(labels), -1)
    seen = np.concatenate([fit.x_train, fit.x_val]).reshape(-1, x.shape[1])
    assert len(seen) == len(train) and fit.size("test") == 0 and held.size("test") == 0
    assert sorted(map(bytes, seen)) == sorted(map(bytes, x[train]))
    np.testing.assert_array_equal(held.x_val.reshape(-1, x.shape[1]), x[held_out])
    assert fit.size("validation") == sum(round(0.2 * n) for n in np.bincount(labels[train]))


def test_early_stopping_watches_an_inner_split_of_the_fold(tmp_path, digits):
    recipe = kerascnn.training.get_recipe("quick", early_stopping=1)
    result = kerascnn.tune(tiny, digits, space=SPACE, recipe=recipe, folds=2, max_trials=1,
                           epochs=2, out=tmp_path, refit=False, verbose=0)
    labels = digits.training_labels()
    for j, (train, _) in enumerate(StratifiedKFold(2, shuffle=True, random_state=0).split(
            np.zeros(len(labels)), labels)):
        inner = sum(round(0.1 * n) for n in np.bincount(labels[train]))
        assert result.trials[0]["folds"][j]["train_examples"] == len(train) - inner
        header = (tmp_path / "trials" / "0" / f"fold-{j}" / "history.csv").read_text().split()[0]
        assert "val_loss" in header.split(",")


def test_a_clearly_worse_trial_is_pruned_after_its_first_fold(tmp_path, digits):
    space = {"units": 16, "learning_rate": [1e-2, 1e-6], "batch_size": [64]}
    result = kerascnn.tune(tiny, digits, space=space, tuner="grid", folds=3, max_trials=2,
                           epochs=1, prune=0.2, out=tmp_path, refit=False, verbose=0)
    by_rate = {t["hyperparameters"]["learning_rate"]: t for t in result.trials}
    good, bad = by_rate[1e-2], by_rate[1e-6]
    assert good["status"] == "completed" and len(good["fold_scores"]) == 3
    assert bad["status"] == "pruned" and len(bad["fold_scores"]) == 1
    assert bad["fold_scores"][0] < good["fold_scores"][0] - 0.2  # the rule, by hand
    # scikit-learn keeps every candidate: the pruned one with a NaN mean, ranked last.
    cv = result.cv_results
    assert cv["trial_id"] == [good["trial_id"], bad["trial_id"]]
    assert cv["status"] == ["completed", "pruned"] and cv["rank_test_score"] == [1, 2]
    assert np.isnan(cv["mean_test_score"][1]) and np.isnan(cv["split1_test_score"][1])
    assert cv["split0_test_score"][1] == bad["fold_scores"][0]
    assert result.best_hyperparameters["learning_rate"] == 1e-2
