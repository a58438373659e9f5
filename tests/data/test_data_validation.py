"""Bad data is refused by `load` with a ValueError that says what is wrong, before training."""

import numpy as np
import pytest

from kerascnn.data import load

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 255, (12, 6, 6), dtype=np.uint8)
LABELS = np.arange(12) % 3


def _with(array, index, value):
    array = array.astype(np.float32)
    array[index] = value
    return array


@pytest.mark.parametrize(
    "x, y, kwargs, message",
    [
        (IMAGES, np.where(LABELS == 2, 3, LABELS), {"class_names": ["a", "b", "c"]}, "label 3"),
        (IMAGES, LABELS - 1, {}, "label -1"),
        (IMAGES, LABELS + 0.5, {}, "integer class indices"),
        (_with(IMAGES, (4, 2, 2), np.nan), LABELS, {}, "NaN or infinite .* example 4"),
        (_with(IMAGES, (7, 0, 0), np.inf), LABELS, {}, "NaN or infinite .* example 7"),
        (IMAGES, LABELS[:10], {}, "12 examples but y_train has 10"),
        (IMAGES, np.where(LABELS == 1, 2, LABELS), {}, r"\['1'\] have no examples"),
        (IMAGES, LABELS + 1, {}, "subtract 1"),
        (IMAGES, np.zeros(12, int), {}, "at least two classes"),
        (IMAGES, ["a", "b"] * 6, {"class_names": ["a", "c"]}, r"\['b'\] that are not among"),
        (IMAGES, np.eye(3)[LABELS] * 0.5, {}, "one-hot"),
        (IMAGES[..., None, None, None], LABELS, {}, "rank 2 to 5"),
    ],
    ids=[
        "label_over",
        "label_negative",
        "label_fraction",
        "nan_pixel",
        "inf_pixel",
        "length_mismatch",
        "empty_class",
        "labels_from_one",
        "single_class",
        "unknown_name",
        "soft_labels",
        "rank_6",
    ],
)
def test_bad_arrays_are_refused(x, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load((x, y), test_split=None, **kwargs)


def test_mixed_image_sizes_need_a_target_size():
    images = [np.zeros((8, 8), np.uint8)] * 3 + [np.zeros((10, 12), np.uint8)] * 3
    with pytest.raises(ValueError, match=r"2 different shapes.*target_size"):
        load((images, [0, 1, 2, 0, 1, 2]), test_split=None)
    data = load((images, [0, 1, 2, 0, 1, 2]), test_split=None, target_size=(8, 8))
    assert data.input_shape == (8, 8, 1)


def test_ambiguous_rank_four_asks_for_kind():
    with pytest.raises(ValueError, match="kind='image' or kind='volume'"):
        load((np.zeros((6, 8, 8, 8)), LABELS[:6]), test_split=None)
    with pytest.raises(ValueError, match="channels-first"):
        load((np.zeros((6, 3, 16, 16)), LABELS[:6]), test_split=None)


def test_test_split_of_another_shape_is_refused():
    source = ((IMAGES, LABELS), (np.zeros((4, 7, 7), np.uint8), LABELS[:4]))
    with pytest.raises(ValueError, match=r"x_test examples have shape \(7, 7, 1\)"):
        load(source)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validation_split": 1.5}, "validation_split must be a fraction"),
        ({"test_split": -0.1}, "test_split must be a fraction"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"kind": "movie"}, "kind must be one of"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load((IMAGES, LABELS), **kwargs)


@pytest.mark.parametrize(
    "x, message",
    [
        (IMAGES.astype(complex), r"x_train holds complex numbers .*np\.abs"),
        (IMAGES > 100, r"x_train holds booleans .*astype\(np\.uint8\)"),
        (IMAGES.astype(str), r"x_train holds strings \(dtype <U3\)"),
    ],
    ids=["complex", "bool", "strings"],
)
def test_pixels_that_are_not_numbers_are_refused(x, message):
    with pytest.raises(ValueError, match=message):
        load((x, LABELS), test_split=None)


@pytest.mark.parametrize(
    "class_names, message",
    [
        (["a", "b", "a"], r"class_names repeats \['a'\]"),
        ("abc", r"class_names must be a list of names.* not one string"),
        (np.array("abc"), r"class_names must be a list of names"),
    ],
    ids=["duplicates", "string", "zero_d_array"],
)
def test_bad_class_names_are_refused(class_names, message):
    with pytest.raises(ValueError, match=message):
        load((IMAGES, LABELS), class_names=class_names, test_split=None)


def test_class_names_stored_in_an_npz_are_checked_too(tmp_path):
    path = tmp_path / "named.npz"
    np.savez(path, x_train=IMAGES, y_train=LABELS, class_names=np.array(["a", "b", "a"]))
    with pytest.raises(ValueError, match=r"class_names of .*named\.npz repeats \['a'\]"):
        load(str(path))


def test_uint64_labels_are_reported_as_stored():
    labels = LABELS.astype(np.uint64)
    labels[5] = 2**64 - 1  # wraps to -1 once cast to int64
    with pytest.raises(ValueError, match=r"label 18446744073709551615 \(index 5\)"):
        load((IMAGES, labels), test_split=None)


def test_one_example_per_class_cannot_give_a_held_out_split():
    x, y = IMAGES[:3], np.arange(3)
    with pytest.raises(ValueError, match=r"test_split=0.2 holds out nothing: every class has a single"):
        load((x, y))
    with pytest.raises(ValueError, match=r"validation_split=0.5 holds out nothing"):
        load((x, y), test_split=None, validation_split=0.5)
    assert load((x, y), test_split=None).size("train") == 3


def test_a_class_with_one_example_is_named_in_a_warning():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    with pytest.warns(UserWarning, match=r"test_split: classes \['2'\] have a single example"):
        data = load((IMAGES[:9], y))
    assert data.class_counts("test") == [1, 1, 0]
