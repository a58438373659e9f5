"""`tune`: a hyperparameter search scored by k-fold cross-validation, then a refit."""

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import tempfile

import keras
import numpy as np

from kerascnn.models.registry import get_model_entry
from kerascnn.run_folder import RunFolder, RunFolderError
from kerascnn.training import train
from kerascnn.training.recipes import get_recipe
from kerascnn.tuning import results as results_module
from kerascnn.tuning.cross_validation import (
    OBJECTIVES,
    TRIAL_RECORD,
    CrossValidationTuner,
    check_objective,
    check_tuner,
    default_objective,
    fold_indices,
    main_outputs,
    make_oracle,
)
from kerascnn.tuning.space import RECIPE_FIELDS, hyperparameters, split_values

PROJECT = "keras_tuner"  # KerasTuner's own project folder inside the search folder


@dataclasses.dataclass
class TuneResult:
    """What `tune` returns.

    Attributes:
        best_hyperparameters: the best trial's values (KerasTuner's "tuner/..." left out).
        trials: one record per completed trial: trial_id, hyperparameters, fold_scores,
            score (mean), std, status, seconds, tuner_id (the process that ran it), and per
            fold its score, epochs, best epoch and seconds.
        best_model: the refit model (None without refit, or in a worker).
        test_metrics: the refit model's test metrics (empty without a test split or refit).
        cv_results: the trials in scikit-learn's `cv_results_` layout (plain lists).
        refit_epochs: epochs of the refit (the mean best epoch over the best trial's folds).
        out: the search folder, or None when it was temporary.
        nested: with `nested=K`, the outer folds' test scores, their mean and std; else None.
    """

    best_hyperparameters: dict
    trials: list
    best_model: keras.Model
    test_metrics: dict
    cv_results: dict
    refit_epochs: int
    out: str
    nested: dict = None


class _Search:
    """What every fold of every trial shares: data, folds, recipe, folder, progress."""

    def __init__(self, *, model_name, build, data, folds, recipe, epochs, inner_split, seed,
                 objective, folder, max_trials, verbose, prune=None):
        self.model_name, self.build, self.data, self.folds = model_name, build, data, folds
        self.recipe, self.epochs, self.inner_split, self.seed = recipe, epochs, inner_split, seed
        self.objective, self.folder, self.max_trials, self.verbose = objective, folder, max_trials, verbose
        self.prune = prune
        self.writes_results = True

    def train_fold(self, hp, fit_data, run_dir, recipe_values, options, callbacks):
        """Trains one fold with `kerascnn.train` (resuming the run in `run_dir`)."""
        if self.build is not None:
            keras.utils.set_random_seed(self.seed)
            model = self.build(hp)
        else:
            model = self.model_name
        return train(model, fit_data, recipe=self.recipe, epochs=self.epochs, out=run_dir,
                     seed=self.seed, model_options=options or None, verbose=0,
                     callbacks=callbacks, **recipe_values)

    def progress(self, trial_id, fold, records):
        if self.verbose:
            scores = [r["score"] for r in records]
            total = f"/{self.max_trials}" if self.max_trials else ""
            print(f"trial {int(trial_id) + 1}{total} fold {fold + 1}/{len(self.folds)}: "
                  f"{self.objective} {scores[-1]:.4f}, running mean {np.mean(scores):.4f}",
                  flush=True)

    def pruned(self, scores):
        """Whether a trial with these first fold scores is clearly worse than the best one."""
        if self.prune is None or len(scores) >= len(self.folds):
            return False
        done = [t for t in _trial_records(self.folder) if t["status"] == "completed"]
        if not done:
            return False
        sign = 1 if OBJECTIVES[self.objective].direction == "max" else -1
        best = max(sign * np.mean(t["fold_scores"][:len(scores)]) for t in done)
        return sign * np.mean(scores) < best - self.prune

    def trial_finished(self):
        if self.writes_results:
            write_results(self.folder, self.objective, plot=False)


def tune(
    model,
    data,
    *,
    space=None,
    tuner="random",
    folds=5,
    max_trials=10,
    epochs=None,
    recipe="quick",
    objective=None,
    task=None,
    out=None,
    seed=0,
    refit=True,
    groups=None,
    nested=None,
    prune=None,
    data_dir=None,
    verbose=1,
):
    """Searches hyperparameters with a KerasTuner Oracle, scoring each trial by cross-validation.

    Each trial trains one model per fold with `kerascnn.train` on the fold's training part
    (normalisation statistics, early stopping and best epoch from that part only, through an
    inner validation split when the recipe early-stops or uses a plateau schedule) and scores
    it on the fold's held-out part; the trial's score is the mean, its spread the standard
    deviation. The test split is never read by the search; the refit (best hyperparameters on
    all training data, for the mean best epoch of its folds) is evaluated on it once.
    Rerunning with the same `out` resumes: finished trials and folds are kept, an unfinished
    fold continues from its last epoch. Under KerasTuner's chief/worker environment variables
    (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) the chief serves the
    Oracle and refits, the workers run trials in the same `out`.

    Args:
        model: a registry name, or a callable `build(hp) -> keras.Model` (kerascnn adds the
            Preprocessing layer, adapted on each fold's training part).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data`.
        space: a dict of ranges / choices / fixed values (see `kerascnn.tuning.space`), a
            `keras_tuner.HyperParameters`, or None for the model family's default space.
        tuner: "random", "grid", "bayesian" or "hyperband" (KerasTuner's Oracles).
        folds: k >= 2 (stratified k-fold, `StratifiedKFold(k, shuffle=True,
            random_state=seed)`; for regression `KFold(k, shuffle=True, random_state=seed)`),
            1 (one hold-out of the recipe's validation_split, stratified for classes: the
            cheap mode), or a scikit-learn splitter.
        max_trials: the number of trials (Hyperband: its brackets decide).
        epochs: epochs per fold (Hyperband: the most epochs of a trial); default the recipe's.
        recipe: the base recipe; the space overrides its fields. Its task is set to `task`.
        objective: what the held-out folds score, by scikit-learn. Classification:
            "val_accuracy" (maximised, the default) or "val_loss" (log-loss, minimised).
            Regression: "val_mse", "val_mae" (minimised) or "val_r2" (maximised); the
            default is the recipe's loss ("mse" unless it says "mae"). KerasTuner's Oracle
            gets the objective's own value and direction; `cv_results` negates minimised
            ones, as scikit-learn's "neg_mean_squared_error" scorer does.
        task: "classification" or "regression" (float targets: folds are shuffled, not
            stratified, and the models end in a linear Dense per target); None takes the
            task of `data` when it is a `kerascnn.data.Data`, else the recipe's.
        out: the search folder (results.json, cv_results.csv, best_hyperparameters.json,
            folds.json, scores.png, trials/, refit/); None: a temporary folder, removed.
        seed: seeds the folds, the Oracle, every training run and the refit.
        refit: retrain the best hyperparameters on all training data and test them.
        groups: group labels for a group splitter, aligned with `data.training_labels()`.
        nested: None, or K >= 2: estimate the whole procedure by nested cross-validation
            instead (K outer folds, stratified for classes, each searched and refit in
            `out/nested/outer-<i>`, tested on its outer fold by accuracy, or for regression
            by the objective); the result's `nested` holds it.
        prune: None, or a margin in objective units: a trial stops after fold j (before its
            last) when its running mean over folds 1..j is worse than the best completed
            trial's mean over the same folds by more than the margin; it is kept as
            "pruned" (KerasTuner is told its running mean) and left out of `cv_results`.
        data_dir: where offline copies of named data sets lie.
        verbose: print progress and the ranked table (0: silent).

    Returns:
        A TuneResult.

    Raises:
        ValueError: an unknown tuner, objective, model or hyperparameter; an objective of the
            other task; an empty or inverted range; k larger than the smallest class; a
            folder holding another search.
    """
    from kerascnn.data import Data, load

    check_tuner(tuner)
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"max_trials must be a positive integer; got {max_trials!r}.")
    model_name, build = _check_model(model)
    base = get_recipe(recipe, epochs=epochs)
    if isinstance(data, Data) and task not in (None, data.task):
        raise ValueError(f"task={task!r}, but {data.name} was loaded for {data.task}; pass "
                         f"task={data.task!r}, or load the data with task={task!r}.")
    task = task or (data.task if isinstance(data, Data) else base.task)
    base = get_recipe(base, task=task)
    objective = objective or default_objective(task, base.loss)
    check_objective(objective, task)
    hp_space = hyperparameters(space, model_name, task)
    _check_recipe_values(hp_space, base)
    if not isinstance(data, Data):
        data = load(data, data_dir=data_dir, seed=seed, task=task)
    splits = fold_indices(data, folds, seed=seed, groups=groups,
                          validation_split=base.validation_split)
    inner_split = base.validation_split if (base.early_stopping or base.schedule == "plateau") else None
    if nested is not None:
        return _nested(model, data, nested, space=space, tuner=tuner, folds=folds,
                       max_trials=max_trials, epochs=epochs, recipe=recipe, objective=objective,
                       out=out, seed=seed, verbose=verbose, prune=prune)

    temporary = out is None
    path = tempfile.mkdtemp(prefix="kerascnn-tune-") if temporary else out
    worker = _is_worker()
    try:
        with RunFolder(path, "search", exclusive=not worker) as folder:
            description = _describe(model, model_name, data, folds, groups, base, hp_space, tuner,
                                    objective, seed)
            _claim_search(folder, description, splits, worker)
            search = _Search(model_name=model_name, build=build, data=data, folds=splits,
                             recipe=base, epochs=base.epochs, inner_split=inner_split, seed=seed,
                             objective=objective, folder=folder,
                             max_trials=None if tuner == "hyperband" else max_trials,
                             verbose=verbose, prune=prune)
            search.writes_results = not worker
            oracle = make_oracle(tuner, objective, max_trials=max_trials, max_epochs=base.epochs,
                                 seed=seed)
            oracle.update_space(hp_space)
            folder.claim(PROJECT)
            cv_tuner = CrossValidationTuner(oracle, search, hypermodel=build,
                                            directory=folder.path, project_name=PROJECT)
            cv_tuner.search(verbose=0)
            if worker:
                trials = _trial_records(folder)
                return TuneResult({}, trials, None, {}, {}, 0, None if temporary else folder.path)
            trials, cv, best = write_results(folder, objective)
            if verbose:
                print(results_module.ranked_table(trials, OBJECTIVES[objective].direction,
                                                  objective))
            best_model, test_metrics, refit_epochs = None, {}, 0
            if refit and best is not None:
                best_model, test_metrics, refit_epochs = _refit(
                    search, cv_tuner.oracle.get_space(), best, data, folder)
            return TuneResult(
                best_hyperparameters=results_module.public_values(best["hyperparameters"]) if best else {},
                trials=trials, best_model=best_model, test_metrics=test_metrics, cv_results=cv,
                refit_epochs=refit_epochs, out=None if temporary else folder.path,
            )
    finally:
        if temporary:
            shutil.rmtree(path, ignore_errors=True)


def write_results(folder, objective, plot=True):
    """Writes results.json, cv_results.csv, best_hyperparameters.json and scores.png.

    Args:
        folder: the search's RunFolder.
        objective: the objective's name.
        plot: also draw scores.png (at the end of a search; trials skip it, it is slow).

    Returns:
        (trials, cv_results, best trial record or None).
    """
    direction = OBJECTIVES[objective].direction
    trials = _trial_records(folder)
    cv = results_module.cv_results(trials, direction)
    pick = max if direction == "max" else min
    completed = [t for t in trials if t["status"] == "completed"]
    best = pick(completed, key=lambda t: t["score"]) if completed else None
    folder.write_json("results.json", {
        "objective": objective, "direction": direction,
        # what cv_results.csv's test scores are: scikit-learn's scorer (errors negated)
        "cv_results_scorer": OBJECTIVES[objective].sklearn_scorer, "trials": trials})
    folder.write_text("cv_results.csv", results_module.cv_results_csv(cv))
    if best is not None:
        folder.write_json("best_hyperparameters.json", {
            "trial_id": best["trial_id"], objective: best["score"], "std": best["std"],
            "hyperparameters": results_module.public_values(best["hyperparameters"]),
        })
    if best is not None and plot:
        folder.claim("scores.png")
        results_module.write_plot(folder.path_of("scores.png"), trials, objective)
    return trials, cv, best


def _trial_records(folder):
    records = []
    for path in sorted(glob.glob(os.path.join(folder.path_of("trials"), "*", TRIAL_RECORD))):
        with open(path) as f:
            records.append(json.load(f))
    return records


def _refit(search, space, best, data, folder):
    """Trains the best hyperparameters on all training data and tests the model once.

    The refit trains without the test split and is evaluated by `kerascnn.evaluate` after
    (metrics.json and the report in refit/evaluation/): the one read of the test split.
    """
    from kerascnn.evaluation import evaluate

    values = best["hyperparameters"]
    budget = values.get("tuner/epochs")
    epochs = budget or max(1, int(round(np.mean([f["best_epoch"] for f in best["folds"]]))))
    recipe_values, options = split_values(values, search.model_name)
    everything = np.arange(len(data.training_labels()))
    refit_data, _ = data.cv_fold(everything, [], validation_split=search.inner_split,
                                 seed=search.seed)
    hp = space.copy()
    hp.values = dict(values)
    if search.build is not None:
        keras.utils.set_random_seed(search.seed)
        model = search.build(hp)
    else:
        model = search.model_name
    folder.claim("refit")
    result = train(model, refit_data, recipe=search.recipe, epochs=epochs,
                   out=folder.path_of("refit"), seed=search.seed, model_options=options or None,
                   verbose=0, **recipe_values)
    metrics = {}
    if data.size("test"):
        history = result.history if "val_loss" in result.history else None
        report = evaluate(result.model, data, history=history,
                          out=folder.path_of("refit/evaluation"))
        metrics = report.metrics
        if search.verbose:
            print(f"refit on {refit_data.size('train')} examples for {epochs} epochs: test "
                  f"{describe_test_metrics(metrics)}")
    return result.model, metrics, epochs


def describe_test_metrics(metrics):
    """A refit's test metrics in a few words: accuracy for a classifier, R², MAE and RMSE for
    a regressor (`kerascnn.evaluate`'s keys)."""
    if "r2" in metrics:
        return f"R² {metrics['r2']:.4f}, MAE {metrics['mae']:.4f}, RMSE {metrics['rmse']:.4f}"
    return f"accuracy {metrics['accuracy']:.4f}"


def _nested(model, data, k, *, out, seed, verbose, **search):
    """Nested cross-validation: per outer fold, a search and refit on the rest, tested on it.

    Each outer search is a search folder of its own, `out/nested/outer-<i>`. A classifier is
    scored by accuracy on each outer fold, a regressor by the search's objective.
    """
    regression = data.task == "regression"
    metric = search["objective"].removeprefix("val_") if regression else "accuracy"
    scores = []
    with contextlib.ExitStack() as stack:
        parent = stack.enter_context(RunFolder(out, "search")) if out else None
        for i, (train_part, test_part) in enumerate(fold_indices(data, k, seed=seed)):
            fit, held = data.cv_fold(train_part, test_part)
            inner_out = parent.claim(f"nested/outer-{i}") if parent else None
            result = tune(model, fit, out=inner_out, seed=seed, verbose=verbose, refit=True,
                          **search)
            x, y = held.arrays("validation")
            outputs = main_outputs(result.best_model, x)
            scores.append(float(OBJECTIVES[search["objective"]].score(y, outputs, 0)) if regression
                          else float(np.mean(outputs.argmax(axis=1) == y)))
        summary = {f"outer_test_{metric}": scores, "mean": float(np.mean(scores)),
                   "std": float(np.std(scores))}
        if parent:
            parent.write_json("nested.json", summary)
    return TuneResult({}, [], None, {}, {}, 0, out, nested=summary)


def _check_model(model):
    if isinstance(model, str):
        get_model_entry(model)
        return model, None
    if callable(model) and not isinstance(model, keras.Model):
        return None, model
    raise ValueError(
        f"model must be a registry name or a callable build(hp) -> keras.Model; got {model!r}."
    )


def _check_recipe_values(hp_space, recipe):
    """Builds the recipe with each extreme value of each recipe field, before any training."""
    for hp in hp_space.space:
        if hp.name not in RECIPE_FIELDS or hp.name == "augment":
            continue
        config = hp.get_config()
        if "values" in config:
            values = config["values"]
        elif "value" in config:
            values = [config["value"]]
        else:
            values = [config["min_value"], config["max_value"]]
        for value in values:
            try:
                recipe.replace(**{hp.name: value})
            except (TypeError, ValueError) as error:
                raise ValueError(f"hyperparameter {hp.name!r}: {error}") from None


def _is_worker():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    return bool(os.environ.get("KERASTUNER_ORACLE_IP")) and tuner_id not in (None, "chief")


def _describe(model, model_name, data, folds, groups, recipe, hp_space, tuner, objective, seed):
    """What must match for a search folder to be resumed (max_trials may grow)."""
    folds_text = folds if isinstance(folds, int) else repr(folds)
    return {
        "model": model_name or getattr(model, "__qualname__", repr(model)),
        "data": {"name": data.name, "sha256": data.sha256,
                 "training_examples": int(len(data.training_labels()))},
        "folds": folds_text,
        "groups": None if groups is None else int(len(np.unique(groups))),
        "recipe": recipe.to_dict(),
        "space": hp_space.get_config()["space"],
        "tuner": tuner,
        "objective": objective,
        "seed": seed,
    }


def _claim_search(folder, description, splits, worker):
    """Checks (or records) the search this folder holds, and its fold indices."""
    folds_record = {"folds": [{"train": t.tolist(), "held_out": h.tolist()} for t, h in splits]}
    path = folder.path_of("search.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != json.loads(json.dumps(description, default=str)):
            changed = sorted(k for k in description if saved.get(k) != json.loads(
                json.dumps(description[k], default=str)))
            raise RunFolderError(
                f"{folder.path} holds another search (its {', '.join(changed)} differ); use "
                "another out folder, or remove that one to start over."
            )
        with open(folder.path_of("folds.json")) as f:
            if json.load(f) != folds_record:
                raise RunFolderError(f"{folder.path}/folds.json does not match this search's folds.")
    elif not worker:
        folder.write_json("search.json", json.loads(json.dumps(description, default=str)))
        folder.write_json("folds.json", folds_record)
