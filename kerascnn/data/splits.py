"""Stratified hold-out splits, subsets and stratified k-fold indices."""

import warnings

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from kerascnn.errors import InputError


def check_fraction(fraction, argument):
    """Raises ValueError unless 0 < fraction < 1."""
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise InputError(
            f"{argument} must be a fraction strictly between 0 and 1; got {fraction!r}."
        )


def stratified_split(y, fraction, seed, *, argument="validation_split", class_names=None):
    """Splits positions 0..len(y)-1 into kept and held-out parts, class by class.

    Each class with n >= 2 examples sends round(fraction * n) of them (at least 1, at most
    n - 1) to the held-out part, chosen at random with `seed`; classes with a single example
    stay in the kept part, with a warning naming them.

    Args:
        y: int class indices.
        fraction: share of each class to hold out, 0 < fraction < 1.
        seed: int seed of the random choice.
        argument: the option that asked for the split, for messages ("test_split", ...).
        class_names: names of the classes, for messages (default: their indices).

    Returns:
        (kept, held_out): sorted int64 position arrays.

    Raises:
        ValueError: when no class has two examples, so the held-out part would be empty.
    """
    rng = np.random.default_rng(seed)
    held_out, single = [], []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            single.append(class_names[label] if class_names is not None else int(label))
            continue
        count = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        held_out.append(rng.permutation(members)[:count])
    if not held_out:
        raise InputError(
            f"{argument}={fraction} holds out nothing: every class has a single example, so "
            "the held-out split would be empty (and its metrics too). Give each class at least "
            f"two examples, or pass {argument}=None."
        )
    if single:
        warnings.warn(
            f"{argument}: classes {single[:10]}{' ...' if len(single) > 10 else ''} have a "
            "single example; it stays in training and the held-out split lacks them.",
            stacklevel=3,
        )
    held_out = np.sort(np.concatenate(held_out))
    kept = np.setdiff1d(np.arange(len(y)), held_out)
    return kept.astype(np.int64), held_out.astype(np.int64)


def subset_positions(y, size, seed, *, stratify=True, argument="train_size"):
    """`size` of the positions 0..len(y)-1, drawn with `seed`: each class in proportion when
    `stratify` (scikit-learn's `StratifiedShuffleSplit`), else at random (`ShuffleSplit`).

    Returns:
        The chosen positions, a sorted int64 array.

    Raises:
        ValueError: unless `size` is an integer from the number of classes (1 without
            `stratify`) to len(y) - 1.
    """
    n = len(y)
    classes = len(np.unique(y)) if stratify else 1
    if (isinstance(size, bool) or not isinstance(size, (int, np.integer))
            or not classes <= size < n):
        raise InputError(
            f"{argument}={size!r} must be a whole number of examples from {classes} (one per "
            f"class) to {n - 1} (the {n} training examples, less one); leave it unset to use "
            "them all.")
    splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
        1, train_size=int(size), test_size=None, random_state=seed)
    chosen, _ = next(splitter.split(np.zeros(n), y if stratify else None))
    return np.sort(chosen).astype(np.int64)


def stratified_folds(y, k, seed, class_names):
    """Returns the k (train, validation) position pairs of a shuffled stratified k-fold.

    Args:
        y: int class indices.
        k: number of folds, at least 2 and at most the smallest class size.
        seed: int seed of the shuffle.
        class_names: names for error messages.

    Raises:
        ValueError: for k < 2 or a class with fewer than k examples.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise InputError(f"k must be an integer of at least 2 folds; got k={k!r}.")
    counts = np.bincount(y, minlength=len(class_names))
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        raise InputError(
            f"Class {class_names[smallest]!r} has {counts[smallest]} training examples, "
            f"fewer than k={k} folds: every fold needs each class. Use k <= {counts[smallest]}."
        )
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (train.astype(np.int64), validation.astype(np.int64))
        for train, validation in folds.split(np.zeros(len(y)), y)
    ]


def shuffled_split(n, fraction, seed):
    """Splits positions 0..n-1 into kept and held-out parts at random (regression targets,
    which have no classes to stratify by): round(fraction * n) held out, at least 1.

    Returns:
        (kept, held_out): sorted int64 position arrays.

    Raises:
        ValueError: for fewer than two examples.
    """
    if n < 2:
        raise InputError(f"cannot hold out a fraction of {n} example(s); give at least two.")
    held = min(max(int(round(fraction * n)), 1), n - 1)
    kept, held_out = next(ShuffleSplit(1, test_size=held, random_state=seed).split(np.zeros(n)))
    return np.sort(kept).astype(np.int64), np.sort(held_out).astype(np.int64)


def shuffled_folds(n, k, seed):
    """Returns the k (train, validation) position pairs of a shuffled (unstratified) k-fold."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 2 <= k <= n:
        raise InputError(f"k must be an integer from 2 to the {n} examples; got k={k!r}.")
    return [(train.astype(np.int64), validation.astype(np.int64))
            for train, validation in KFold(k, shuffle=True, random_state=seed).split(np.zeros(n))]
