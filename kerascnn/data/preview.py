"""A PNG grid of augmented training samples, to see what the model will see."""

import math

import numpy as np
import tensorflow as tf

from kerascnn.data.augment import augmentation
from kerascnn.errors import InputError
from kerascnn.figures import figure as new_figure
from kerascnn.figures import write_png


def preview(data, augment, path, *, n=16, seed=0):
    """Writes a grid of `n` training images after augmentation to a PNG file, atomically.

    Each image is titled with its class (the two strongest of a MixUp/CutMix mix), or for
    regression data with its target value(s), rounded (mixed too by MixUp/CutMix).

    Args:
        data: a `Data` of images.
        augment: an augmentation spec, a callable (images, labels) -> (images, labels), or
            None for the images as stored.
        path: the PNG file to write.
        n: number of images, drawn at random from the train split.
        seed: seed of the draw and of the augmentation.

    Returns:
        `path`.

    Raises:
        ValueError: for data that are not images, or a bad `n` or spec.
    """
    if data.kind != "image":
        raise InputError(f"preview shows images; {data.name} holds {data.kind}s.")
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer; got n={n!r}.")
    x, y = data.arrays("train")
    chosen = np.sort(np.random.default_rng(seed).choice(len(y), min(n, len(y)), replace=False))
    images = tf.cast(x[chosen], tf.float32)
    if data.task == "regression":
        labels = tf.constant(y[chosen], tf.float32)
    else:
        labels = tf.one_hot(y[chosen], data.num_classes)
    if augment is not None and not callable(augment):
        augment = augmentation(
            augment, seed=seed, value_range=data.value_range, input_shape=data.input_shape
        )
    if augment is not None:
        images, labels = augment(images, labels)
    _write_grid(np.asarray(images), label_titles(np.asarray(labels), data), data, path)
    return path


def label_titles(labels, data):
    """The titles of a grid's images: class names (one-hot or mixed rows), or for regression
    the target values to 3 significant digits ("7", "0.125", "(1.5, 2)" for two targets)."""
    if data.task == "regression":
        return [_target_text(row) for row in labels]
    return [_label_text(row, data.class_names) for row in labels]


def _write_grid(images, titles, data, path):
    low, high = data.value_range
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    figure = new_figure(1.8 * columns, 1.9 * rows, layout="tight")
    for i, (image, title) in enumerate(zip(images, titles)):
        axes = figure.add_subplot(rows, columns, i + 1)
        pixels = np.clip((image - low) / (high - low), 0.0, 1.0)
        if pixels.shape[-1] == 1:
            axes.imshow(pixels[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            axes.imshow(pixels[..., :3])
        axes.set_title(title, fontsize=8)
        axes.axis("off")
    write_png(figure, path)


def _label_text(label, class_names):
    """Names the class, or the two strongest classes of a mixed (MixUp/CutMix) label."""
    order = np.argsort(label)[::-1]
    if label[order[0]] >= 0.995:
        return class_names[order[0]]
    return " / ".join(f"{class_names[i]} {label[i]:.2f}" for i in order[:2])


def _target_text(values):
    text = ", ".join(f"{value:.3g}" for value in values)
    return text if len(values) == 1 else f"({text})"
