"""Hyperparameter search: KerasTuner's Oracles, each trial scored by k-fold cross-validation.

`tune(model, data, space=..., tuner="random", folds=5)` searches, writes results.json,
cv_results.csv (scikit-learn's `cv_results_` layout), best_hyperparameters.json, folds.json
and scores.png, then refits the best configuration on all training data and tests it once.
Regression data (`task="regression"`) get shuffled `KFold` folds and the objectives
"val_mse", "val_mae" or "val_r2".
`load_study(path)` reads a TOML study file (see the `tuning/` folder).
"""

from kerascnn.tuning.cross_validation import TUNERS, CrossValidationTuner, fold_indices
from kerascnn.tuning.search import TuneResult, tune
from kerascnn.tuning.space import SpaceError, default_space, hyperparameters
from kerascnn.tuning.study import StudyError, load_study

__all__ = [
    "TUNERS",
    "CrossValidationTuner",
    "SpaceError",
    "StudyError",
    "TuneResult",
    "default_space",
    "fold_indices",
    "hyperparameters",
    "load_study",
    "tune",
]
