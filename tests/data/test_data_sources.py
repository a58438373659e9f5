"""Sources of `kerascnn.data.load`: the offline MNIST copy, digits, .npz files and arrays."""

import hashlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from kerascnn.data import DATA_DIR_ENV, load

# From shared/datasets/README.md: the official MNIST test split.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_SHA256 = "b893c66382ee7bf0d9bf589cd860596cb26965fb02ae7df5959911bf68f388dc"


def test_mnist_offline_copy_matches_the_published_split(data_dir):
    data = load("mnist", data_dir=data_dir, download=False)
    assert (data.size("train"), data.size("test")) == (60000, 10000)
    assert data.input_shape == (28, 28, 1) and data.dtype == np.uint8
    assert data.value_range == (0, 255)
    assert data.class_names == [str(i) for i in range(10)]
    assert data.class_counts("test") == MNIST_TEST_COUNTS
    assert data.y_test[:10].tolist() == MNIST_FIRST_TEST_LABELS
    assert data.sha256 == MNIST_SHA256
    # The usual MNIST normalisation constant, on a 0-1 scale.
    assert data.x_train.mean() / 255 == pytest.approx(0.1307, abs=5e-4)


def test_mnist_found_through_the_environment_variable(data_dir, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    data = load("mnist", download=False, validation_split=0.1)
    assert data.split_names == ("train", "validation", "test")
    assert data.size("train") + data.size("validation") == 60000


def test_missing_offline_copy_explains_both_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as error:
        load("fashion_mnist", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "fashion_mnist.npz" in message and "data_dir" in message
    assert DATA_DIR_ENV in message and "internet" in message


def test_digits_hold_every_scikit_learn_image_once():
    data = load("digits", test_split=0.2, seed=1)
    reference = load_digits()
    assert data.input_shape == (8, 8, 1) and data.value_range == (0, 16)
    assert data.size("train") + data.size("test") == len(reference.target)

    def sorted_rows(x, y):
        rows = np.column_stack([x.reshape(len(x), -1).astype(int), y])
        return rows[np.lexsort(rows.T[::-1])]

    ours = sorted_rows(
        np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])
    )
    np.testing.assert_array_equal(ours, sorted_rows(reference.images, reference.target))
    # Stratified: each class's test share is 20%, to the example.
    expected = np.round(0.2 * np.bincount(reference.target))
    assert np.abs(np.array(data.class_counts("test")) - expected).max() <= 1


def test_npz_file_in_keras_layout(tmp_path, mnist_arrays):
    (x_train, y_train), (x_test, y_test) = mnist_arrays
    path = tmp_path / "subset.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load(str(path))
    assert data.name == "subset"
    np.testing.assert_array_equal(data.x_test[..., 0], x_test)
    np.testing.assert_array_equal(data.y_train, y_train)
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_npz_without_keras_keys_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((4, 8, 8)), labels=np.arange(4))
    with pytest.raises(ValueError, match="x_train, y_train"):
        load(str(path))


def test_keras_datasets_tuple_and_grey_channel_axis(mnist_arrays):
    (x_train, y_train), (x_test, _) = mnist_arrays
    data = load(mnist_arrays)
    assert data.input_shape == (28, 28, 1)
    # The channel axis is a view on the caller's array, not a copy.
    assert np.shares_memory(data.x_test, x_test)
    np.testing.assert_array_equal(data.x_train[..., 0], x_train)
    assert data.size("train") == len(y_train)


def test_single_array_pair_gets_a_stratified_test_split(mnist_arrays):
    (x, y), _ = mnist_arrays
    data = load((x, y), test_split=0.25, seed=3)
    assert data.size("train") + data.size("test") == len(y)
    expected = np.round(0.25 * np.bincount(y))
    assert np.abs(np.array(data.class_counts("test")) - expected).max() <= 1
    assert load((x, y), test_split=None).split_names == ("train",)


@pytest.mark.parametrize(
    "shape, kind, input_shape",
    [
        ((30, 64), None, (64, 1)),
        ((30, 64, 2), "signal", (64, 2)),
        ((30, 16, 16), None, (16, 16, 1)),
        ((30, 16, 16, 3), None, (16, 16, 3)),
        ((30, 6, 8, 8), "volume", (6, 8, 8, 1)),
        ((30, 6, 8, 8, 2), None, (6, 8, 8, 2)),
    ],
)
def test_layouts_of_user_arrays(shape, kind, input_shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    y = np.arange(shape[0]) % 3
    data = load((x, y), kind=kind, test_split=None)
    assert data.input_shape == input_shape
    assert data.kind == (kind or {2: "signal", 5: "volume"}.get(len(shape), "image"))
    assert data.value_range == (float(x.min()), float(x.max()))


def test_class_sorted_arrays_come_out_mixed():
    rng = np.random.default_rng(0)
    cats = rng.integers(0, 255, (100, 8, 8), dtype=np.uint8)
    dogs = rng.integers(0, 255, (60, 8, 8), dtype=np.uint8)
    data = load({"cat": cats, "dog": dogs}, test_split=None)
    assert data.class_names == ["cat", "dog"] and data.class_counts("train") == [100, 60]
    _, labels = next(iter(data.pipeline("train", 32)))
    assert set(np.argmax(labels, axis=1).tolist()) == {0, 1}


def test_string_labels_become_sorted_classes():
    x = np.zeros((6, 4, 4), np.uint8)
    data = load((x, np.array(["dog", "cat", "dog", "cat", "bird", "bird"])), test_split=None)
    assert data.class_names == ["bird", "cat", "dog"]
    assert data.y_train.tolist() == [2, 1, 2, 1, 0, 0]


def test_describe_is_json_ready(mnist_small):
    import json

    described = json.loads(json.dumps(mnist_small.describe()))
    assert described["splits"]["test"]["size"] == 200
    assert sum(described["splits"]["train"]["class_counts"]) == 600


def test_unknown_source_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10, cifar100, 'digits'"):
        load("no_such_data_set")


@pytest.mark.parametrize(
    "shape, kind, expected",
    [
        ((30, 40, 1), None, ("signal", (40, 1))),  # width 1: signals with one channel
        ((30, 128, 9), None, ("signal", (128, 9))),  # length >> channels (HAR-like)
        ((30, 28, 28), None, ("image", (28, 28, 1))),
        ((30, 6, 6), None, ("image", (6, 6, 1))),
        ((30, 128, 16), "image", ("image", (128, 16, 1))),  # a spectrogram, said so
    ],
)
def test_rank_three_arrays_read_as_signals_when_not_image_like(shape, kind, expected):
    x = np.zeros(shape, np.float32)
    data = load((x, np.arange(30) % 3), kind=kind, test_split=None)
    assert (data.kind, data.input_shape) == expected


def test_rank_three_array_between_signal_and_image_asks_for_kind():
    x, y = np.zeros((30, 12, 3), np.float32), np.arange(30) % 3
    with pytest.raises(ValueError, match=r"ambiguous: 12×3 grey images, or signals .*kind='signal'"):
        load((x, y), test_split=None)
    assert load((x, y), kind="signal", test_split=None).input_shape == (12, 3)


def _npz_bytes(tmp_path, **arrays):
    path = tmp_path / "source.npz"
    np.savez(path, **arrays)
    return path, path.read_bytes()


def test_unreadable_npz_files_are_named_with_the_fix(tmp_path):
    x, y = np.zeros((8, 4, 4), np.uint8), np.arange(8) % 2
    path, content = _npz_bytes(tmp_path, x_train=x, y_train=y)
    for name, data in (("empty.npz", b""), ("cut.npz", content[: len(content) // 2])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name} cannot be read as a \.npz .*np\.savez"):
            load(str(tmp_path / name))
    np.save(tmp_path / "array.npy", x)
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    with pytest.raises(ValueError, match=r"array\.npz holds a single array \(a \.npy file"):
        load(str(tmp_path / "array.npz"))
