"""`tune`: a hyperparameter search scored by k-fold cross-validation, then a refit.

KerasTuner's split: its Oracle chooses each trial's values, the `CrossValidationTuner` runs
the trial's folds, and the `Search` owns the rest: the study (settings, data, folds, folder),
the results files, the best trial and its refit.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import keras
import keras_tuner
import numpy as np

from kerascnn.data import Data, load
from kerascnn.errors import InputError
from kerascnn.evaluation import evaluate
from kerascnn.models.registry import get_model_entry
from kerascnn.run_folder import RunFolder, RunFolderError
from kerascnn.training.recipes import get_recipe
from kerascnn.tuning import results as results_module
from kerascnn.tuning.cross_validation import (
    OBJECTIVES,
    CrossValidation,
    CrossValidationTuner,
    Trainer,
    check_objective,
    default_objective,
    fold_indices,
    main_outputs,
    make_oracle,
    trial_records,
)
from kerascnn.tuning.space import (check_space, hyperparameters, shared_validation_split,
                                   split_values)
from kerascnn.tuning.study import StudyError, check_settings

PROJECT = "keras_tuner"  # KerasTuner's own project folder inside the search folder
REFIT_RECORD = "refit.json"  # what refit/ holds: the trial, its epochs; "done" when tested
# Schedules that span the run's epochs (their shape depends on its length).
LENGTH_SCHEDULES = ("step", "cosine", "one_cycle")


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


class SearchError(InputError):
    """A search that cannot give a result: every trial failed (each with its error)."""


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
    train_size=None,
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
        train_size: None (all the training data), or search on this many training examples,
            drawn with `seed` in proportion to the classes (`Data.subset`): a cheaper search
            of a large training split. The refit trains on the same subset; the test split
            is whole.
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
    settings = _Settings.check(model, data, space=space, tuner=tuner, folds=folds,
                               max_trials=max_trials, epochs=epochs, recipe=recipe,
                               objective=objective, task=task, seed=seed, groups=groups,
                               nested=nested, prune=prune, error_score=error_score,
                               train_size=train_size, verbose=verbose)
    if not isinstance(data, Data):
        data = load(data, data_dir=data_dir, seed=seed, task=settings.task)
    if train_size is not None:
        data = data.subset(train_size, seed)
    splits = fold_indices(data, folds, seed=seed, groups=groups,
                          validation_split=settings.validation_split)
    if settings.nested is not None:
        return _nested(model, data, settings.nested, space=space, tuner=tuner, folds=folds,
                       max_trials=max_trials, epochs=epochs, recipe=recipe,
                       objective=settings.objective, out=out, seed=seed, verbose=verbose,
                       prune=prune, groups=groups, error_score=error_score)
    worker = _is_worker()
    with _search_folder(out, worker) as folder:
        search = Search(settings, data, splits, folder, worker=worker, temporary=out is None)
        search.run()
        if worker:
            return search.worker_result()
        records = search.ranked_results()
        if not refit:
            return search.result(records)
        refitted = search.refit(records.best)
        return search.result(search.write_results(), refitted)


@dataclasses.dataclass(frozen=True)
class _Settings:
    """A search's settings, checked before any data is loaded or folder made.

    Attributes:
        model: the registry name or `build(hp)` callable, as given.
        model_name, build: the registry name and None, or None and the callable.
        recipe: the base Recipe, of the search's task.
        validation_split: the held-out fraction of folds=1 and of early stopping, the same
            for every trial (the space's fixed value, else the recipe's).
        task, objective: the task and the objective scored.
        space: the search space (`keras_tuner.HyperParameters`).
        nested: None, or the number of outer folds.
        tuner, folds, max_trials, seed, groups, prune, error_score, train_size, verbose: as
            `tune` takes.
    """

    model: object
    model_name: str | None
    build: Callable | None
    recipe: object
    validation_split: float
    task: str
    objective: str
    space: keras_tuner.HyperParameters
    nested: int | None
    tuner: str
    folds: object
    max_trials: int
    seed: int
    groups: object
    prune: float | None
    error_score: object
    train_size: int | None
    verbose: int

    @classmethod
    def check(cls, model, data, *, space, tuner, folds, max_trials, epochs, recipe, objective,
              task, seed, groups, nested, prune, error_score, train_size, verbose):
        """Checks `tune`'s settings, then the model, task, objective and space, before any work."""
        nested = check_settings(tuner=tuner, max_trials=max_trials, seed=seed, nested=nested,
                                prune=prune, error_score=error_score, train_size=train_size)
        if train_size is not None and groups is not None:
            raise StudyError("train_size and groups cannot be combined: the groups label every "
                             "training example, the subset only some; subset the data and "
                             "its groups yourself, or leave train_size unset.")
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
        return cls(model=model, model_name=model_name, build=build, recipe=base,
                   validation_split=shared_validation_split(hp_space, base), task=task,
                   objective=objective, space=hp_space, nested=nested, tuner=tuner, folds=folds,
                   max_trials=max_trials, seed=seed, groups=groups, prune=prune,
                   error_score=error_score, train_size=train_size, verbose=verbose)


@contextlib.contextmanager
def _search_folder(out, worker):
    """The search's RunFolder, shared with the other processes in a worker: `out`, or a
    temporary folder, removed afterwards."""
    path = tempfile.mkdtemp(prefix="kerascnn-tune-") if out is None else out
    try:
        with RunFolder(path, "search", exclusive=not worker) as folder:
            yield folder
    finally:
        if out is None:
            shutil.rmtree(path, ignore_errors=True)


class SearchRecords(NamedTuple):
    """What `Search.write_results` wrote: every trial, the cv_results, the best trial and
    its row."""

    trials: list
    cv_results: dict
    best: dict
    best_index: int


@dataclasses.dataclass(frozen=True)
class _Refit:
    """What a refit gave: its model, test metrics and record (refit.json); empty without."""

    model: keras.Model = None
    test_metrics: dict = dataclasses.field(default_factory=dict)
    record: dict = None


class Search:
    """One search: the study in its folder, the Oracle's trials, their results and the refit.

    The Oracle chooses each trial's values and the CrossValidationTuner runs its folds (given
    the data, the folds, a Trainer and the folder); the search owns the rest: the folder's
    study (search.json, folds.json), the results files, the best trial and its refit.

    Args:
        settings: the checked `_Settings`.
        data: the training data (a `kerascnn.data.Data`).
        folds: (train, held_out) positions of its training examples, one pair per fold.
        folder: the search's RunFolder, entered.
        worker: this process is a KerasTuner worker (the chief refits and writes results).
        temporary: the folder is removed after the search (the result names no folder).
    """

    def __init__(self, settings, data, folds, folder, *, worker, temporary):
        self.settings = settings
        self.data = data
        self.folds = folds
        self.folder = folder
        self.worker = worker
        self.out = None if temporary else folder.path
        recipe = settings.recipe
        self.trainer = Trainer(model_name=settings.model_name, build=settings.build,
                               recipe=recipe, epochs=recipe.epochs, seed=settings.seed)
        early = recipe.early_stopping or recipe.schedule == "plateau"
        self.inner_split = settings.validation_split if early else None
        self.oracle = None

    def run(self):
        """Claims the folder for this study and has the tuner run the Oracle's trials."""
        settings = self.settings
        self._claim()
        oracle = make_oracle(settings.tuner, settings.objective, max_trials=settings.max_trials,
                             max_epochs=settings.recipe.epochs, seed=settings.seed)
        oracle.update_space(settings.space)
        self.folder.claim(PROJECT)
        cv = CrossValidation(data=self.data, folds=self.folds, trainer=self.trainer,
                             inner_split=self.inner_split, objective=settings.objective,
                             folder=self.folder, error_score=settings.error_score,
                             prune=settings.prune, verbose=settings.verbose)
        tuner = CrossValidationTuner(
            oracle, cv, after_trial=None if self.worker else self._write_trial_results,
            hypermodel=settings.build, directory=self.folder.path, project_name=PROJECT)
        tuner.search(verbose=0)
        self.oracle = tuner.oracle

    def _write_trial_results(self):
        self.write_results(plot=False)

    def ranked_results(self):
        """Writes the results files and prints the ranked table; raises SearchError when no
        trial completed."""
        records = self.write_results()
        objective = self.settings.objective
        if self.settings.verbose:
            print(results_module.ranked_table(records.trials, OBJECTIVES[objective].direction,
                                              objective))
        _check_some_completed(records.trials, self.folder.path)
        return records

    def write_results(self, plot=True):
        """Writes results.json, cv_results.csv, best_hyperparameters.json and scores.png.

        The files agree: one best trial, named in all of them; a refit made for another trial
        (the search was extended and the best changed) is removed, refit.json with it.

        Args:
            plot: also draw scores.png (at the end of a search; trials skip it, it is slow).

        Returns:
            SearchRecords(trials, cv_results, best trial record or None, its row or None).
        """
        folder, objective = self.folder, self.settings.objective
        direction = OBJECTIVES[objective].direction
        trials = trial_records(folder)
        cv = results_module.cv_results(trials, direction)
        pick = max if direction == "max" else min
        completed = [t for t in trials if t["status"] == "completed"]
        best = pick(completed, key=lambda t: t["score"]) if completed else None
        best_index = trials.index(best) if best else None
        refit = self._current_refit(best)
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
        return SearchRecords(trials=trials, cv_results=cv, best=best, best_index=best_index)

    def _current_refit(self, best):
        """The refit record of the best trial, or None; a refit of another trial (or of an
        older kerascnn, with no record) is removed."""
        refit = self._read_refit()
        stale = refit is None and self.folder.owns("refit")
        if stale or (refit and (best is None or refit["trial_id"] != best["trial_id"])):
            self._remove_refit()
            return None
        return refit

    def _read_refit(self):
        if not self.folder.owns(REFIT_RECORD) or not os.path.isfile(
                self.folder.path_of(REFIT_RECORD)):
            return None
        with open(self.folder.path_of(REFIT_RECORD)) as f:
            return json.load(f)

    def _remove_refit(self):
        """Removes refit/ and its record: they describe another refit than the one wanted."""
        for name in ("refit", REFIT_RECORD):
            if self.folder.owns(name):
                self.folder.remove(name)

    def _refit_plan(self, best):
        """What the refit will be: the trial, its examples and epochs, and how it differs from
        the training of the folds (recorded in refit.json and results.json)."""
        values = best["hyperparameters"]
        budget = values.get("tuner/epochs")
        fold_epochs = self.trainer.epochs
        if budget:
            epochs, source = int(budget), "the trial's Hyperband budget"
        elif self.inner_split is not None:
            epochs = max(1, int(round(np.mean([f["best_epoch"] for f in best["folds"]]))))
            source = "the mean best epoch (lowest inner validation loss) of the trial's folds"
        else:
            epochs, source = int(fold_epochs), "the folds' epochs"
        recipe_values, _ = split_values(values, self.settings.model_name)
        recipe = self.settings.recipe.replace(**recipe_values)
        differences = []
        if recipe.schedule == "plateau":
            differences.append("the plateau schedule watches the training loss: the refit "
                               "holds out no validation part")
        if recipe.schedule in LENGTH_SCHEDULES and epochs != fold_epochs:
            differences.append(f"the {recipe.schedule} schedule spans the refit's {epochs} "
                               f"epochs; each fold's spanned {fold_epochs}")
        if recipe.early_stopping:
            differences.append("no early stopping: the refit trains for the chosen epochs")
        return {
            "trial_id": best["trial_id"],
            "hyperparameters": results_module.public_values(values),
            "train_examples": int(len(self.data.training_labels())),
            "epochs": epochs,
            "epochs_from": source,
            "early_stopping": False,
            "schedule": recipe.schedule,
            "differences": differences,
        }

    def refit(self, best):
        """Trains the best hyperparameters on all training data and tests the model once.

        All training data (no validation part held out), no early stopping, the chosen epochs
        (`_refit_plan`) with the schedule over them. refit.json records the plan before the
        training (a killed refit resumes; a refit of another trial or plan is removed first)
        and its time and test metrics after. The refit is evaluated by `kerascnn.evaluate`
        (metrics.json and the report in refit/evaluation/): the one read of the test split.

        Returns:
            A _Refit: the model, its test metrics and the refit record.
        """
        plan = self._refit_plan(best)
        saved = self._read_refit()
        if not _same_plan(saved, plan):
            self._remove_refit()
        self.folder.write_json(REFIT_RECORD, {**plan, "status": "training"})
        start = time.perf_counter()
        everything = np.arange(len(self.data.training_labels()))
        refit_data, _ = self.data.cv_fold(everything, [], validation_split=None,
                                          seed=self.settings.seed)
        hp = self.oracle.get_space().copy()
        hp.values = dict(best["hyperparameters"])
        self.folder.claim("refit")
        result = self.trainer.train(hp, refit_data, self.folder.path_of("refit"),
                                    epochs=plan["epochs"], early_stopping=0)
        metrics = {}
        if self.data.size("test"):
            history = result.history if "val_loss" in result.history else None
            metrics = evaluate(result.model, self.data, history=history,
                               out=self.folder.path_of("refit/evaluation")).metrics
            if self.settings.verbose:
                print(f"refit trial {best['trial_id']} on {refit_data.size('train')} examples "
                      f"for {plan['epochs']} epochs: test {describe_test_metrics(metrics)}")
        seconds = round(time.perf_counter() - start, 3)
        if _same_plan(saved, plan) and saved.get("status") == "done":
            seconds = saved["seconds"]  # refit before: this call only evaluated it again
        record = {**plan, "status": "done", "seconds": seconds, "test_metrics": metrics}
        self.folder.write_json(REFIT_RECORD, record)
        return _Refit(model=result.model, test_metrics=metrics, record=record)

    def worker_result(self):
        """A worker's TuneResult: the trials in the folder so far (the chief ranks and refits)."""
        return _unranked_result(self.out, trials=trial_records(self.folder))

    def result(self, records, refitted=None):
        """The TuneResult of the ranked records and the refit (a _Refit, or None)."""
        refitted = refitted or _Refit()
        best, record = records.best, refitted.record
        return TuneResult(
            best_hyperparameters=results_module.public_values(best["hyperparameters"]),
            trials=records.trials, best_model=refitted.model,
            test_metrics=refitted.test_metrics, cv_results=records.cv_results,
            refit_epochs=record["epochs"] if record else 0, out=self.out,
            best_index=records.best_index, best_score=best["score"],
            refit_time=record["seconds"] if record else None, refit=record,
        )

    def _claim(self):
        """Checks (or records) the study this folder holds, and its fold indices."""
        description = json.loads(json.dumps(self._describe(), default=str))
        folds_record = {"folds": [{"train": t.tolist(), "held_out": h.tolist()}
                                  for t, h in self.folds]}
        folder = self.folder
        if os.path.exists(folder.path_of("search.json")):
            with open(folder.path_of("search.json")) as f:
                saved = json.load(f)
            if saved != description:
                changed = sorted(k for k in description if saved.get(k) != description[k])
                raise RunFolderError(
                    f"{folder.path} holds another search (its {', '.join(changed)} differ); "
                    "use another out folder, or remove that one to start over.")
            with open(folder.path_of("folds.json")) as f:
                if json.load(f) != folds_record:
                    raise RunFolderError(
                        f"{folder.path}/folds.json does not match this search's folds.")
        elif not self.worker:
            folder.write_json("search.json", description)
            folder.write_json("folds.json", folds_record)

    def _describe(self):
        """What must match for a search folder to be resumed (max_trials may grow)."""
        settings, data = self.settings, self.data
        folds = settings.folds
        groups = settings.groups
        return {
            "model": settings.model_name or getattr(settings.model, "__qualname__",
                                                    repr(settings.model)),
            "data": {"name": data.name, "sha256": data.sha256,
                     "training_examples": int(len(data.training_labels())),
                     "train_size": settings.train_size},
            "folds": folds if isinstance(folds, int) else repr(folds),
            "groups": None if groups is None else int(len(np.unique(groups))),
            "recipe": settings.recipe.to_dict(),
            "space": settings.space.get_config()["space"],
            "tuner": settings.tuner,
            "objective": settings.objective,
            "seed": settings.seed,
        }


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


def _same_plan(saved, plan):
    """Whether a saved refit record is of this plan."""
    return saved is not None and {k: saved.get(k) for k in plan} == plan


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
    return _unranked_result(out, nested=summary)


def _unranked_result(out, *, trials=(), nested=None):
    """A TuneResult with no best trial: a worker's trials, or nested cross-validation's."""
    return TuneResult(best_hyperparameters={}, trials=list(trials), best_model=None,
                      test_metrics={}, cv_results={}, refit_epochs=0, out=out, nested=nested)


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
