"""TFRecord shards and TFDS sets read by position: the splits, pixels and weights of memory."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits

import kerascnn
from kerascnn.data import Preprocessing, TFRecords, load, records, streaming


def _example(image_bytes, label):
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    })).SerializeToString()


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_shards(folder, images, labels, shards, encode, options=None):
    """Writes the examples in order into `shards` files folder/train-0000k.tfrecord."""
    folder.mkdir(parents=True, exist_ok=True)
    for shard, part in enumerate(np.array_split(np.arange(len(images)), shards)):
        with tf.io.TFRecordWriter(str(folder / f"train-{shard:05d}.tfrecord"), options) as writer:
            for i in part:
                writer.write(_example(encode(images[i]), int(labels[i])))
    return str(folder / "train-*.tfrecord")


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return bunch.images.astype(np.uint8), bunch.target


@pytest.fixture(scope="module")
def shards(tmp_path_factory, digits):
    """The 1,797 digits as PNG-encoded (4 shards) and raw (3 shards) TFRecord files."""
    root = tmp_path_factory.mktemp("records")
    images, labels = digits
    return {"encoded": _write_shards(root / "png", images, labels, 4, _png),
            "raw": _write_shards(root / "raw", images, labels, 3, lambda x: x.tobytes())}


def _source(shards, image_format):
    return TFRecords(train=shards[image_format], image_format=image_format,
                     shape=(8, 8) if image_format == "raw" else None)


@pytest.fixture(scope="module", params=["encoded", "raw"])
def both(request, shards):
    source = _source(shards, request.param)
    return (load(source, stream=False, validation_split=0.2, seed=3),
            load(source, stream=True, validation_split=0.2, seed=3))


def test_same_splits_folds_and_pixels_as_the_arrays(both):
    memory, streamed = both
    reference = load("digits", validation_split=0.2, seed=3)  # the same images and labels
    assert streamed.describe()["storage"] == "files"
    assert memory.describe()["storage"] == "memory"
    assert {**streamed.describe(), "storage": "memory"} == memory.describe()
    assert streamed.split_digests() == memory.split_digests() == reference.split_digests()
    assert streamed.input_shape == (8, 8, 1)
    for (mem_train, mem_held), (str_train, str_held) in zip(memory.folds(3, seed=5),
                                                            streamed.folds(3, seed=5)):
        np.testing.assert_array_equal(str_train._split("train").all_positions(),
                                      mem_train._split("train").all_positions())
        np.testing.assert_array_equal(str_held._split("test").all_positions(),
                                      mem_held._split("test").all_positions())
    for split in ("x_train", "x_val", "x_test"):
        np.testing.assert_array_equal(np.asarray(getattr(streamed, split)),
                                      getattr(reference, split))
        np.testing.assert_array_equal(getattr(memory, split), getattr(reference, split))
    np.testing.assert_array_equal(streamed.x_test[5], reference.x_test[5])


def test_statistics_and_batches_match_numpy(both):
    memory, streamed = both
    layer = Preprocessing(mode="standardize")
    layer.adapt(streamed.x_train, batch_size=100, progress=False)
    reference = memory.x_train.astype(np.float64)
    np.testing.assert_allclose(layer.mean.numpy(), reference.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(layer.std.numpy(), reference.std(axis=(0, 1, 2)), rtol=1e-6)
    mine = list(streamed.pipeline("train", 128, seed=1, augment="flip").as_numpy_iterator())
    theirs = list(memory.pipeline("train", 128, seed=1, augment="flip").as_numpy_iterator())
    assert len(mine) == len(theirs) == -(-streamed.size("train") // 128)
    for (x, y), (x_ref, y_ref) in zip(mine, theirs):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)


def test_training_gives_the_same_weights(shards):
    source = _source(shards, "encoded")
    weights = [kerascnn.train("lenet5", load(source, stream=stream, seed=2), epochs=1, seed=2,
                              batch_size=256, verbose=0,
                              normalization="standardize").model.get_weights()
               for stream in (False, True)]
    for mine, reference in zip(*weights):
        np.testing.assert_array_equal(mine, reference)


def test_offset_index_reads_the_records_tf_data_reads(shards):
    files = sorted(tf.io.gfile.glob(shards["encoded"]))
    index = records.RecordIndex.build(files)
    expected = [record.numpy() for record in tf.data.TFRecordDataset(files)]
    assert len(index) == len(expected) == 1797
    assert list(index.read(np.arange(len(index)))) == expected  # byte-equal
    order = np.random.default_rng(0).permutation(len(index))[:50]
    assert list(index.read(order)) == [expected[i] for i in order]  # random access
    joined = index.merged(order[:5], index, order[5:9])
    assert list(joined.read(np.arange(9))) == [expected[i] for i in order[:9]]


def test_compressed_files_stream_never_but_load_in_memory(tmp_path, digits):
    images, labels = digits
    pattern = _write_shards(tmp_path / "gz", images[:300], labels[:300], 2, _png,
                            tf.io.TFRecordOptions(compression_type="GZIP"))
    source = TFRecords(train=pattern)
    with pytest.raises(ValueError, match=r"train-00000.tfrecord is GZIP-compressed: .*"
                                         r"Decompress it .* or load it in memory \(stream=False\)"):
        load(source, stream=True)
    data = load(source, stream=False, test_split=None)
    np.testing.assert_array_equal(data.x_train[..., 0], images[:300])


def test_bad_keys_and_damaged_files_are_named_in_one_line(tmp_path, shards, digits):
    with pytest.raises(ValueError, match=r"have no feature 'label'; they hold image/class/label "
                                         r"\(int64_list\), image/encoded \(bytes_list\)\. "
                                         r"Pass label="):
        load(TFRecords(train=shards["encoded"], label="label"), stream=True)
    with pytest.raises(ValueError, match=r"have no feature 'image/raw'.* Pass image=<the encoded image feature>"):
        load(TFRecords(train=shards["encoded"], image="image/raw"), stream=False)
    with pytest.raises(ValueError, match="matches no file"):
        load(TFRecords(train=str(tmp_path / "none-*.tfrecord")), stream=True)
    with pytest.raises(ValueError, match="image_format='raw' needs shape"):
        TFRecords(train=shards["raw"], image_format="raw")
    with pytest.raises(ValueError, match=r"hold 64 image bytes, not 192 \(shape=\(8, 8, 3\)\)"):
        load(TFRecords(train=shards["raw"], image_format="raw", shape=(8, 8, 3)), stream=True)
    images, labels = digits
    mixed = _write_shards(tmp_path / "mixed", [images[0], np.zeros((9, 8), np.uint8)],
                          labels[:2], 1, _png)
    with pytest.raises(ValueError, match=r"The x_train images have 2 different sizes .*"
                                         r"Pass target_size=\(height, width\)"):
        load(TFRecords(train=mixed), stream=True, test_split=None)
    pattern = _write_shards(tmp_path / "cut", images[:20], labels[:20], 1, _png)
    path = pattern.replace("*", "00000")
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, 2) - 30)
    with pytest.raises(ValueError, match=r"train-00000.tfrecord is truncated: its record at "
                                         r"byte \d+ needs 30 more bytes"):
        records.RecordIndex.build([path])


def test_auto_streams_above_the_memory_share_and_json_specs(tmp_path, shards, monkeypatch,
                                                          caplog):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"train": shards["raw"], "image_format": "raw",
                                "shape": [8, 8], "class_names": [str(i) for i in range(10)]}))
    size = 1797 * 64
    memory = streaming.physical_memory()
    monkeypatch.setattr(streaming, "MEMORY_SHARE", 0.9 * size / memory)
    with caplog.at_level("INFO", logger=streaming.__name__):
        streamed = load(str(spec))
        assert "1797 examples" in caplog.text and "streaming from the files" in caplog.text
    assert streamed.describe()["storage"] == "files" and streamed.name == "spec"
    monkeypatch.setattr(streaming, "MEMORY_SHARE", 1.1 * size / memory)
    in_memory = load(str(spec))
    assert in_memory.describe()["storage"] == "memory"
    assert in_memory.split_digests() == streamed.split_digests()


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory, digits):
    """The digits prepared as the TFDS set "tiny_digits": 1,500 train, 297 test."""
    tfds = pytest.importorskip("tensorflow_datasets")
    images, labels = digits
    data_dir = str(tmp_path_factory.mktemp("tfds"))

    def split(part):
        return tf.data.Dataset.from_tensor_slices({"image": images[part, ..., None],
                                                   "label": labels[part]})

    tfds.dataset_builders.TfDataBuilder(
        name="tiny_digits", version="1.0.0", data_dir=data_dir,
        split_datasets={"train": split(slice(0, 1500)), "test": split(slice(1500, None))},
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)])}),
    ).download_and_prepare()
    return data_dir


def test_tfds_set_streams_as_it_loads(tiny_tfds):
    options = {"data_dir": tiny_tfds, "download": False, "validation_split": 0.25, "seed": 1}
    memory = load("tfds:tiny_digits", stream=False, **options)
    streamed = load("tfds:tiny_digits", stream=True, **options)
    assert streamed.describe()["storage"] == "files"
    assert {**streamed.describe(), "storage": "memory"} == memory.describe()
    assert streamed.split_digests() == memory.split_digests()
    for split in ("x_train", "x_val", "x_test"):
        np.testing.assert_array_equal(np.asarray(getattr(streamed, split)),
                                      getattr(memory, split))
    resized = load("tfds:tiny_digits", stream=True, target_size=(12, 12), **options)
    assert resized.input_shape == (12, 12, 1) and np.asarray(resized.x_test[:3]).shape == (
        3, 12, 12, 1)


def test_tfds_auto_streams_above_the_memory_share(tiny_tfds, monkeypatch, caplog):
    size = 1797 * 64
    monkeypatch.setattr(streaming, "MEMORY_SHARE", 0.9 * size / streaming.physical_memory())
    with caplog.at_level("INFO", logger=streaming.__name__):
        data = load("tfds:tiny_digits", data_dir=tiny_tfds, download=False)
    assert data.describe()["storage"] == "files"
    assert "1797 examples, about 0.00 GB decoded; streaming from the files" in caplog.text


def test_array_record_sets_are_refused_for_streaming(tmp_path, digits):
    tfds = pytest.importorskip("tensorflow_datasets")
    pytest.importorskip("array_record")
    images, labels = digits
    tfds.dataset_builders.TfDataBuilder(
        name="tiny_array_record", version="1.0.0", data_dir=str(tmp_path),
        file_format="array_record",
        split_datasets={"train": tf.data.Dataset.from_tensor_slices(
            {"image": images[:40, ..., None], "label": labels[:40]})},
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)])}),
    ).download_and_prepare()
    with pytest.raises(ValueError, match="stored as .*array_record.*not TFRecord.* "
                                         r"\(stream=False\)"):
        load("tfds:tiny_array_record", data_dir=str(tmp_path), download=False, stream=True)


def test_own_validation_shards_fold_as_in_memory(tmp_path, digits):
    images, labels = digits
    source = TFRecords(
        train=_write_shards(tmp_path / "train", images[:1200], labels[:1200], 2, _png),
        validation=[_write_shards(tmp_path / "validation", images[1200:], labels[1200:], 2,
                                  _png)],
        class_names=[f"digit {i}" for i in range(10)], name="digits shards")
    memory, streamed = (load(source, stream=stream, test_split=0.1, seed=4)
                        for stream in (False, True))
    assert streamed.split_digests() == memory.split_digests()
    assert streamed.class_names[3] == "digit 3" and streamed.name == "digits shards"
    (mem_train, mem_held), (str_train, str_held) = next(zip(memory.folds(2), streamed.folds(2)))
    np.testing.assert_array_equal(str_train._split("train").all_positions(),
                                  mem_train._split("train").all_positions())
    np.testing.assert_array_equal(np.asarray(str_held.x_val), mem_held.x_val)  # merged pools


def test_undecodable_images_are_skipped_and_listed_once(tmp_path, digits):
    images, labels = digits
    encoded = [_png(image) for image in images[:120]]
    encoded[7] = b"not an image"
    encoded[100] = encoded[100][: len(encoded[100]) // 2]  # a cut PNG
    pattern = _write_shards(tmp_path / "damaged", np.arange(120), labels[:120], 3,
                            lambda i: encoded[i])
    loaded = []
    for stream in (False, True):
        with pytest.warns(UserWarning) as caught:
            loaded.append(load(TFRecords(train=pattern), stream=stream, test_split=None))
        messages = [str(w.message) for w in caught if "Skipped" in str(w.message)]
        assert messages == [("Skipped 2 of 120 train records whose image cannot be decoded: "
                             "train-00000.tfrecord record 7; train-00002.tfrecord record 20")]
    memory, streamed = loaded
    kept = np.delete(np.arange(120), [7, 100])
    np.testing.assert_array_equal(memory.x_train[..., 0], images[kept])
    np.testing.assert_array_equal(np.asarray(streamed.x_train), memory.x_train)
    np.testing.assert_array_equal(streamed.y_train, labels[kept])
    assert sum(len(x) for x, _ in streamed.pipeline("train", 32)) == 118  # no crash
