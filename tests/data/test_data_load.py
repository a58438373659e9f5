"""`load`'s own checks on every path (in memory, streamed folders, TFRecords), and where its
warnings point: at the line that called `load`."""

import io
import logging
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerascnn.data import TFRecords, load, streaming

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 255, (30, 6, 6), dtype=np.uint8)
LABELS = np.arange(30) % 3


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_folder(root, per_class=6, broken=False):
    """2 classes of 8x8 grey PNGs in `root`, plus a damaged file if `broken`."""
    for label in range(2):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(per_class):
            pixels = RNG.integers(0, 255, (8, 8), dtype=np.uint8)
            (root / f"class{label}" / f"{i}.png").write_bytes(_png(pixels))
    if broken:
        (root / "class1" / "broken.png").write_bytes(b"not a png")
    return root


def _write_records(path, count=12, damaged=()):
    """`count` examples of 8x8 PNGs, labels alternating 0, 1; records in `damaged` hold junk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            image = b"junk" if i in damaged else _png(RNG.integers(0, 255, (8, 8), np.uint8))
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
            })).SerializeToString())
    return str(path)


def test_bad_task_and_class_names_for_regression_are_refused():
    with pytest.raises(ValueError, match="task must be 'classification' or 'regression'; "
                                         "got task='ranking'"):
        load((IMAGES, LABELS), task="ranking")
    with pytest.raises(ValueError, match="class_names name classes; task='regression'"):
        load((IMAGES, LABELS * 1.5), task="regression", class_names=["a", "b", "c"])


def test_regression_targets_split_shuffled_and_checked_per_split():
    values = (LABELS * 1.5).astype(np.float32)
    data = load((IMAGES, values), task="regression", test_split=0.2, validation_split=0.25,
                seed=1)
    assert data.class_names == [] and data.num_outputs == 1
    assert data.size("train") + data.size("validation") + data.size("test") == 30
    assert data.size("test") == 6
    np.testing.assert_array_equal(np.sort(np.concatenate([data.y_train, data.y_val,
                                                          data.y_test])[:, 0]), np.sort(values))
    given = load(((IMAGES[:20], values[:20]), (IMAGES[20:], values[20:])), task="regression")
    assert given.size("test") == 10
    with pytest.raises(ValueError, match=r"y_test has 2 targets per example, unlike "
                                         r"y_train's 1\."):
        load(((IMAGES[:20], values[:20]), (IMAGES[20:], np.ones((10, 2)))), task="regression")


def test_a_bad_file_is_named_in_the_message(tmp_path):
    path = tmp_path / "short.npz"
    np.savez(path, x_train=IMAGES, y_train=LABELS[:20])
    with pytest.raises(ValueError, match=rf"^{path}: x_train has 30 examples but y_train has "
                                         r"20 labels\.$"):
        load(str(path))


def test_own_validation_splits_refuse_validation_split(tmp_path):
    for split in ("train", "validation"):
        _write_folder(tmp_path / "folder" / split)
    for stream in (False, True):
        with pytest.raises(ValueError, match="folder has its own validation split; pass "
                                             "validation_split=None to use it"):
            load(tmp_path / "folder", stream=stream, validation_split=0.2)
        data = load(tmp_path / "folder", stream=stream, test_split=None)
        assert data.split_names == ("train", "validation") and data.size("validation") == 12


def test_streamed_sources_refuse_regression_and_records_refuse_a_cache(tmp_path):
    folder = _write_folder(tmp_path / "folder")
    with pytest.raises(ValueError, match="streamed images hold classes; got "
                                         "task='regression'"):
        load(folder, stream=True, task="regression")
    source = TFRecords(train=_write_records(tmp_path / "records" / "train.tfrecord"))
    with pytest.raises(ValueError, match="TFDS sets and TFRecords are read by position "
                                         "without one"):
        load(source, stream=True, cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="this source loads into memory"):
        load(source, stream=False, cache=tmp_path / "cache")


def test_records_of_unknown_size_load_into_memory(tmp_path, caplog):
    source = TFRecords(train=_write_records(tmp_path / "first.tfrecord", damaged=(0,)))
    with caplog.at_level(logging.INFO, logger=streaming.__name__), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load(source, test_split=None)
    assert "decoded size unknown before reading it" in caplog.text
    assert data.describe()["storage"] == "memory" and data.size("train") == 11


def _skipped_warning(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function()
    return [w for w in caught if "Skipped" in str(w.message)]


@pytest.mark.parametrize("stream", [False, True])
def test_skipped_files_and_records_are_warned_at_the_callers_line(tmp_path, stream):
    folder = _write_folder(tmp_path / "folder", broken=True)
    source = TFRecords(train=_write_records(tmp_path / "records" / "train.tfrecord",
                                            damaged=(3,)))
    for caught in (_skipped_warning(lambda: load(folder, stream=stream, test_split=None)),
                   _skipped_warning(lambda: load(source, stream=stream, test_split=None))):
        assert len(caught) == 1 and caught[0].filename == __file__
