"""Array layout and validation: examples get a channel axis, labels become class indices.

The rank rule for arrays without an explicit `kind`:

| rank of x           | read as                                          | example shape kept |
| ------------------- | ------------------------------------------------ | ------------------ |
| 2: (N, L)           | 1D signals, one channel                          | (L, 1)             |
| 3: (N, L, C)        | 1D signals if C == 1 or L >= 8·C (length ≫ channels) | (L, C)         |
| 3: (N, H, W)        | grey images otherwise; refused as ambiguous if W <= 4 and H >= 2·W | (H, W, 1) |
| 4: (N, H, W, C)     | images, C in {1, 3, 4}                           | (H, W, C)          |
| 5: (N, D, H, W, C)  | volumes                                          | (D, H, W, C)       |

Pass `kind="image"` for grey images the rule reads as signals (a 128×16 spectrogram, say),
`kind="signal"` for short signals with many channels, `kind="volume"` for (N, D, H, W)
without channels, and `kind="image"` for images with more than 4 channels.
"""

import numpy as np
import tensorflow as tf

from kerascnn.errors import InputError

KINDS = ("image", "signal", "volume")

# Ranks of x, (without channels, with channels), for each kind.
_RANKS = {"signal": (2, 3), "image": (3, 4), "volume": (4, 5)}
_CHUNK = 4096
# A rank-3 array (N, L, C) whose length is at least this many times its last axis holds signals.
_SIGNAL_RATIO = 8
_PIXEL_TYPES = {
    "b": ("booleans", " Convert masks with x.astype(np.uint8) * 255."),
    "c": ("complex numbers", " Use magnitudes (np.abs(x)) or stack the real and imaginary "
          "parts as channels (np.stack([x.real, x.imag], axis=-1))."),
    "U": ("strings", " Convert text holding numbers with x.astype(np.float32)."),
    "S": ("bytes", " Convert text holding numbers with x.astype(np.float32)."),
    "O": ("Python objects", " Give a numeric array (np.stack of equally shaped examples)."),
}


def check_kind(kind):
    """Raises ValueError unless `kind` is None or one of `KINDS`."""
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS} or None; got kind={kind!r}.")


def infer_kind(shape, kind=None):
    """Returns the kind of examples an array of this shape holds.

    Args:
        shape: shape of the whole array, examples first.
        kind: None to apply the rank rule of this module, or one of `KINDS`.

    Returns:
        One of `KINDS`.

    Raises:
        ValueError: if the rank does not fit `kind`, or is ambiguous without it.
    """
    check_kind(kind)
    rank = len(shape)
    if kind is not None:
        if rank not in _RANKS[kind]:
            expected = " or ".join(str(r) for r in _RANKS[kind])
            raise InputError(
                f"kind={kind!r} needs an array of rank {expected} (examples first); "
                f"got shape {tuple(shape)}."
            )
        return kind
    if rank == 2:
        return "signal"
    if rank == 3:
        length, width = shape[1], shape[2]
        if width == 1 or length >= _SIGNAL_RATIO * width:
            return "signal"
        if width <= 4 and length >= 2 * width:
            raise InputError(
                f"An array of shape {tuple(shape)} is ambiguous: {length}×{width} grey images, "
                f"or signals of length {length} with {width} channels? Pass kind='image' or "
                "kind='signal' (--kind on the command line)."
            )
        return "image"
    if rank == 4:
        if shape[-1] in (1, 3, 4):
            return "image"
        hint = ""
        if shape[1] in (1, 3):
            hint = " It looks channels-first: use np.moveaxis(x, 1, -1) for channels-last."
        raise InputError(
            f"An array of shape {tuple(shape)} is ambiguous: images with {shape[-1]} channels "
            "or volumes (N, D, H, W) without a channel axis? Pass kind='image' or "
            f"kind='volume'.{hint}"
        )
    if rank == 5:
        return "volume"
    raise InputError(
        f"Examples must be arrays of rank 2 to 5 (examples first: signals (N, L[, C]), "
        f"images (N, H, W[, C]), volumes (N, D, H, W[, C])); got shape {tuple(shape)}."
    )


def check_pixel_type(x, split):
    """Raises ValueError unless `x` holds integer or floating-point numbers.

    Args:
        x: NumPy array of examples.
        split: split name for the message ("train", "test", ...).
    """
    if x.dtype.kind in "iuf":
        return
    what, fix = _PIXEL_TYPES.get(x.dtype.kind, (f"values of type {x.dtype}", ""))
    raise InputError(
        f"x_{split} holds {what} (dtype {x.dtype}); examples must be integers or floating-point "
        f"numbers.{fix}"
    )


def check_class_names(names, where="class_names"):
    """Returns class names as a list of distinct str, or raises ValueError.

    Args:
        names: a list, tuple or 1D array of names, one per class.
        where: how to name them in the message.
    """
    if isinstance(names, (str, bytes)) or np.ndim(names) != 1:
        raise InputError(
            f"{where} must be a list of names, one per class; got {names!r}. Give a list "
            "such as ['cat', 'dog'], not one string."
        )
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(names).tolist()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{where} repeats {repeated}: each class needs its own name (per-class metrics "
            "are keyed by name)."
        )
    return names


def with_channel_axis(x, kind):
    """Returns `x` with a trailing channel axis (a view when one is added).

    Args:
        x: NumPy array, examples first.
        kind: one of `KINDS`, as returned by `infer_kind`.
    """
    if x.ndim == _RANKS[kind][0]:
        return x[..., np.newaxis]
    return x


def stack_examples(examples, target_size=None, what="images"):
    """Stacks a list of per-example arrays, resizing images to `target_size` if given.

    Args:
        examples: list of arrays (H, W) or (H, W, C), or any same-shaped arrays.
        target_size: (height, width) to resize every image to, or None.
        what: how to name the examples in error messages.

    Returns:
        One array, examples first, in the examples' dtype.

    Raises:
        ValueError: if the examples differ in shape and no `target_size` is given.
    """
    if not len(examples):
        raise InputError(f"No {what} to load.")
    if target_size is not None:
        examples = [resize_image(e, target_size) for e in examples]
    shapes = {}
    for e in examples:
        shapes[np.shape(e)] = shapes.get(np.shape(e), 0) + 1
    check_one_shape(shapes, what)
    return np.stack(examples)


def check_one_shape(counts, what, noun="shapes"):
    """Raises ValueError naming the most common shapes when `counts` ({shape: examples of
    that shape}) holds more than one; `what` and `noun` name the examples and their shapes."""
    if len(counts) > 1:
        common = sorted(counts.items(), key=lambda item: -item[1])[:5]
        listed = ", ".join(f"{shape} x{count}" for shape, count in common)
        raise InputError(
            f"The {what} have {len(counts)} different {noun} ({listed}"
            f"{', ...' if len(counts) > 5 else ''}). Pass target_size=(height, width) "
            "to resize them all when loading."
        )


def resize_image(image, size):
    """Resizes one image (H, W[, C]) to `size` (bilinear, antialiased), keeping its dtype."""
    if len(size) != 2:
        raise InputError(f"target_size must be (height, width); got {size!r}.")
    image = np.asarray(image)
    if image.shape[:2] == tuple(size):
        return image
    grey = image.ndim == 2
    pixels = image[..., np.newaxis] if grey else image
    resized = tf.image.resize(pixels, size, antialias=True).numpy()
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        resized = np.clip(np.round(resized), info.min, info.max)
    resized = resized.astype(image.dtype)
    return resized[..., 0] if grey else resized


def check_finite(x, split):
    """Raises ValueError if a floating-point array holds NaN or infinite values."""
    if not np.issubdtype(x.dtype, np.floating):
        return
    for start in range(0, len(x), _CHUNK):
        bad = ~np.isfinite(x[start : start + _CHUNK])
        if bad.any():
            index = start + int(np.argwhere(bad.reshape(len(bad), -1).any(axis=1))[0, 0])
            raise InputError(
                f"x_{split} holds NaN or infinite values (first in example {index}). "
                "Clean or drop those examples before loading."
            )


def observed_range(x, positions=None):
    """Returns (min, max) of the examples of `x` at `positions` (all if None), in chunks."""
    positions = np.arange(len(x)) if positions is None else positions
    lows, highs = [], []
    for start in range(0, len(positions), _CHUNK):
        chunk = x[positions[start : start + _CHUNK]]
        lows.append(chunk.min())
        highs.append(chunk.max())
    return (np.min(lows).item(), np.max(highs).item())


def to_class_indices(y, split, class_names=None):
    """Turns labels into int64 class indices and returns them with the class names.

    Labels may be integers (or integral floats), strings, a column (N, 1) or one-hot rows
    (N, C). Integer labels count classes from 0; string labels are sorted to give the
    class order unless `class_names` is given.

    Args:
        y: the labels.
        split: split name for error messages ("train", "test", ...).
        class_names: the known class names, or None to infer them.

    Returns:
        (y as int64 array (N,), class_names as list of str)

    Raises:
        ValueError: for labels that are not class indices or fall outside the classes.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
            raise InputError(
                f"y_{split} has shape {y.shape}: 2D labels must be one-hot rows; "
                "pass integer class indices instead."
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise InputError(f"y_{split} must be a vector of class labels; got shape {y.shape}.")
    if y.dtype.kind in "USO":
        return _string_labels(y, split, class_names)
    if y.dtype.kind == "f":
        fractional = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(fractional):
            i = fractional[0]
            raise InputError(
                f"y_{split} must hold integer class indices; got {y[i]!r} at index {i}. For "
                "real-valued targets train a regressor: task='regression' (--task regression)."
            )
    elif y.dtype.kind not in "iub":
        raise InputError(f"y_{split} must hold class indices or names; got dtype {y.dtype}.")
    if not len(y):
        raise InputError(f"y_{split} is empty.")
    # Checked before the cast to int64, which would wrap uint64 labels to negative numbers.
    if class_names is None:
        top = y.max()
        if top >= len(y):
            index = int(np.argmax(y))
            raise InputError(
                f"y_{split} holds label {top} (index {index}) but has only {len(y)} examples: "
                "labels must be class indices 0..K-1. Renumber them (np.unique(y, "
                "return_inverse=True)[1]) or pass class_names."
            )
        class_names = [str(i) for i in range(max(int(top) + 1, 0))]
    bad = np.flatnonzero((y < 0) | (y >= len(class_names)))
    if len(bad):
        raise InputError(
            f"y_{split} holds label {y[bad[0]]} (index {bad[0]}), outside the "
            f"{len(class_names)} classes 0..{len(class_names) - 1}."
        )
    return y.astype(np.int64), list(class_names)


def to_targets(y, split):
    """Turns regression targets into a float32 array (N, targets), checked.

    Args:
        y: real-valued targets: a vector (N,) or (N, targets), of a floating-point dtype.
        split: split name for error messages ("train", "test", ...).

    Raises:
        ValueError: for class labels (strings, integers, one-hot rows), a rank above 2, or
            NaN or infinite targets.
    """
    y = np.asarray(y)
    if y.dtype.kind in "USOb" or y.dtype.kind in "iu":
        what = "class names" if y.dtype.kind in "USO" else f"{y.dtype} class labels"
        raise InputError(
            f"y_{split} holds {what}, but task='regression' needs real-valued targets. Train a "
            "classifier (task='classification'), or pass numeric targets as floats "
            "(y.astype('float32')).")
    if y.dtype.kind != "f":
        raise InputError(f"y_{split} must hold real-valued targets; got dtype {y.dtype}.")
    if y.ndim not in (1, 2) or not len(y):
        raise InputError(f"y_{split} must be targets of shape (examples,) or (examples, "
                         f"targets); got shape {y.shape}.")
    bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
    if len(bad):
        raise InputError(f"y_{split} holds NaN or infinite targets (first at example "
                         f"{bad[0]}). Drop or fill those examples before training.")
    y = y.reshape(len(y), -1).astype(np.float32)
    if y.shape[1] > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        raise InputError(
            f"y_{split} holds one-hot rows (class labels), but task='regression' needs "
            "real-valued targets. Train a classifier (task='classification').")
    return y


def _string_labels(y, split, class_names):
    y = y.astype(str)
    if class_names is None:
        class_names = sorted(set(y.tolist()))
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(y.tolist()) - lookup.keys())
    if unknown:
        raise InputError(
            f"y_{split} holds labels {unknown[:5]} that are not among the classes "
            f"{list(class_names)}."
        )
    return np.array([lookup[name] for name in y.tolist()], dtype=np.int64), list(class_names)


def check_classes(y, class_names, split="train"):
    """Raises ValueError for fewer than two classes or a class without examples."""
    if len(class_names) < 2:
        raise InputError(
            f"A classifier needs at least two classes; got {len(class_names)} "
            f"({list(class_names)})."
        )
    counts = np.bincount(y, minlength=len(class_names))
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise InputError(
            f"Classes {empty} have no examples in the {split} split. Integer labels "
            "must run 0..K-1 (subtract 1 from labels counted from 1), and every class "
            "needs examples."
        )
