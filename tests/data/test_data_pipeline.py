"""The tf.data pipeline: order, shuffling, determinism and where augmentation applies."""

import numpy as np
import pytest

from kerascnn.data import load


def _epoch(dataset):
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def test_test_pipeline_returns_the_arrays_in_order(mnist_small):
    x, y = _epoch(mnist_small.pipeline("test", 64))
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(x, mnist_small.x_test.astype(np.float32))
    np.testing.assert_array_equal(y, np.eye(10, dtype=np.float32)[mnist_small.y_test])


def test_train_pipeline_shuffles_each_epoch_and_repeats_for_a_seed(mnist_small):
    dataset = mnist_small.pipeline("train", 100)
    first, labels = _epoch(dataset)
    second, _ = _epoch(dataset)
    x = mnist_small.x_train.astype(np.float32)
    # Every example exactly once per epoch, with its own label.
    order = [np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0] for image in first]
    assert sorted(order) == list(range(len(x)))
    np.testing.assert_array_equal(labels.argmax(axis=1), mnist_small.y_train[order])
    assert not np.array_equal(first, second)
    replay_first, _ = _epoch(mnist_small.pipeline("train", 100))
    np.testing.assert_array_equal(first, replay_first)
    other_seed, _ = _epoch(mnist_small.pipeline("train", 100, seed=1))
    assert not np.array_equal(first, other_seed)


def test_augmentation_is_repeatable_for_a_seed(mnist_small):
    def first_batches(seed):
        dataset = mnist_small.pipeline("train", 64, augment="rotate=10,lens,mixup", seed=seed)
        return [x for x, _ in dataset.take(3).as_numpy_iterator()]

    reference = first_batches(7)
    assert all(np.array_equal(a, b) for a, b in zip(reference, first_batches(7)))
    assert not np.array_equal(reference[0], first_batches(8)[0])


def test_augmentation_changes_every_epoch_and_replays_for_a_seed(mnist_small):
    def two_epochs():
        dataset = mnist_small.pipeline("train", 200, augment="rotate=10,crop=0.8", shuffle=False)
        return _epoch(dataset)[0], _epoch(dataset)[0]

    first, second = two_epochs()
    assert not np.array_equal(first, second)
    replay_first, replay_second = two_epochs()
    np.testing.assert_array_equal(first, replay_first)
    np.testing.assert_array_equal(second, replay_second)


def test_augmented_batches_keep_their_static_shape(mnist_small):
    dataset = mnist_small.pipeline("train", 64, augment="flip,rotate,lens,brightness,cutmix")
    assert dataset.element_spec[0].shape.as_list() == [None, 28, 28, 1]
    x, y = next(iter(dataset))
    assert x.shape == (64, 28, 28, 1) and y.shape == (64, 10)


def test_augmentation_applies_to_the_train_split_only(mnist_small):
    with pytest.raises(ValueError, match="train split only"):
        mnist_small.pipeline("test", 32, augment="flip")
    clean, _ = _epoch(mnist_small.pipeline("test", 64, augment=""))
    np.testing.assert_array_equal(clean, mnist_small.x_test.astype(np.float32))


def test_flip_mirrors_some_images_and_keeps_the_others(mnist_small):
    dataset = mnist_small.pipeline("train", 600, augment="flip", shuffle=False)
    x, _ = _epoch(dataset)
    raw = mnist_small.x_train.astype(np.float32)
    same = (x == raw).all(axis=(1, 2, 3))
    mirrored = (x == raw[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all() and 200 < mirrored.sum() < 400


def test_absent_split_says_how_to_get_it(mnist_small):
    with pytest.raises(ValueError, match="validation_split"):
        mnist_small.pipeline("validation", 32)
    with pytest.raises(ValueError, match="batch_size"):
        mnist_small.pipeline("train", 0)


def test_signals_train_without_augmentation():
    signals = np.random.default_rng(0).normal(size=(40, 32)).astype(np.float32)
    data = load((signals, np.arange(40) % 2), test_split=None)
    x, _ = next(iter(data.pipeline("train", 8)))
    assert x.shape == (8, 32, 1)
    with pytest.raises(ValueError, match="Augmentations work on images"):
        data.pipeline("train", 8, augment="flip")
