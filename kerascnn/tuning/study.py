"""Study files: one TOML file per search (read with the standard library's tomllib).

A study names the model, the data, the folds, the tuner, the budget, the recipe and the space:

```toml
model = "lenet5"
data = "digits"
folds = 5
tuner = "random"
max_trials = 8
epochs = 4
recipe = "quick"

[space]
learning_rate = { min = 1e-4, max = 1e-2, sampling = "log" }
batch_size = [32, 64]
norm = "batch"          # fixed
```
"""

import difflib
import math
import os

import tomllib

from kerascnn.errors import InputError

# key -> the types it accepts
STUDY_KEYS = {
    "model": (str,),
    "data": (str,),
    "folds": (int,),
    "tuner": (str,),
    "max_trials": (int,),
    "epochs": (int,),
    "recipe": (str,),
    "objective": (str,),
    "task": (str,),
    "seed": (int,),
    "train_size": (int,),
    "out": (str,),
    "refit": (bool,),
    "nested": (int,),
    "prune": (float, int),
    "error_score": (str, float),
    "space": (dict,),
}
TUNER_NAMES = ("bayesian", "grid", "hyperband", "random")  # cross_validation.TUNERS' keys
# The study keys `check_settings` checks before any work.
SETTING_KEYS = ("tuner", "max_trials", "seed", "nested", "prune", "error_score", "train_size")


class StudyError(InputError):
    """A study that cannot run: a study file that cannot be read, an unknown key, a value of
    the wrong type, or a setting out of its range (in a file or in `tune`'s arguments)."""


def check_settings(*, tuner="random", max_trials=10, seed=0, nested=None, prune=None,
                   error_score=math.nan, train_size=None):
    """Checks a search's settings before any work; returns `nested` as None or K >= 2.

    Args:
        tuner, max_trials, seed, nested, prune, error_score, train_size: as `kerascnn.tune`
            takes them (`train_size` is checked against the data when it is loaded).

    Returns:
        None (no nested cross-validation) or the number of outer folds.

    Raises:
        StudyError: naming the setting, the bad value and what is allowed.
    """
    if tuner not in TUNER_NAMES:
        raise StudyError(f"Unknown tuner {tuner!r}; choose one of {list(TUNER_NAMES)}.")
    if not _is_int(max_trials) or max_trials < 1:
        raise StudyError(f"max_trials must be a positive integer; got {max_trials!r}.")
    if not _is_int(seed) or seed < 0:
        raise StudyError(f"seed must be a non-negative integer; got seed={seed!r}.")
    if nested is not None and (not _is_int(nested) or nested == 1 or nested < 0):
        raise StudyError(
            f"nested must be 0 or None (no nested cross-validation) or the number of outer "
            f"folds, K >= 2; got nested={nested!r}.")
    if prune is not None and (isinstance(prune, bool) or not isinstance(prune, (int, float))
                              or not math.isfinite(prune) or prune < 0):
        raise StudyError(
            f"prune must be None (off) or a margin >= 0 in objective units (e.g. 0.05 for "
            f"accuracy): a trial is pruned when it trails the best by more; got prune={prune!r}.")
    if not (error_score == "raise" or (isinstance(error_score, float) and math.isnan(error_score))):
        raise StudyError(
            f"error_score must be nan (a failed trial is recorded with a NaN score, ranked last, "
            f"and the search goes on) or \"raise\" (a failed trial stops the search); got "
            f"error_score={error_score!r}.")
    if train_size is not None and (not _is_int(train_size) or train_size < 2):
        raise StudyError(
            f"train_size must be a number of training examples >= 2 (the search's subset of the "
            f"training data), or unset for all of it; got train_size={train_size!r}.")
    return nested or None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def load_study(path):
    """Reads a study file into a dict of `tune` arguments (plus "model" and "data").

    Args:
        path: a `.toml` file.

    Returns:
        A dict with the file's keys; "space" stays a dict of ranges / choices / values.

    Raises:
        StudyError: a missing, malformed or non-UTF-8 file, an unknown key (with the closest
            known one), a value of the wrong type, or a setting out of range (`check_settings`).
    """
    if not os.path.isfile(path):
        raise StudyError(f"study file {path!r} does not exist; studies live in tuning/*.toml.")
    try:
        with open(path, "rb") as f:
            study = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"study file {path} is not valid TOML: {error}.") from None
    except UnicodeDecodeError as error:
        raise StudyError(f"study file {path} is not UTF-8 text (byte {error.start}: "
                         f"{error.reason}); save it as UTF-8.") from None
    for key, value in study.items():
        if key not in STUDY_KEYS:
            close = difflib.get_close_matches(key, STUDY_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise StudyError(
                f"study file {path} has an unknown key {key!r}.{hint} Keys: {', '.join(STUDY_KEYS)}."
            )
        types = STUDY_KEYS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise StudyError(
                f"study file {path}: {key} must be {' or '.join(t.__name__ for t in types)}; "
                f"got {value!r}."
            )
    settings = {k: study[k] for k in SETTING_KEYS if k in study}
    try:
        check_settings(**settings)
    except StudyError as error:
        raise StudyError(f"study file {path}: {error}") from None
    return study
