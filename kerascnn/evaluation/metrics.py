"""Classification and regression metrics, computed with scikit-learn.

Conventions, stated once and printed in every report:
- Top-k accuracy uses k = min(5, num_classes - 1) unless given (k = 1 for two classes).
- Expected calibration error (ECE) bins the top-1 confidence into 15 equal-width bins
  (0, 1/15], (1/15, 2/15], ... (Guo et al., 2017, "On Calibration of Modern Neural Networks");
  ECE = sum over bins of (bin size / n) * |bin accuracy - bin mean confidence|.
- A precision, recall or F1 that divides by zero (a class never predicted, or absent from the
  test data) is undefined: it is `None` in JSON and left out of the macro average
  (scikit-learn's `zero_division=np.nan`). Macro F1 then equals scikit-learn's default
  `f1_score(average="macro")`.
- A model trained with the multiclass hinge loss outputs raw class scores: its prediction is
  the argmax, and the metrics that need probabilities (log loss, ECE, reliability, accuracy
  against confidence, most confident mistakes) are skipped (`None`).
- Regression: MAE, RMSE and R² (scikit-learn; averaged uniformly over targets when there
  are several, and given per target too).
"""

import numpy as np
from sklearn import metrics as sk_metrics

from kerascnn.errors import InputError

ECE_BINS = 15
MOST_CONFUSED_PAIRS = 5
CONFIDENT_MISTAKES = 16
PROBABILITY_TOLERANCE = 5e-3
# The figures a command prints and a run record keeps, of those a report has.
HEADLINE_METRICS = ("accuracy", "macro_f1", "log_loss", "r2", "mae", "rmse")


def headline(metrics, prefix=""):
    """The HEADLINE_METRICS a report's `metrics` has (not None), as floats, keys prefixed."""
    return {f"{prefix}{key}": float(metrics[key]) for key in HEADLINE_METRICS
            if metrics.get(key) is not None}


def default_top_k(num_classes):
    """Returns the default k of top-k accuracy: min(5, num_classes - 1), at least 1."""
    return max(1, min(5, num_classes - 1))


def check_output_width(width, num_classes):
    """Raises ValueError unless a model output of `width` columns can describe `num_classes`.

    One sigmoid column is accepted for two classes.
    """
    if width != num_classes and not (width == 1 and num_classes == 2):
        raise InputError(
            f"The model outputs {width} values per example but the data has {num_classes} "
            "classes. Evaluate a model trained on these classes (a binary model may have one "
            "sigmoid output), or pass the matching `class_names`."
        )


def as_probabilities(outputs, num_classes):
    """Returns model outputs as an (n, num_classes) float64 array of probabilities.

    A single sigmoid column p becomes two columns (1 - p, p). Rows are renormalised to sum to
    exactly 1 after checking that they already do within 5e-3.

    Args:
        outputs: array of shape (n, num_classes), or (n, 1) / (n,) for a sigmoid model.
        num_classes: the number of classes of the data.

    Returns:
        A float64 array of shape (n, num_classes).

    Raises:
        ValueError: if the width does not match `num_classes`, or the outputs are not
            probabilities (e.g. logits from a model without a softmax).
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.ndim != 2 or not len(outputs):
        raise InputError(
            f"Model outputs must have shape (examples, classes) with at least one example; "
            f"got {outputs.shape}."
        )
    check_output_width(outputs.shape[1], num_classes)
    low, high = outputs.min(), outputs.max()
    if low < -PROBABILITY_TOLERANCE or high > 1 + PROBABILITY_TOLERANCE:
        raise InputError(
            f"Model outputs range over [{low:.4g}, {high:.4g}], so they are not probabilities "
            "(logits?). End the model with a softmax (or sigmoid for one output)."
        )
    if outputs.shape[1] == 1:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    outputs = np.clip(outputs, 0.0, 1.0)
    sums = outputs.sum(axis=1)
    if np.abs(sums - 1.0).max() > PROBABILITY_TOLERANCE:
        raise InputError(
            f"Model output rows sum to between {sums.min():.4g} and {sums.max():.4g}, not 1: "
            "they are not class probabilities (independent sigmoids or logits?). End the "
            "model with a softmax over the classes."
        )
    return outputs / sums[:, None]


def check_labels(y_true, num_classes):
    """Returns labels as a 1-D int64 array after checking they are class indices.

    Raises:
        ValueError: for one-hot or fractional labels, or indices outside [0, num_classes).
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise InputError(
            f"Labels must be integer class indices of shape (examples,); got shape "
            f"{y_true.shape}. For one-hot labels pass `y.argmax(-1)`."
        )
    if y_true.size and not np.array_equal(y_true, np.round(y_true)):
        raise InputError("Labels must be integer class indices; got fractional values.")
    y_true = y_true.astype(np.int64)
    outside = y_true[(y_true < 0) | (y_true >= num_classes)]
    if outside.size:
        raise InputError(
            f"Label {int(outside[0])} is not a class index of a {num_classes}-class model: "
            f"labels must lie in [0, {num_classes - 1}]. The model's output size and the "
            "data's classes differ."
        )
    return y_true


def expected_calibration_error(y_true, probabilities, num_bins=ECE_BINS):
    """Returns the ECE and the reliability table of the top-1 confidence.

    Args:
        y_true: integer labels, shape (n,).
        probabilities: shape (n, classes).
        num_bins: equal-width bins over [0, 1]; bin i is (i / num_bins, (i + 1) / num_bins],
            with a confidence of exactly 0 in the first bin.

    Returns:
        `(ece, table)`: `table` has `bin_edges` (num_bins + 1 floats) and, per bin, `count`,
        `accuracy` and `confidence` (`None` for empty bins).
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Counting the inner edges strictly below a confidence gives its (lo, hi] bin.
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(bins, minlength=num_bins)
    safe = np.maximum(count, 1)
    accuracy = np.bincount(bins, weights=correct, minlength=num_bins) / safe
    mean_confidence = np.bincount(bins, weights=confidence, minlength=num_bins) / safe
    ece = float(np.sum(count / max(len(y_true), 1) * np.abs(accuracy - mean_confidence)))
    filled = count > 0
    table = {
        "bin_edges": edges.tolist(),
        "count": count.tolist(),
        "accuracy": [float(a) if f else None for a, f in zip(accuracy, filled)],
        "confidence": [float(c) if f else None for c, f in zip(mean_confidence, filled)],
    }
    return ece, table


def accuracy_by_coverage(y_true, probabilities, num_points=10):
    """Returns the accuracy on the most confident fraction of examples, for fractions 0.1 .. 1.

    Shows how accuracy varies with confidence: keep only the predictions the model is most
    sure of (by top-1 probability) and measure their accuracy.

    Returns:
        `{"coverage": [...], "accuracy": [...], "min_confidence": [...]}`.
    """
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    correct = (probabilities.argmax(axis=1) == y_true)[order]
    coverage = np.linspace(1.0 / num_points, 1.0, num_points)
    kept = np.maximum(np.ceil(coverage * len(y_true)).astype(np.int64), 1)
    return {
        "coverage": coverage.tolist(),
        "accuracy": [float(correct[:k].mean()) for k in kept],
        "min_confidence": [float(confidence[order][k - 1]) for k in kept],
    }


def classification_metrics(y_true, probabilities, *, class_names=None, top_k=None,
                           num_bins=ECE_BINS, scores=False):
    """Returns every classification metric of a set of predictions as a JSON-ready dict.

    Args:
        y_true: integer labels, shape (n,).
        probabilities: class probabilities, shape (n, classes); see `as_probabilities`.
            Raw class scores when `scores` is True.
        class_names: names of the classes (default "0", "1", ...).
        top_k: k of the top-k accuracy (default `default_top_k(classes)`).
        num_bins: bins of the expected calibration error.
        scores: `probabilities` holds raw class scores (a hinge-loss model): the metrics
            that need probabilities are `None` (`most_confident_mistakes` empty).

    Returns:
        A dict with `accuracy`, `top_k`, `top_k_accuracy`, `confusion_matrix` (counts, rows =
        true class), `confusion_matrix_normalized` (rows sum to 1, `None` for absent classes),
        `per_class` ({name: precision, recall, f1, support}), `macro_*` and `weighted_*`
        precision / recall / F1, `log_loss`, `ece`, `ece_bins`, `reliability`,
        `accuracy_by_coverage`, `most_confused`, `most_confident_mistakes`, `absent_classes`
        and `never_predicted`.

    Raises:
        ValueError: for labels or probabilities that do not fit together.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true, names, k = _check_predictions(y_true, probabilities, class_names, top_k)
    labels = np.arange(len(names))
    y_pred = probabilities.argmax(axis=1)
    counts = sk_metrics.confusion_matrix(y_true, y_pred, labels=labels)
    support = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = counts / support[:, None]
    precision, recall, f1, _ = sk_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan)
    return {
        "num_examples": int(len(y_true)),
        "num_classes": len(names),
        "class_names": names,
        "accuracy": float(sk_metrics.accuracy_score(y_true, y_pred)),
        "top_k": k,
        "top_k_accuracy": _top_k_accuracy(y_true, probabilities, k, scores),
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalized": [
            _floats(row) if s else None for row, s in zip(normalized, support)],
        "per_class": {
            name: {"precision": _float(p), "recall": _float(r), "f1": _float(f),
                   "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        },
        "outputs": "scores" if scores else "probabilities",
        **_probability_metrics(y_true, probabilities, num_bins, scores),
        "most_confused": _most_confused(counts, names),
        "most_confident_mistakes": [] if scores else _most_confident_mistakes(
            y_true, probabilities, names),
        "absent_classes": [n for n, s in zip(names, support) if s == 0],
        "never_predicted": [n for n, c in zip(names, counts.sum(axis=0)) if c == 0],
        **_averages(y_true, y_pred, labels),
    }


def _check_predictions(y_true, probabilities, class_names, top_k):
    """(labels, class names, k) of `classification_metrics`, checked against the predictions."""
    num_classes = probabilities.shape[1]
    y_true = check_labels(y_true, num_classes)
    if len(y_true) != len(probabilities) or not len(y_true):
        raise InputError(
            f"Got {len(y_true)} labels for {len(probabilities)} predictions; both must be "
            "the same, non-zero number."
        )
    names = [str(n) for n in class_names] if class_names is not None else [
        str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise InputError(f"Got {len(names)} class names for {num_classes} classes.")
    k = default_top_k(num_classes) if top_k is None else int(top_k)
    if not 1 <= k <= num_classes:
        raise InputError(f"top_k must be in [1, {num_classes}]; got {top_k}.")
    return y_true, names, k


def _top_k_accuracy(y_true, probabilities, k, scores):
    """scikit-learn's top-k accuracy of probabilities or raw class scores."""
    num_classes = probabilities.shape[1]
    # scikit-learn takes the positive-class score alone for two classes (for raw scores,
    # their difference, which it thresholds at 0).
    if num_classes == 2:
        ranking = probabilities[:, 1] - probabilities[:, 0] if scores else probabilities[:, 1]
    else:
        ranking = probabilities
    return float(sk_metrics.top_k_accuracy_score(
        y_true, ranking, k=k, labels=np.arange(num_classes)))


def _probability_metrics(y_true, probabilities, num_bins, scores):
    """Log loss, ECE, reliability and accuracy by coverage (`None` for raw class scores)."""
    if scores:
        return {"log_loss": None, "ece": None, "ece_bins": num_bins, "reliability": None,
                "accuracy_by_coverage": None}
    ece, reliability = expected_calibration_error(y_true, probabilities, num_bins)
    return {
        "log_loss": float(sk_metrics.log_loss(
            y_true, probabilities, labels=np.arange(probabilities.shape[1]))),
        "ece": ece,
        "ece_bins": num_bins,
        "reliability": reliability,
        "accuracy_by_coverage": accuracy_by_coverage(y_true, probabilities),
    }


def _averages(y_true, y_pred, labels):
    """Macro and weighted precision, recall and F1 (`None` where undefined)."""
    averages = {}
    for average in ("macro", "weighted"):
        values = sk_metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=np.nan)[:3]
        for metric, value in zip(("precision", "recall", "f1"), values):
            averages[f"{average}_{metric}"] = _float(value)
    return averages


def check_targets(y_true, width=None):
    """Returns regression targets as float64 (n, targets), checked.

    Raises:
        ValueError: for class labels or one-hot rows, a rank above 2, NaN or infinite
            values, or a number of targets other than `width`.
    """
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "f" or y_true.ndim not in (1, 2) or not len(y_true):
        raise InputError(
            f"Regression targets must be floats of shape (examples,) or (examples, targets); "
            f"got dtype {y_true.dtype} and shape {y_true.shape}. Class labels need a "
            "classifier (task='classification').")
    y_true = y_true.reshape(len(y_true), -1).astype(np.float64)
    if not np.isfinite(y_true).all():
        raise InputError("Regression targets hold NaN or infinite values; drop those examples.")
    if width is not None and y_true.shape[1] != width:
        raise InputError(f"The model predicts {width} value(s) per example but the targets "
                         f"have {y_true.shape[1]}.")
    return y_true


def regression_metrics(y_true, y_pred, *, target_names=None):
    """Returns MAE, RMSE and R² of regression predictions as a JSON-ready dict.

    Args:
        y_true: targets, shape (n,) or (n, targets).
        y_pred: predictions of the same shape (a (n,) vector for one target is accepted).
        target_names: names of the targets (default "0", "1", ...).

    Returns:
        A dict with `num_examples`, `num_targets`, `target_names`, `mae`, `rmse`, `r2`
        (uniform averages over the targets) and `per_target` ({name: mae, rmse, r2}).

    Raises:
        ValueError: for targets and predictions that do not fit together.
    """
    y_true = check_targets(y_true)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if y_pred.shape != y_true.shape:
        raise InputError(f"Got predictions of shape {y_pred.shape} for targets of shape "
                         f"{y_true.shape}; both must be (examples, targets).")
    names = ([str(n) for n in target_names] if target_names is not None
             else [str(i) for i in range(y_true.shape[1])])
    scores = {
        "mae": sk_metrics.mean_absolute_error(y_true, y_pred, multioutput="raw_values"),
        "rmse": sk_metrics.root_mean_squared_error(y_true, y_pred, multioutput="raw_values"),
        "r2": sk_metrics.r2_score(y_true, y_pred, multioutput="raw_values"),
    }
    return {
        "num_examples": int(len(y_true)),
        "num_targets": int(y_true.shape[1]),
        "target_names": names,
        **{key: float(np.mean(values)) for key, values in scores.items()},
        "per_target": {name: {key: float(values[i]) for key, values in scores.items()}
                       for i, name in enumerate(names)},
    }


def _most_confused(counts, names):
    """The off-diagonal cells of the confusion matrix with the largest counts."""
    off_diagonal = counts * (1 - np.eye(len(counts), dtype=counts.dtype))
    flat = np.argsort(-off_diagonal, axis=None, kind="stable")[:MOST_CONFUSED_PAIRS]
    pairs = []
    for true, predicted in zip(*np.unravel_index(flat, counts.shape)):
        if off_diagonal[true, predicted] == 0:
            break
        pairs.append({
            "true": names[true],
            "predicted": names[predicted],
            "count": int(counts[true, predicted]),
            "fraction_of_true": float(counts[true, predicted] / counts[true].sum()),
        })
    return pairs


def _most_confident_mistakes(y_true, probabilities, names):
    """The wrong predictions with the highest top-1 probability, most confident first."""
    y_pred = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:CONFIDENT_MISTAKES]
    return [
        {"index": int(i), "true": names[y_true[i]], "predicted": names[y_pred[i]],
         "confidence": float(confidence[i])}
        for i in wrong
    ]


def _float(value):
    """A JSON-ready float: NaN (undefined) becomes None."""
    return None if np.isnan(value) else float(value)


def _floats(values):
    return [_float(v) for v in values]
