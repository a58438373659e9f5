"""Learning-curve diagnosis: underfitting, overfitting (from which epoch) or a good fit."""

import csv
import dataclasses
import os
from collections.abc import Mapping

import numpy as np

from kerascnn.errors import InputError, InputTypeError


@dataclasses.dataclass(frozen=True)
class FitThresholds:
    """The thresholds of `diagnose`, printed in every report.

    Args:
        high_error: underfitting when the final training error and the final validation
            error (1 - accuracy) are both at least this.
        min_rise: overfitting when the final validation loss exceeds its minimum by more than
            this fraction of the minimum ...
        patience: ... at least this many epochs after the minimum, while the training loss
            kept falling below its value at the minimum.
    """

    high_error: float = 0.10
    min_rise: float = 0.05
    patience: int = 2

    def describe(self):
        """Returns the rules as one sentence."""
        return (
            f"Underfitting: final training and validation error both >= {self.high_error:.0%}. "
            f"Overfitting: validation loss ends more than {self.min_rise:.0%} above its "
            f"minimum, at least {self.patience} epochs after it, while training loss kept "
            "falling. Otherwise a good fit. Epochs count from 1."
        )


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """The verdict on a training history.

    Attributes:
        verdict: "underfitting", "overfitting" or "good fit".
        explanation: the numbers behind the verdict, in one or two sentences.
        best_epoch: the epoch of lowest validation loss (from 1).
        overfitting_epoch: the first epoch after `best_epoch` when overfitting, else None.
        thresholds: the `FitThresholds` used.
    """

    verdict: str
    explanation: str
    best_epoch: int
    overfitting_epoch: int | None
    thresholds: FitThresholds

    def to_dict(self):
        """Returns the diagnosis as a JSON-ready dict."""
        return {**dataclasses.asdict(self), "rules": self.thresholds.describe()}


def load_history(history):
    """Returns a training history as {metric: list of floats}.

    Args:
        history: a `keras.callbacks.History`, a dict of lists, or the path of a CSV file with
            one row per epoch (as `keras.callbacks.CSVLogger` writes).

    Raises:
        ValueError: if `loss` or `val_loss` is missing, or the columns differ in length.
        TypeError: for any other kind of object.
    """
    if isinstance(history, (str, os.PathLike)):
        with open(history, newline="") as f:
            rows = list(csv.DictReader(f))
        columns = {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}
    elif isinstance(getattr(history, "history", None), Mapping):
        columns = history.history
    elif isinstance(history, Mapping):
        columns = history
    else:
        raise InputTypeError(
            "`history` must be a keras History, a dict of lists or a path to a history CSV; "
            f"got {type(history).__name__}."
        )
    columns = {key: [float(v) for v in values] for key, values in columns.items()}
    missing = [key for key in ("loss", "val_loss") if key not in columns]
    if missing:
        raise InputError(
            f"The history lacks {missing}; it has {sorted(columns)}. Train with validation "
            "data so that `val_loss` is recorded."
        )
    if len({len(values) for values in columns.values()}) != 1 or not columns["loss"]:
        raise InputError(
            "History columns must all have one value per epoch (at least one epoch); got "
            f"lengths { {key: len(v) for key, v in columns.items()} }."
        )
    return columns


def diagnose(history, thresholds=None):
    """Diagnoses a training history as underfitting, overfitting or a good fit.

    Args:
        history: anything `load_history` accepts.
        thresholds: a `FitThresholds` (default: `FitThresholds()`).

    Returns:
        A `Diagnosis`. Without `accuracy` / `val_accuracy` in the history, underfitting is
        not assessed and the explanation says so.
    """
    thresholds = thresholds or FitThresholds()
    columns = load_history(history)
    loss, val_loss = np.array(columns["loss"]), np.array(columns["val_loss"])
    best = int(np.argmin(val_loss))
    rise = val_loss[-1] / val_loss[best] - 1.0 if val_loss[best] > 0 else 0.0
    overfitting = (
        len(val_loss) - 1 - best >= thresholds.patience
        and rise > thresholds.min_rise
        and loss[-1] < loss[best]
    )
    if best == len(val_loss) - 1:
        loss_text = (
            f"Validation loss is still falling: lowest at the last epoch ({best + 1}, "
            f"{val_loss[best]:.4f}).")
    else:
        loss_text = (
            f"Validation loss is lowest at epoch {best + 1} of {len(val_loss)} "
            f"({val_loss[best]:.4f}) and ends at {val_loss[-1]:.4f} ({rise:+.1%}); training "
            f"loss goes from {loss[best]:.4f} to {loss[-1]:.4f} over the same epochs.")
    if "accuracy" in columns and "val_accuracy" in columns:
        error, val_error = 1.0 - columns["accuracy"][-1], 1.0 - columns["val_accuracy"][-1]
        error_text = (
            f"Final training error {error:.2%}, validation error {val_error:.2%} "
            f"(gap {val_error - error:+.2%}). "
        )
        underfitting = min(error, val_error) >= thresholds.high_error
    else:
        error_text = "Underfitting not assessed: the history has no accuracy. "
        underfitting = False
    if underfitting:
        verdict = "underfitting"
    elif overfitting:
        verdict = "overfitting"
    else:
        verdict = "good fit"
    return Diagnosis(
        verdict=verdict,
        explanation=error_text + loss_text,
        best_epoch=best + 1,
        overfitting_epoch=best + 2 if verdict == "overfitting" else None,
        thresholds=thresholds,
    )
