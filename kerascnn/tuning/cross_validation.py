"""The cross-validating tuner: KerasTuner's Oracles choose, each trial trains one model per fold.

The strategy (random, grid, Bayesian, Hyperband) stays KerasTuner's Oracle; cross-validation is
the execution (`run_trial`), so it works with every strategy and with KerasTuner's
chief/worker distribution. The tuner only runs trials: it is given the folds, the `Trainer`
and the folder (a `CrossValidation`); the search (`kerascnn.tuning.search`) owns the rest.
"""

import dataclasses
import functools
import glob
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from typing import NamedTuple

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import base_tuner
from sklearn import metrics as sk_metrics
from sklearn import model_selection

from kerascnn.data.splits import (
    shuffled_folds,
    shuffled_split,
    stratified_folds,
    stratified_split,
)
from kerascnn.errors import InputError
from kerascnn.losses import loss_name
from kerascnn.run_folder import LOCK as RUN_LOCK
from kerascnn.training import checkpoints
from kerascnn.tuning import results as results_module
from kerascnn.tuning.space import split_values
from kerascnn.workflow import train

TUNERS = {
    "random": keras_tuner.oracles.RandomSearchOracle,
    "grid": keras_tuner.oracles.GridSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
    "hyperband": keras_tuner.oracles.HyperbandOracle,
}


class Objective(NamedTuple):
    """A search objective: the task it scores, KerasTuner's direction, its scikit-learn scorer
    name (greater is better there, so errors are negated, as in "neg_mean_squared_error") and
    `score(y_true, outputs, num_classes)` on a held-out fold's targets and the model's output."""

    task: str
    direction: str
    sklearn_scorer: str
    score: Callable


OBJECTIVES = {
    "val_accuracy": Objective("classification", "max", "accuracy",
                              lambda y, p, n: sk_metrics.accuracy_score(y, p.argmax(axis=1))),
    "val_loss": Objective("classification", "min", "neg_log_loss",
                          lambda y, p, n: sk_metrics.log_loss(y, p, labels=list(range(n)))),
    "val_mse": Objective("regression", "min", "neg_mean_squared_error",
                         lambda y, p, n: sk_metrics.mean_squared_error(y, p)),
    "val_mae": Objective("regression", "min", "neg_mean_absolute_error",
                         lambda y, p, n: sk_metrics.mean_absolute_error(y, p)),
    "val_r2": Objective("regression", "max", "r2", lambda y, p, n: sk_metrics.r2_score(y, p)),
}
TRIAL_RECORD = "trial.json"
UNLIMITED_FAILURES = 2**31 - 1


def check_tuner(tuner):
    """Raises ValueError unless `tuner` names one of KerasTuner's Oracles."""
    if tuner not in TUNERS:
        raise InputError(f"Unknown tuner {tuner!r}; choose one of {sorted(TUNERS)}.")


def default_objective(task, loss):
    """The objective a search of `task` scores by default: accuracy for classes, the recipe's
    loss ("mse" or "mae") for regression."""
    return "val_accuracy" if task == "classification" else f"val_{loss_name(task, loss)}"


def check_objective(objective, task=None):
    """Returns (name, direction) of a supported objective, else raises ValueError.

    Args:
        objective: a key of OBJECTIVES.
        task: the data's task ("classification" or "regression"); None skips that check.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"Unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}.")
    if task is not None and OBJECTIVES[objective].task != task:
        fitting = sorted(k for k, v in OBJECTIVES.items() if v.task == task)
        raise InputError(f"objective={objective!r} scores {OBJECTIVES[objective].task}, but the "
                         f"data holds {task} targets; choose one of {fitting}.")
    return objective, OBJECTIVES[objective].direction


def make_oracle(tuner, objective, *, max_trials, max_epochs, seed):
    """Builds KerasTuner's Oracle for `tuner`.

    KerasTuner takes seed 0 as "no seed", so the Oracle is given seed + 1. Hyperband's budget
    is `max_epochs` per fold for the longest bracket; `max_trials` does not bound it.
    """
    check_tuner(tuner)
    goal = keras_tuner.Objective(*check_objective(objective))
    # A failed trial is recorded and the search goes on (error_score=nan); `tune` says so
    # in one line when no trial completes, so KerasTuner's limit on failures in a row is off.
    failures = {"max_consecutive_failed_trials": UNLIMITED_FAILURES}
    if tuner == "hyperband":
        return TUNERS[tuner](objective=goal, max_epochs=max_epochs, factor=3, hyperband_iterations=1,
                             seed=seed + 1, **failures)
    return TUNERS[tuner](objective=goal, max_trials=max_trials, seed=seed + 1, **failures)


def fold_indices(data, folds, *, seed, groups=None, validation_split=0.1):
    """Returns the folds as a list of (train, held_out) int64 positions of the training data.

    Args:
        data: a `kerascnn.data.Data`; positions index `data.training_labels()`.
        folds: an int k >= 2 (shuffled stratified k-fold, scikit-learn's
            `StratifiedKFold(k, shuffle=True, random_state=seed)`; for regression data,
            whose targets have no classes, `KFold(k, shuffle=True, random_state=seed)`), 1
            (one hold-out of `validation_split`, stratified for classes), or a scikit-learn
            splitter (its `split(X, y, groups)`). With `groups`, an int k gives
            `StratifiedGroupKFold(k, shuffle=True, random_state=seed)` (`GroupKFold(k)` for
            regression; `GroupShuffleSplit` for k = 1): no group is split between parts.
        seed: seed of the shuffle.
        groups: group labels aligned with `data.training_labels()`.
        validation_split: the held-out fraction when `folds` is 1.

    Raises:
        ValueError: k larger than the smallest class (or the examples, or the groups), k < 1,
            groups of the wrong length, or k = 1 without a validation_split.
    """
    labels = data.training_labels()
    regression = data.task == "regression"
    if groups is not None and len(groups) != len(labels):
        raise InputError(
            f"groups has {len(groups)} entries but {data.name} has {len(labels)} training "
            "examples (train plus validation); give one group per training example."
        )
    whole = isinstance(folds, (int, np.integer)) and not isinstance(folds, bool)
    if whole and folds == 1 and not validation_split:
        raise InputError(
            f"folds=1 scores each trial on a held-out part of the training split, the recipe's "
            f"validation_split, which is {validation_split!r} here: set it (validation_split="
            "0.2 in the recipe, or fixed in the space) or use folds=k >= 2 for k-fold "
            "cross-validation.")
    if hasattr(folds, "split"):
        pairs = folds.split(np.zeros((len(labels), 1)), labels, groups)
    elif whole and folds >= 1 and groups is not None:
        pairs = _group_folds(labels, int(folds), groups, seed, validation_split, regression)
    elif whole and folds == 1:
        pairs = [shuffled_split(len(labels), validation_split, seed) if regression
                 else stratified_split(labels, validation_split, seed)]
    elif whole and folds >= 2:
        pairs = (shuffled_folds(len(labels), int(folds), seed) if regression
                 else stratified_folds(labels, int(folds), seed, data.class_names))
    else:
        raise InputError(
            f"folds must be an int (1 for one validation split, k >= 2 for k-fold) or a "
            f"scikit-learn splitter; got {folds!r}."
        )
    return [(np.asarray(t, np.int64), np.asarray(h, np.int64)) for t, h in pairs]


def _group_folds(labels, k, groups, seed, validation_split, regression):
    """Folds that keep each group whole: scikit-learn's `StratifiedGroupKFold(k,
    shuffle=True, random_state=seed)` for classes, `GroupKFold(k)` for regression, and for
    k = 1 one `GroupShuffleSplit` hold-out of `validation_split`."""
    groups = np.asarray(groups)
    count = len(np.unique(groups))
    if k == 1:
        splitter = model_selection.GroupShuffleSplit(1, test_size=validation_split,
                                                     random_state=seed)
    elif count < k:
        raise InputError(f"folds={k} needs at least {k} groups; groups holds {count}. Use "
                         f"folds <= {count}, or finer groups.")
    elif regression:
        splitter = model_selection.GroupKFold(k)
    else:
        splitter = model_selection.StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(labels), 1)), labels, groups))


class TrialError(keras_tuner.errors.FatalError, ValueError):
    """Bad input met inside a trial (a ValueError from training): stops the search, one line."""


class StopAtEpoch(keras.callbacks.Callback):
    """Stops `fit` once `epochs` epochs are complete (Hyperband's budget of a round)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Trains one model of a trial's hyperparameters with `kerascnn.train`: a fold's or a refit's.

    Attributes:
        model_name: the registry name, or None for `build`.
        build: the user's `build(hp)` callable (called after seeding Keras), or None.
        recipe: the base Recipe; a trial's values override its fields.
        epochs: a fold's epochs.
        seed: seeds every run.
    """

    model_name: str | None
    build: Callable | None
    recipe: object
    epochs: int
    seed: int

    def train(self, hp, data, out, *, epochs=None, callbacks=None, **overrides):
        """Trains `hp`'s values on `data` in the run folder `out` (resuming its run); returns
        `train`'s result. `overrides` replace recipe fields of the values."""
        recipe_values, options = split_values(hp.values, self.model_name)
        if self.build is not None:
            keras.utils.set_random_seed(self.seed)
            model = self.build(hp)
        else:
            model = self.model_name
        return train(model, data, recipe=self.recipe,
                     epochs=self.epochs if epochs is None else epochs, out=out, seed=self.seed,
                     model_options=options or None, verbose=0, callbacks=callbacks,
                     **{**recipe_values, **overrides})


@dataclasses.dataclass(frozen=True)
class CrossValidation:
    """What the tuner needs to run and score a trial's folds.

    Attributes:
        data: the training data (a `kerascnn.data.Data`).
        folds: (train, held_out) positions of its training examples, one pair per fold.
        trainer: trains a fold's model.
        inner_split: the fraction of a fold's training part held out for early stopping or a
            plateau schedule, or None.
        objective: what the held-out parts score (a key of OBJECTIVES).
        folder: the search's RunFolder (trials/<id>/ lie in it).
        error_score: "raise" stops the search at a failed fold; nan records the trial failed.
        prune: the margin by which a trial's running mean may trail the best completed
            trial's before it stops, or None.
        verbose: print each fold's score and each failed trial.
    """

    data: object
    folds: list
    trainer: Trainer
    inner_split: float | None
    objective: str
    folder: object
    error_score: object
    prune: float | None
    verbose: int


class CrossValidationTuner(base_tuner.BaseTuner):
    """A KerasTuner tuner whose trial score is the mean over cross-validation folds.

    It runs trials, nothing else (the Oracle chooses them, the search keeps the results):
    each fold of a trial is one `kerascnn.train` run in `<search>/trials/<id>/fold-<j>`,
    scored on the fold's held-out part; `trials/<id>/fold-<j>.json` marks it finished, so a
    resumed search skips finished folds and `train` continues an unfinished one from its
    last epoch. `trials/<id>/trial.json` records the trial.

    Args:
        oracle: a KerasTuner Oracle (the strategy).
        cv: the CrossValidation a trial runs (data, folds, trainer, folder, ...).
        after_trial: called with no arguments after each trial (the search rewrites its
            results), or None.
        hypermodel: the user's `build(hp)` callable, or None for a registry model.
        directory, project_name: KerasTuner's own project folder.
    """

    def __init__(self, oracle, cv, *, after_trial=None, hypermodel=None, directory,
                 project_name):
        self.cv = cv
        self.after_trial = after_trial
        super().__init__(oracle, hypermodel=hypermodel, directory=directory,
                         project_name=project_name, overwrite=False)
        _restore_grid_walk(self.oracle)

    def run_trial(self, trial, *args, **kwargs):
        """Trains and scores the trial's folds; records it as completed, pruned or failed.

        A fold that raises fails the trial: with `error_score="raise"` the search stops with
        its reason; else (scikit-learn's `error_score=np.nan`, KerasTuner's
        FailedTrialError) the trial is recorded as failed with its error and the search
        goes on.
        """
        trial_rel = f"trials/{trial.trial_id}"
        self.cv.folder.claim(trial_rel)
        records, error = [], None
        for j, (train_part, held_out) in enumerate(self.cv.folds):
            try:
                record = self._fold(trial, j, train_part, held_out)
            except Exception as raised:  # noqa: BLE001 - any fold error fails the trial
                if self.cv.error_score == "raise":
                    fatal = (TrialError if isinstance(raised, ValueError)
                             else keras_tuner.errors.FatalError)
                    raise fatal(f"trial {trial.trial_id} fold {j}: {raised}") from raised
                error = (j, raised)
                break
            records.append(record)
            self._progress(trial.trial_id, j, records)
            if self._pruned([r["score"] for r in records]):
                break
        # Each fold's model went with its fold; Keras' global state (and, through its
        # gc.collect, what cycles kept alive) goes once per trial: 0.5 s, too dear per fold.
        keras.backend.clear_session()
        result = self._record(trial, records, error)
        self.cv.folder.write_json(f"{trial_rel}/{TRIAL_RECORD}", result)
        if error is not None:
            if self.cv.verbose:
                print(f"trial {trial.trial_id} failed, the search goes on: {result['error']}",
                      flush=True)
            raise keras_tuner.errors.FailedTrialError(result["error"]) from error[1]
        return {self.cv.objective: result["score"]}

    def _record(self, trial, records, error):
        """The trial's record (trial.json, a row of results.json)."""
        scores = [r["score"] for r in records]
        if error is not None:
            fold, raised = error
            message = " ".join(str(raised).split()) or "no message"
            status, extra = "failed", {"error": f"fold {fold}: {type(raised).__name__}: {message}"}
        else:
            status = "completed" if len(records) == len(self.cv.folds) else "pruned"
            extra = {}
        scored = status != "failed"
        return {
            "trial_id": trial.trial_id,
            "hyperparameters": dict(trial.hyperparameters.values),
            "fold_scores": scores,
            # A failed trial has no score (NaN in cv_results); a pruned one keeps the running
            # mean KerasTuner was told.
            "score": float(np.mean(scores)) if scored else None,
            "std": float(np.std(scores)) if scored else None,
            "status": status,
            **extra,
            "seconds": float(sum(r["seconds"] + r.get("score_seconds", 0.0) for r in records)),
            "tuner_id": self.tuner_id,
            "folds": records,
        }

    def _progress(self, trial_id, fold, records):
        """Prints a fold's score under the trial id and fold number of the search folder
        (trials/<id>/fold-<j>, results.json, cv_results' split<j>): both count from 0."""
        if self.cv.verbose:
            scores = [r["score"] for r in records]
            print(f"trial {trial_id} fold {fold}: {self.cv.objective} {scores[-1]:.4f}, running "
                  f"mean {np.mean(scores):.4f} ({len(scores)} of {len(self.cv.folds)} folds)",
                  flush=True)

    def _pruned(self, scores):
        """Whether a trial with these first fold scores is clearly worse than the best one."""
        if self.cv.prune is None or len(scores) >= len(self.cv.folds):
            return False
        done = [t for t in trial_records(self.cv.folder) if t["status"] == "completed"]
        if not done:
            return False
        sign = 1 if OBJECTIVES[self.cv.objective].direction == "max" else -1
        best = max(sign * np.mean(t["fold_scores"][:len(scores)]) for t in done)
        return sign * np.mean(scores) < best - self.cv.prune

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.after_trial is not None:
            self.after_trial()

    def _fold(self, trial, j, train_part, held_out):
        """Trains fold j of the trial and scores its held-out part; returns its record
        (fold-<j>.json), read back when the fold finished before."""
        folder = self.cv.folder
        fold_rel = f"trials/{trial.trial_id}/fold-{j}"
        record_path = folder.path_of(f"{fold_rel}.json")
        if os.path.exists(record_path):
            with open(record_path) as f:
                return json.load(f)
        start = time.perf_counter()
        fit_data, held = self.cv.data.cv_fold(train_part, held_out,
                                              validation_split=self.cv.inner_split,
                                              seed=self.cv.trainer.seed)
        run_dir = folder.path_of(fold_rel)
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent:
            _continue_parent(folder.path_of(f"trials/{parent}/fold-{j}"), run_dir)
        net, history = self._fit(trial.hyperparameters, fit_data, run_dir)
        fitted = time.perf_counter()
        x, y = held.arrays("validation")
        score = float(OBJECTIVES[self.cv.objective].score(y, main_outputs(net, x),
                                                          self.cv.data.num_classes))
        record = {
            "fold": j,
            "score": score,
            "epochs": len(history.get("loss", [])),
            "best_epoch": _best_epoch(history),
            "train_examples": int(fit_data.size("train")),
            "held_out_examples": int(len(y)),
            "seconds": round(fitted - start, 3),  # fitting (scikit-learn's fit_time)
            "score_seconds": round(time.perf_counter() - fitted, 3),
        }
        del net
        folder.write_json(f"{fold_rel}.json", record)
        return record

    def _fit(self, hp, fit_data, run_dir):
        """Trains a fold's model in `run_dir` up to its epochs (Hyperband: the trial's
        budget); returns (model, history)."""
        budget = hp.values.get("tuner/epochs")
        target = budget or self.cv.trainer.epochs
        own_checkpoints = os.path.join(run_dir, checkpoints.CHECKPOINTS)
        state = checkpoints.read_state(own_checkpoints)
        if state and state["epoch"] >= target:
            # Killed after its last epoch but before its record: score the saved epoch.
            net = keras.models.load_model(
                os.path.join(own_checkpoints, os.path.basename(state["model"])))
            return net, state["history"]
        result = self.cv.trainer.train(hp, fit_data, run_dir,
                                       callbacks=[StopAtEpoch(target)] if budget else [])
        return result.model, result.history


def _continue_parent(parent_dir, run_dir):
    """Hyperband promotion: a fold starts as a copy of its parent trial's run of that fold
    (its own run folder, manifest included), never from zero. Copied aside, then renamed:
    a copy cut short by a kill is never taken for a run."""
    if os.path.exists(run_dir) or not os.path.isdir(parent_dir):
        return
    partial = f"{run_dir}.copying"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(parent_dir, partial, ignore=shutil.ignore_patterns(RUN_LOCK))
    os.replace(partial, run_dir)


def trial_records(folder):
    """The trial records (trials/<id>/trial.json) of a search folder, in trial order."""
    records = []
    for path in glob.glob(os.path.join(folder.path_of("trials"), "*", TRIAL_RECORD)):
        with open(path) as f:
            records.append(json.load(f))
    return sorted(records, key=results_module.trial_order)


def _restore_grid_walk(oracle):
    """Rebuilds a reloaded GridSearchOracle's walk through the grid, so that a grown
    `max_trials` extends a finished grid search.

    KerasTuner keeps that walk (the trials whose next combination is still to try, and the
    trials in grid order) in memory only: reloaded, the Oracle stops at once. Rebuilt from
    the trials it reloaded, as its own `end_trial` and `populate_space` would have left it.
    This touches keras_tuner 1.4's private `_populate_next`, `_ordered_ids` and `_compare`:
    here only.
    """
    if not isinstance(oracle, TUNERS["grid"]) or oracle._populate_next or not oracle.end_order:
        return
    trials = [oracle.trials[i] for i in oracle.start_order if i in oracle.trials]
    in_grid_order = sorted(trials, key=functools.cmp_to_key(
        lambda a, b: oracle._compare(a.hyperparameters.values, b.hyperparameters.values)))
    for trial in in_grid_order:
        oracle._ordered_ids.insert(trial.trial_id)
    oracle._populate_next.extend(oracle.end_order)


def main_outputs(net, x, batch_size=256):
    """The main output of `net` on `x` (class probabilities, or regression values), in eager
    batches: no `predict` function to trace for each fold's new model. A streamed split's
    examples are read batch by batch."""
    chunks = []
    for start in range(0, len(x), batch_size):
        outputs = net(np.asarray(x[start:start + batch_size]), training=False)
        chunks.append(keras.ops.convert_to_numpy(
            outputs[0] if isinstance(outputs, (list, tuple)) else outputs))
    return np.concatenate(chunks)


def _best_epoch(history):
    """The epoch (from 1) of the lowest inner validation loss; the last epoch without one."""
    losses = history.get("val_loss")
    if losses:
        finite = [v if math.isfinite(v) else math.inf for v in losses]
        return int(np.argmin(finite)) + 1
    return len(history.get("loss", []))
