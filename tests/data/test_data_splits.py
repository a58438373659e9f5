"""Stratified validation splits and k-fold cross-validation folds."""

import tracemalloc

import numpy as np
import pytest

from kerascnn.data import load

COUNTS = (50, 30, 20)


@pytest.fixture(scope="module")
def numbered():
    """Class-sorted data whose example i is the constant image i, to trace each example."""
    labels = np.repeat(np.arange(len(COUNTS)), COUNTS)
    images = np.repeat(np.arange(len(labels), dtype=np.float32), 16).reshape(-1, 4, 4)
    return load((images, labels), test_split=None, seed=0)


def _ids(x):
    return set(x[:, 0, 0, 0].astype(int).tolist())


def test_validation_split_is_stratified_and_disjoint(numbered):
    data = numbered.with_validation(0.2, seed=5)
    train, validation = _ids(data.x_train), _ids(data.x_val)
    assert not train & validation and train | validation == set(range(sum(COUNTS)))
    assert data.class_counts("validation") == [round(0.2 * n) for n in COUNTS]
    again = numbered.with_validation(0.2, seed=5)
    other = numbered.with_validation(0.2, seed=6)
    assert _ids(again.x_val) == validation and _ids(other.x_val) != validation


def test_load_validation_split_equals_with_validation(mnist_arrays):
    direct = load(mnist_arrays, validation_split=0.1, seed=3)
    later = load(mnist_arrays, seed=3).with_validation(0.1, seed=3)
    np.testing.assert_array_equal(direct.x_val, later.x_val)
    assert direct.size("test") == 200


def test_folds_partition_the_training_data_by_class(numbered):
    folds = list(numbered.with_validation(0.2).folds(5, seed=1))
    assert len(folds) == 5
    held_out = []
    for train_data, validation_data in folds:
        train, validation = _ids(train_data.x_train), _ids(validation_data.x_val)
        assert not train & validation and train | validation == set(range(sum(COUNTS)))
        assert _ids(train_data.x_val) == validation == _ids(validation_data.x_test)
        assert validation_data.size("train") == 0
        assert validation_data.class_counts("validation") == [n // 5 for n in COUNTS]
        held_out.append(validation)
    assert set().union(*held_out) == set(range(sum(COUNTS)))
    assert sum(len(v) for v in held_out) == sum(COUNTS)


def test_folds_share_the_arrays(mnist_arrays):
    data = load(mnist_arrays, test_split=None)
    tracemalloc.start()
    try:
        folds = list(data.folds(5, seed=0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Five folds of 600 images of 784 bytes: copies would take 5 x 470 kB; indices take 24 kB.
    assert len(folds) == 5 and peak < data.x_train.nbytes / 4


@pytest.mark.parametrize("k, message", [(1, "at least 2 folds"), (21, "fewer than k=21 folds")])
def test_bad_fold_counts_are_refused(numbered, k, message):
    with pytest.raises(ValueError, match=message):
        next(numbered.folds(k))
