"""Cutout (DeVries & Taylor, 2017): a square at a uniform centre, clipped, set to mid-grey."""

import numpy as np
import pytest

from kerascnn.data.augment import Cutout, augmentation, parse_spec

SIDE, SIZE = 32, 8


def _interval(mask_1d):
    """(start, stop) of the one run of True in a 1-D mask."""
    where = np.flatnonzero(mask_1d)
    assert len(where) and np.array_equal(where, np.arange(where[0], where[-1] + 1))
    return where[0], where[-1] + 1


def _hidden(count, seed=0):
    images = np.full((count, SIDE, SIDE, 3), 10.0, np.float32)
    labels = np.eye(10, dtype=np.float32)[np.arange(count) % 10]
    out, out_labels = augmentation(f"cutout={SIZE}", seed=seed, value_range=(0, 255),
                                   input_shape=(SIDE, SIDE, 3))(images, labels)
    np.testing.assert_array_equal(np.asarray(out_labels), labels)
    out = np.asarray(out)
    assert set(np.unique(out)) <= {10.0, 127.5}  # untouched, or the middle of (0, 255)
    hidden = out == 127.5
    assert (hidden == hidden[..., :1]).all()  # the same square in every channel
    return hidden[..., 0]


def test_each_image_hides_one_square_clipped_at_the_borders():
    # Every clipped window [max(c - 4, 0), min(c + 4, 32)) that a centre c in [0, 32) gives.
    windows = {(max(c - SIZE // 2, 0), min(c - SIZE // 2 + SIZE, SIDE)) for c in range(SIDE)}
    for mask in _hidden(64):
        rows, columns = _interval(mask.any(axis=1)), _interval(mask.any(axis=0))
        assert rows in windows and columns in windows
        expected = np.zeros((SIDE, SIDE), bool)
        expected[slice(*rows), slice(*columns)] = True
        np.testing.assert_array_equal(mask, expected)  # a rectangle, nothing else


def test_centres_are_uniform_over_the_image():
    masks = _hidden(4000, seed=3)
    # The expected share of pixels hidden, over centres drawn uniformly from the 32 x 32.
    lengths = np.array([min(c - SIZE // 2 + SIZE, SIDE) - max(c - SIZE // 2, 0)
                        for c in range(SIDE)])
    expected = lengths.mean() ** 2 / SIDE ** 2
    assert abs(masks.mean() - expected) < 0.005, (masks.mean(), expected)
    per_row = masks.mean(axis=(0, 2))
    assert per_row[0] > 0 and per_row[-1] > 0  # the corners are reached, clipped
    assert per_row[0] < 0.75 * per_row[SIDE // 2]  # and less often than the middle


def test_a_seed_repeats_the_squares_and_another_moves_them():
    np.testing.assert_array_equal(_hidden(16, seed=1), _hidden(16, seed=1))
    assert not np.array_equal(_hidden(16, seed=1), _hidden(16, seed=2))


@pytest.mark.parametrize("spec, message", [
    ("cutout=0", r"cutout=0: the value must be a whole number of pixels >= 1"),
    ("cutout=2.5", r"cutout=2.5: the value must be a whole number of pixels"),
])
def test_bad_sizes_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_a_square_as_large_as_the_image_is_refused():
    with pytest.raises(ValueError, match=r"cutout=32 covers these 32x32 images whole"):
        augmentation("cutout=32", input_shape=(32, 32, 3))


def test_the_layer_rebuilt_from_its_config_hides_the_same_squares():
    layer = Cutout(12, fill=0.5, seed=4)
    again = Cutout.from_config(layer.get_config())
    images, seed = np.ones((8, SIDE, SIDE, 3), np.float32), np.array([5, 6])
    hidden = np.asarray(layer.augment(images, seed))
    assert set(np.unique(hidden)) == {0.5, 1.0}
    np.testing.assert_array_equal(np.asarray(again.augment(images, seed)), hidden)
