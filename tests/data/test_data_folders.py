"""Image folders: one sub-folder per class, with damaged and stray files mixed in."""

import warnings

import numpy as np
import pytest
from PIL import Image

from kerascnn.data import load

RNG = np.random.default_rng(0)


def _write_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def folder(tmp_path):
    """circle/ (4 PNG), square/ (3 PNG), plus a corrupt PNG, a truncated PNG and a text file."""
    root = tmp_path / "shapes"
    written = {}
    for name, count in (("circle", 4), ("square", 3)):
        written[name] = []
        for i in range(count):
            pixels = RNG.integers(0, 255, (10, 12), dtype=np.uint8)
            _write_png(root / name / f"{i}.png", pixels)
            written[name].append(pixels)
    (root / "circle" / "broken.png").write_bytes(b"this is not a png")
    valid = (root / "square" / "0.png").read_bytes()
    (root / "square" / "cut.png").write_bytes(valid[: len(valid) // 2])
    (root / "square" / "notes.txt").write_text("drawn by hand")
    return root, written


def test_folder_is_read_and_bad_files_skipped_with_one_warning(folder):
    root, written = folder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(str(root), test_split=None)
    skipped = [w for w in caught if "Skipped" in str(w.message)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "Skipped 3 of 10 files" in message
    for name in ("broken.png", "cut.png", "notes.txt"):
        assert name in message
    assert data.name == "shapes" and data.class_names == ["circle", "square"]
    assert data.input_shape == (10, 12, 1) and data.dtype == np.uint8
    assert data.y_train.tolist() == [0, 0, 0, 0, 1, 1, 1]
    expected = np.stack(written["circle"] + written["square"])
    np.testing.assert_array_equal(data.x_train[..., 0], expected)


def test_a_class_without_readable_images_is_refused(folder):
    root, _ = folder
    (root / "triangle").mkdir()
    (root / "triangle" / "bad.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    with pytest.raises(ValueError, match="'triangle' has no readable images"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(str(root))


def test_mixed_sizes_need_target_size(tmp_path):
    _write_png(tmp_path / "a" / "0.png", np.zeros((8, 8), np.uint8))
    _write_png(tmp_path / "b" / "0.png", np.full((16, 12), 200, np.uint8))
    with pytest.raises(ValueError, match="target_size"):
        load(str(tmp_path), test_split=None)
    data = load(str(tmp_path), test_split=None, target_size=(8, 8))
    assert data.input_shape == (8, 8, 1)
    np.testing.assert_array_equal(data.x_train[1], np.full((8, 8, 1), 200))


def test_grey_and_colour_images_become_rgb(tmp_path):
    grey = RNG.integers(0, 255, (6, 6), dtype=np.uint8)
    colour = RNG.integers(0, 255, (6, 6, 3), dtype=np.uint8)
    _write_png(tmp_path / "grey" / "0.png", grey)
    Image.fromarray(colour).save(tmp_path / "grey" / "1.jpg", quality=100)
    _write_png(tmp_path / "colour" / "0.png", colour)
    data = load(str(tmp_path), test_split=None)
    assert data.class_names == ["colour", "grey"] and data.input_shape == (6, 6, 3)
    np.testing.assert_array_equal(data.x_train[0], colour)
    np.testing.assert_array_equal(data.x_train[1], np.repeat(grey[..., None], 3, axis=-1))


def test_train_and_test_sub_folders_give_the_splits(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            for i in range(count):
                _write_png(tmp_path / split / name / f"{i}.png", np.full((4, 4), i, np.uint8))
    data = load(str(tmp_path))
    assert data.split_names == ("train", "test")
    assert data.class_counts("train") == [3, 3] and data.class_counts("test") == [2, 2]


def test_mixed_depths_come_out_as_uint8_at_one_scale(tmp_path):
    deep = np.array([[0, 257], [32896, 65535]], np.uint16)  # 0, 1, 128, 255 in 8 bits
    shallow = np.array([[0, 1], [128, 255]], np.uint8)
    _write_png(tmp_path / "deep" / "0.png", deep)
    _write_png(tmp_path / "shallow" / "0.png", shallow)
    data = load(str(tmp_path), test_split=None)
    assert data.dtype == np.uint8 and data.value_range == (0, 255)
    np.testing.assert_array_equal(data.x_train[..., 0], [shallow, shallow])
    colour = np.full((2, 2, 3), 7, np.uint8)
    _write_png(tmp_path / "shallow" / "1.png", colour)
    data = load(str(tmp_path), test_split=None)
    assert data.dtype == np.uint8 and data.input_shape == (2, 2, 3)
    np.testing.assert_array_equal(data.x_train[0], np.repeat(shallow[..., None], 3, axis=-1))


def test_only_sixteen_bit_images_keep_their_depth(tmp_path):
    for name, value in (("a", 1000), ("b", 60000)):
        _write_png(tmp_path / name / "0.png", np.full((3, 3), value, np.uint16))
    data = load(str(tmp_path), test_split=None)
    assert data.dtype == np.uint16
    assert sorted(data.x_train[:, 0, 0, 0].tolist()) == [1000, 60000]
