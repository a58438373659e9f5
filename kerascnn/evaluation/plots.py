"""Report figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Figures come from `kerascnn.figures` (no pyplot), so no global state or display backend is
touched; matplotlib is imported on first use.
"""

import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

from kerascnn.figures import figure as _figure
from kerascnn.figures import png_bytes as _png

ANNOTATE_MAX_CLASSES = 20  # beyond this, confusion-matrix cells carry no numbers


def confusion_matrix_png(counts, class_names):
    """Draws the confusion matrix twice: counts and row-normalised (rows = true class)."""
    counts = np.asarray(counts)
    support = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    size = min(3 + 0.35 * len(class_names), 12)
    figure = _figure(2 * size + 1, size)
    for axes, values, title, fmt in zip(
            figure.subplots(1, 2), (counts, normalized),
            ("Counts", "Row-normalised (recall on the diagonal)"), ("d", ".2f")):
        ConfusionMatrixDisplay(values, display_labels=class_names).plot(
            ax=axes, cmap="Blues", values_format=fmt, im_kw={"vmin": 0},
            include_values=len(class_names) <= ANNOTATE_MAX_CLASSES,
            xticks_rotation=90 if len(class_names) > 10 else "horizontal")
        axes.set(title=title, xlabel="Predicted class", ylabel="True class")
    return _png(figure)


def predictions_png(y_true, y_pred, target_names):
    """Draws predicted against true values, one panel per regression target (at most 6)."""
    shown = min(len(target_names), 6)
    figure = _figure(4.5 * shown, 4.2)
    for i, axes in enumerate(np.atleast_1d(figure.subplots(1, shown))):
        true, predicted = y_true[:, i], y_pred[:, i]
        low, high = min(true.min(), predicted.min()), max(true.max(), predicted.max())
        axes.scatter(true, predicted, s=8, alpha=0.5, color="tab:blue")
        axes.plot([low, high], [low, high], "k--", label="Perfect prediction")
        axes.set(title=f"Target {target_names[i]}", xlabel="True value",
                 ylabel="Predicted value")
        axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def reliability_png(reliability, ece):
    """Draws the reliability diagram: accuracy per confidence bin against the diagonal."""
    edges = np.asarray(reliability["bin_edges"])
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    accuracy = np.array([np.nan if a is None else a for a in reliability["accuracy"]])
    confidence = np.array([np.nan if c is None else c for c in reliability["confidence"]])
    figure = _figure(10, 4.5)
    bars, histogram = figure.subplots(1, 2)
    bars.bar(centers, np.nan_to_num(accuracy), width=width, edgecolor="black",
             color="tab:blue", label="Accuracy")
    bars.bar(centers, np.nan_to_num(np.abs(confidence - accuracy)),
             bottom=np.nan_to_num(np.minimum(confidence, accuracy)), width=width, fill=False,
             hatch="//", edgecolor="tab:red", label="Gap to mean confidence")
    bars.plot([0, 1], [0, 1], "k--", label="Perfect calibration")
    bars.set(title=f"Reliability diagram (ECE {ece:.4f}, {len(centers)} bins)",
             xlabel="Confidence (top-1 probability)", ylabel="Accuracy", xlim=(0, 1),
             ylim=(0, 1))
    bars.legend(loc="upper left")
    histogram.bar(centers, reliability["count"], width=width, edgecolor="black",
                  color="tab:gray")
    histogram.set(title="Examples per confidence bin", xlabel="Confidence",
                  ylabel="Examples", xlim=(0, 1), yscale="log")
    return _png(figure)


def learning_curves_png(history, diagnosis):
    """Draws training vs validation loss (and accuracy when recorded), marking the verdict."""
    from matplotlib.ticker import MaxNLocator  # matplotlib loads on first use (see above)

    panels = [("loss", "Loss")] + (
        [("accuracy", "Accuracy")] if "accuracy" in history and "val_accuracy" in history
        else [])
    figure = _figure(5 * len(panels), 4)
    axes_list = np.atleast_1d(figure.subplots(1, len(panels)))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axes, (key, title) in zip(axes_list, panels):
        axes.plot(epochs, history[key], "o-", label="Training")
        axes.plot(epochs, history[f"val_{key}"], "s-", label="Validation")
        axes.axvline(diagnosis.best_epoch, color="gray", linestyle=":",
                     label=f"Lowest validation loss (epoch {diagnosis.best_epoch})")
        if diagnosis.overfitting_epoch:
            axes.axvspan(diagnosis.overfitting_epoch - 0.5, epochs[-1] + 0.5, color="tab:red",
                         alpha=0.1, label=f"Overfitting from epoch {diagnosis.overfitting_epoch}")
        axes.set(title=title, xlabel="Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize=8)
    figure.suptitle(f"Learning curves: {diagnosis.verdict}")
    return _png(figure)


def confidence_png(predictors):
    """Draws accuracy against coverage and the entropy of right and wrong predictions.

    Args:
        predictors: {label: (accuracy_by_coverage dict, entropy array, correct bool array)}.
    """
    figure = _figure(11, 4.5)
    coverage_axes, entropy_axes = figure.subplots(1, 2)
    top_entropy = max(float(entropy.max()) for _, entropy, _ in predictors.values())
    bins = np.linspace(0.0, max(top_entropy, 1e-3), 30)
    for (label, (curve, entropy, correct)), color in zip(
            predictors.items(), ("tab:blue", "tab:orange", "tab:green")):
        coverage_axes.plot(curve["coverage"], curve["accuracy"], "o-", color=color, label=label)
        for mask, style, outcome in ((correct, "-", "right"), (~correct, "--", "wrong")):
            if mask.any():
                entropy_axes.hist(entropy[mask], bins=bins, histtype="step", linestyle=style,
                                  color=color, density=True, label=f"{label}: {outcome}")
    coverage_axes.set(title="Accuracy on the most confident examples",
                      xlabel="Fraction of examples kept (most confident first)",
                      ylabel="Accuracy")
    coverage_axes.legend()
    entropy_axes.set(title="Predictive entropy", xlabel="Entropy (nats)", ylabel="Density",
                     yscale="log")
    entropy_axes.legend(fontsize=8)
    return _png(figure)


def mistakes_png(images, captions):
    """Draws a gallery of images (channels-last, any value range) with one caption each."""
    columns = min(len(images), 8)
    rows = -(-len(images) // columns)
    # A fixed grid: the constrained layout engine measured every hidden axis, most of the
    # report's drawing time (1.8 s for 24 images); captions fit the 0.3 inch above each image.
    figure = _figure(1.6 * columns, 1.9 * rows, layout=None)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.3 / (1.9 * rows),
                           wspace=0.15, hspace=0.3 / 1.6)
    for axes, image, caption in zip(
            np.atleast_1d(figure.subplots(rows, columns)).ravel(), images, captions):
        image = np.asarray(image, dtype=np.float64)
        span = image.max() - image.min()
        image = (image - image.min()) / span if span > 0 else np.zeros_like(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        axes.set_title(caption, fontsize=8)
    for axes in figure.axes:
        axes.set_axis_off()
    return _png(figure)
