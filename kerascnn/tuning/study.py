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
import os
import tomllib

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
    "out": (str,),
    "refit": (bool,),
    "nested": (int,),
    "prune": (float, int),
    "space": (dict,),
}


class StudyError(ValueError):
    """A study file that cannot be read, or holds an unknown key or a value of the wrong type."""


def load_study(path):
    """Reads a study file into a dict of `tune` arguments (plus "model" and "data").

    Args:
        path: a `.toml` file.

    Returns:
        A dict with the file's keys; "space" stays a dict of ranges / choices / values.

    Raises:
        StudyError: a missing or malformed file, an unknown key (with the closest known one),
            or a value of the wrong type.
    """
    if not os.path.isfile(path):
        raise StudyError(f"study file {path!r} does not exist; studies live in tuning/*.toml.")
    try:
        with open(path, "rb") as f:
            study = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"study file {path} is not valid TOML: {error}.") from None
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
    return study
