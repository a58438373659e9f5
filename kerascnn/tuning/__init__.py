"""Hyperparameter search: KerasTuner's Oracles, each trial scored by k-fold cross-validation.

`tune(model, data, space=..., tuner="random", folds=5)` searches, writes results.json,
cv_results.csv (scikit-learn's `cv_results_` layout), best_hyperparameters.json, folds.json
and scores.png, then refits the best configuration on all training data and tests it once. A trial that
fails is recorded as failed and the search goes on (`error_score="raise"` stops it).
Regression data (`task="regression"`) get shuffled `KFold` folds and the objectives
"val_mse", "val_mae" or "val_r2".
`load_study(path)` reads a TOML study file (see the `tuning/` folder).
"""

import importlib

# Public name -> its module: imported on first use, so that `kerascnn.tuning.study` (study
# files, the search's settings) is read by the command line without importing Keras.
_LAZY = {
    "TUNERS": "cross_validation",
    "CrossValidationTuner": "cross_validation",
    "fold_indices": "cross_validation",
    "SearchError": "search",
    "TuneResult": "search",
    "tune": "search",
    "SpaceError": "space",
    "default_space": "space",
    "hyperparameters": "space",
    "StudyError": "study",
    "load_study": "study",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'kerascnn.tuning' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kerascnn.tuning.{_LAZY[name]}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})
