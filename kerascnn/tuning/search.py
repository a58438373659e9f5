"""`tune`: a hyperparameter search scored by k-fold cross-validation, then a refit."""

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import tempfile
import time
from typing import NamedTuple

import keras
import numpy as np

from kerascnn.errors import InputError
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
    default_objective,
    fold_indices,
    main_outputs,
    make_oracle,
)
from kerascnn.tuning.space import check_space, hyperparameters, split_values
from kerascnn.tuning.study import check_settings

PROJECT = "keras_tuner"  # KerasTuner's own project folder inside the search folder


@dataclasses.dataclass
class TuneResult:
    """What `tune` returns.

    Attributes:
        best_hyperparameters: the best trial's values (KerasTuner's "tuner/..." left out).
        trials: one record per trial (in trial order): trial_id, hyperparameters, fold_scores,
            score (mean), std, status ("completed", "pruned" or "failed", with its "error"),
            seconds, tuner_id (the process that ran it), and per fold its score, epochs,
            best epoch, seconds (fitting) and score_seconds. Failed trials have score None.
        best_model: the refit model (None without refit, or in a worker).
        test_metrics: the refit model's test metrics (empty without a test split or refit).
        cv_results: the trials in scikit-learn's `cv_results_` layout (plain lists).
        refit_epochs: epochs of the refit: the mean best epoch over the best trial's folds
            when they early-stopped or watched a plateau, its Hyperband budget, else the
            folds' epochs (0 without refit).
        out: the search folder, or None when it was temporary.
        nested: with `nested=K`, the outer folds' test scores, their mean and std; else None.
        best_index: the best trial's row in `cv_results` (scikit-learn's `best_index_`), or
            None when no trial completed.
        best_score: its mean score, in the objective's own sign (`results.json`'s).
        refit_time: seconds the refit trained and was tested (scikit-learn's
            `refit_time_`), or None without a refit.
        refit: what the refit was (`results.json`'s "refit"): the trial, its examples and
            epochs, and how it differs from the folds' training ("differences").
    """

    best_hyperparameters: dict
    trials: list
    best_model: keras.Model
    test_metrics: dict
    cv_results: dict
    refit_epochs: int
    out: str
    nested: dict = None
    best_index: int = None
    best_score: float = None
    refit_time: float = None
    refit: dict = None


class _Search:
    """What every fold of every trial shares: data, folds, recipe, folder, progress."""

    def __init__(self, *, model_name, build, data, folds, recipe, epochs, inner_split, seed,
                 objective, folder, max_trials, verbose, prune=None, error_score=np.nan):
        self.model_name, self.build, self.data, self.folds = model_name, build, data, folds
        self.recipe, self.epochs, self.inner_split, self.seed = recipe, epochs, inner_split, seed
        self.objective, self.folder, self.max_trials, self.verbose = objective, folder, max_trials, verbose
        self.prune, self.error_score = prune, error_score
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
        """Prints a fold's score under the trial id and fold number of the search folder
        (trials/<id>/fold-<j>, results.json, cv_results' split<j>): both count from 0."""
        if self.verbose:
            scores = [r["score"] for r in records]
            print(f"trial {trial_id} fold {fold}: {self.objective} {scores[-1]:.4f}, running "
                  f"mean {np.mean(scores):.4f} ({len(scores)} of {len(self.folds)} folds)",
                  flush=True)

    def failed(self, trial_id, error):
        if self.verbose:
            print(f"trial {trial_id} failed, the search goes on: {error}", flush=True)

    def pruned(self, scores):
        """Whether a trial with these first fold scores is clearly worse than the best one."""
        if self.prune is None or len(scores) >= len(self.folds):
            return False
        done = [t for t in trial_records(self.folder) if t["status"] == "completed"]
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
    error_score=np.nan,
    verbose=1,
):
    """Searches hyperparameters with a KerasTuner Oracle, scoring each trial by cross-validation.

    Each trial trains one model per fold with `kerascnn.train` on the fold's training part
    (normalisation statistics, early stopping and best epoch from that part only, through an
    inner validation split when the recipe early-stops or uses a plateau schedule) and scores
    it on the fold's held-out part; the trial's score is the mean, its spread the standard
    deviation. A trial whose fold raises is recorded as failed (with its error; NaN in
    `cv_results`, ranked last) and the search goes on, unless `error_score="raise"`. The test
    split is never read by the search; the refit (best hyperparameters on all training data,
    without early stopping, for the mean best epoch of its folds, its schedule spanning
    those epochs) is evaluated on it once. Trials and folds are numbered from 0 everywhere:
    progress lines, trials/<id>/fold-<j>, results.json, cv_results, scores.png.
    Rerunning with the same `out` resumes: finished trials and folds are kept, an unfinished
    fold continues from its last epoch; a larger `max_trials` extends a finished search, and
    a new best trial replaces the old refit. Under KerasTuner's chief/worker environment variables
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
            folds.json, scores.png, trials/, refit/ and refit.json, what refit/ holds); None:
            a temporary folder, removed.
        seed: seeds the folds, the Oracle, every training run and the refit.
        refit: retrain the best hyperparameters on all training data and test them.
        groups: group labels aligned with `data.training_labels()`: no group is split
            between a fold's parts (an int `folds` becomes `StratifiedGroupKFold`, or
            `GroupKFold` for regression; nested outer folds too).
        nested: None or 0 (off), or K >= 2: estimate the whole procedure by nested
            cross-validation instead (K outer folds, stratified for classes, each searched and
            refit in `out/nested/outer-<i>`, tested on its outer fold by accuracy, or for
            regression by the objective); the result's `nested` holds it.
        prune: None, or a margin in objective units: a trial stops after fold j (before its
            last) when its running mean over folds 1..j is worse than the best completed
            trial's mean over the same folds by more than the margin; it is kept as
            "pruned" (KerasTuner is told its running mean); `cv_results` keeps it with a NaN
            mean, ranked last. Must be >= 0.
        data_dir: where offline copies of named data sets lie.
        error_score: what a trial whose fold raises (a diverged loss, a builder refusing a
            drawn option, out of memory) becomes: nan (scikit-learn's `error_score=np.nan`,
            the default) records it as failed and goes on; "raise" stops the search.
        verbose: print progress and the ranked table (0: silent).

    Returns:
        A TuneResult.

    Raises:
        ValueError: an unknown tuner, objective, model or hyperparameter; an objective of the
            other task; an empty or inverted range; k larger than the smallest class; a
            folder holding another search. StudyError (a ValueError): a setting out of range
            (seed, nested, prune, error_score, max_trials); SpaceError: a value of the space
            that the recipe, the augmentation parser or the builder refuses, or a loss the
            objective cannot score; all before any training or folder. SearchError: no
            trial completed (every one failed).
    """
    from kerascnn.data import Data, load

    nested = check_settings(tuner=tuner, max_trials=max_trials, seed=seed, nested=nested,
                            prune=prune, error_score=error_score)
    model_name, build = _check_model(model)
    base = get_recipe(recipe, epochs=epochs)
    if isinstance(data, Data):
        data.check_task(task)
    task = task or (data.task if isinstance(data, Data) else base.task)
    base = get_recipe(base, task=task)
    objective = objective or default_objective(task, base.loss)
    check_objective(objective, task)
    hp_space = hyperparameters(space, model_name, task)
    check_space(hp_space, model_name, base, objective)
    if not isinstance(data, Data):
        data = load(data, data_dir=data_dir, seed=seed, task=task)
    splits = fold_indices(data, folds, seed=seed, groups=groups,
                          validation_split=base.validation_split)
    inner_split = base.validation_split if (base.early_stopping or base.schedule == "plateau") else None
    if nested is not None:
        return _nested(model, data, nested, space=space, tuner=tuner, folds=folds,
                       max_trials=max_trials, epochs=epochs, recipe=recipe, objective=objective,
                       out=out, seed=seed, verbose=verbose, prune=prune, groups=groups,
                       error_score=error_score)

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
                             verbose=verbose, prune=prune, error_score=error_score)
            search.writes_results = not worker
            oracle = make_oracle(tuner, objective, max_trials=max_trials, max_epochs=base.epochs,
                                 seed=seed)
            oracle.update_space(hp_space)
            folder.claim(PROJECT)
            cv_tuner = CrossValidationTuner(oracle, search, hypermodel=build,
                                            directory=folder.path, project_name=PROJECT)
            cv_tuner.search(verbose=0)
            if worker:
                trials = trial_records(folder)
                return TuneResult({}, trials, None, {}, {}, 0, None if temporary else folder.path)
            records = write_results(folder, objective)
            if verbose:
                print(results_module.ranked_table(records.trials, OBJECTIVES[objective].direction,
                                                  objective))
            _check_some_completed(records.trials, folder.path)
            best = records.best
            best_model, test_metrics, refit_record = None, {}, None
            if refit:
                best_model, test_metrics, refit_record = _refit(
                    search, cv_tuner.oracle.get_space(), best, data, folder)
                records = write_results(folder, objective)
            return TuneResult(
                best_hyperparameters=results_module.public_values(best["hyperparameters"]),
                trials=records.trials, best_model=best_model, test_metrics=test_metrics,
                cv_results=records.cv_results,
                refit_epochs=refit_record["epochs"] if refit_record else 0,
                out=None if temporary else folder.path, best_index=records.best_index,
                best_score=best["score"],
                refit_time=refit_record["seconds"] if refit_record else None,
                refit=refit_record,
            )
    finally:
        if temporary:
            shutil.rmtree(path, ignore_errors=True)


class SearchError(InputError):
    """A search that cannot give a result: every trial failed (each with its error)."""


def _check_some_completed(trials, path):
    """Raises SearchError, in one line, when no trial completed (nothing to refit or rank)."""
    if any(t["status"] == "completed" for t in trials):
        return
    failed = [t for t in trials if t["status"] == "failed"]
    first = f"; the first, trial {failed[0]['trial_id']}: {failed[0]['error']}" if failed else ""
    raise SearchError(
        f"no trial completed: {len(failed)} of {len(trials)} failed{first}. Each trial's error is "
        f"in {path}/results.json; fix the space or the data, or pass error_score='raise' to "
        "stop at the first failure with its traceback.")


class SearchRecords(NamedTuple):
    """What `write_results` wrote: every trial, the cv_results, the best trial and its row."""

    trials: list
    cv_results: dict
    best: dict
    best_index: int


def write_results(folder, objective, plot=True):
    """Writes results.json, cv_results.csv, best_hyperparameters.json and scores.png.

    The files agree: one best trial, named in all of them; a refit made for another trial
    (the search was extended and the best changed) is removed, refit.json with it.

    Args:
        folder: the search's RunFolder.
        objective: the objective's name.
        plot: also draw scores.png (at the end of a search; trials skip it, it is slow).

    Returns:
        SearchRecords(trials, cv_results, best trial record or None, its row or None).
    """
    direction = OBJECTIVES[objective].direction
    trials = trial_records(folder)
    cv = results_module.cv_results(trials, direction)
    pick = max if direction == "max" else min
    completed = [t for t in trials if t["status"] == "completed"]
    best = pick(completed, key=lambda t: t["score"]) if completed else None
    best_index = trials.index(best) if best else None
    refit = _read_refit(folder)
    stale = refit is None and folder.owns("refit")  # a refit/ of an older kerascnn: unknown
    if stale or (refit and (best is None or refit["trial_id"] != best["trial_id"])):
        _remove_refit(folder)
        refit = None
    folder.write_json("results.json", {
        "objective": objective, "direction": direction,
        # what cv_results.csv's test scores are: scikit-learn's scorer (errors negated)
        "cv_results_scorer": OBJECTIVES[objective].sklearn_scorer,
        "best_index": best_index, "best_trial_id": best["trial_id"] if best else None,
        "best_score": best["score"] if best else None,
        "refit": refit if refit and refit.get("status") == "done" else None,
        "trials": trials})
    folder.write_text("cv_results.csv", results_module.cv_results_csv(cv))
    if best is not None:
        folder.write_json("best_hyperparameters.json", {
            "trial_id": best["trial_id"], objective: best["score"], "std": best["std"],
            "hyperparameters": results_module.public_values(best["hyperparameters"]),
        })
    if best is not None and plot:
        folder.claim("scores.png")
        results_module.write_plot(folder.path_of("scores.png"), trials, objective)
    return SearchRecords(trials, cv, best, best_index)


def trial_records(folder):
    """The trial records (trials/<id>/trial.json) of a search folder, in trial order."""
    records = []
    for path in glob.glob(os.path.join(folder.path_of("trials"), "*", TRIAL_RECORD)):
        with open(path) as f:
            records.append(json.load(f))
    return sorted(records, key=results_module.trial_order)


REFIT_RECORD = "refit.json"  # what refit/ holds: the trial, its epochs; "done" when tested
# Schedules that span the run's epochs (their shape depends on its length).
LENGTH_SCHEDULES = ("step", "cosine", "one_cycle")


def _read_refit(folder):
    if not folder.owns(REFIT_RECORD) or not os.path.isfile(folder.path_of(REFIT_RECORD)):
        return None
    with open(folder.path_of(REFIT_RECORD)) as f:
        return json.load(f)


def _remove_refit(folder):
    """Removes refit/ and its record: they describe another refit than the one wanted."""
    for name in ("refit", REFIT_RECORD):
        if folder.owns(name):
            folder.remove(name)


def _refit_plan(search, best, data):
    """What the refit will be: the trial, its examples and epochs, and how it differs from
    the training of the folds (recorded in refit.json and results.json)."""
    values = best["hyperparameters"]
    budget = values.get("tuner/epochs")
    if budget:
        epochs, source = int(budget), "the trial's Hyperband budget"
    elif search.inner_split is not None:
        epochs = max(1, int(round(np.mean([f["best_epoch"] for f in best["folds"]]))))
        source = "the mean best epoch (lowest inner validation loss) of the trial's folds"
    else:
        epochs, source = int(search.epochs), "the folds' epochs"
    recipe_values, _ = split_values(values, search.model_name)
    recipe = search.recipe.replace(**recipe_values)
    differences = []
    if recipe.schedule == "plateau":
        differences.append("the plateau schedule watches the training loss: the refit holds "
                           "out no validation part")
    if recipe.schedule in LENGTH_SCHEDULES and epochs != search.epochs:
        differences.append(f"the {recipe.schedule} schedule spans the refit's {epochs} epochs; "
                           f"each fold's spanned {search.epochs}")
    if recipe.early_stopping:
        differences.append("no early stopping: the refit trains for the chosen epochs")
    return {
        "trial_id": best["trial_id"],
        "hyperparameters": results_module.public_values(values),
        "train_examples": int(len(data.training_labels())),
        "epochs": epochs,
        "epochs_from": source,
        "early_stopping": False,
        "schedule": recipe.schedule,
        "differences": differences,
    }


def _refit(search, space, best, data, folder):
    """Trains the best hyperparameters on all training data and tests the model once.

    All training data (no validation part held out), no early stopping, the chosen epochs
    (`_refit_plan`) with the schedule over them. refit.json records the plan before the
    training (a killed refit resumes; a refit of another trial or plan is removed first)
    and its time and test metrics after. The refit is evaluated by `kerascnn.evaluate`
    (metrics.json and the report in refit/evaluation/): the one read of the test split.

    Returns:
        (model, test metrics, the refit record).
    """
    from kerascnn.evaluation import evaluate

    plan = _refit_plan(search, best, data)
    saved = _read_refit(folder)
    if saved is None or {k: saved.get(k) for k in plan} != plan:
        _remove_refit(folder)
    folder.write_json(REFIT_RECORD, {**plan, "status": "training"})
    start = time.perf_counter()
    values = best["hyperparameters"]
    recipe_values, options = split_values(values, search.model_name)
    recipe_values["early_stopping"] = 0
    everything = np.arange(len(data.training_labels()))
    refit_data, _ = data.cv_fold(everything, [], validation_split=None, seed=search.seed)
    hp = space.copy()
    hp.values = dict(values)
    if search.build is not None:
        keras.utils.set_random_seed(search.seed)
        model = search.build(hp)
    else:
        model = search.model_name
    folder.claim("refit")
    result = train(model, refit_data, recipe=search.recipe, epochs=plan["epochs"],
                   out=folder.path_of("refit"), seed=search.seed, model_options=options or None,
                   verbose=0, **recipe_values)
    metrics = {}
    if data.size("test"):
        history = result.history if "val_loss" in result.history else None
        report = evaluate(result.model, data, history=history,
                          out=folder.path_of("refit/evaluation"))
        metrics = report.metrics
        if search.verbose:
            print(f"refit trial {best['trial_id']} on {refit_data.size('train')} examples for "
                  f"{plan['epochs']} epochs: test {describe_test_metrics(metrics)}")
    seconds = round(time.perf_counter() - start, 3)
    if saved and saved.get("status") == "done" and {k: saved.get(k) for k in plan} == plan:
        seconds = saved["seconds"]  # refit before: this call only evaluated it again
    record = {**plan, "status": "done", "seconds": seconds, "test_metrics": metrics}
    folder.write_json(REFIT_RECORD, record)
    return result.model, metrics, record


def describe_test_metrics(metrics):
    """A refit's test metrics in a few words: accuracy for a classifier, R², MAE and RMSE for
    a regressor (`kerascnn.evaluate`'s keys)."""
    if "r2" in metrics:
        return f"R² {metrics['r2']:.4f}, MAE {metrics['mae']:.4f}, RMSE {metrics['rmse']:.4f}"
    return f"accuracy {metrics['accuracy']:.4f}"


def _nested(model, data, k, *, out, seed, verbose, groups=None, **search):
    """Nested cross-validation: per outer fold, a search and refit on the rest, tested on it.

    Each outer search is a search folder of its own, `out/nested/outer-<i>`. A classifier is
    scored by accuracy on each outer fold, a regressor by the search's objective. With
    `groups`, the outer folds keep groups whole and each inner search gets its part's groups.
    """
    regression = data.task == "regression"
    metric = search["objective"].removeprefix("val_") if regression else "accuracy"
    scores = []
    with contextlib.ExitStack() as stack:
        parent = stack.enter_context(RunFolder(out, "search")) if out else None
        outer = fold_indices(data, k, seed=seed, groups=groups)
        for i, (train_part, test_part) in enumerate(outer):
            fit, held = data.cv_fold(train_part, test_part)
            inner_out = parent.claim(f"nested/outer-{i}") if parent else None
            inner_groups = None if groups is None else np.asarray(groups)[train_part]
            result = tune(model, fit, out=inner_out, seed=seed, verbose=verbose, refit=True,
                          groups=inner_groups, **search)
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
    raise InputError(
        f"model must be a registry name or a callable build(hp) -> keras.Model; got {model!r}."
    )


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
