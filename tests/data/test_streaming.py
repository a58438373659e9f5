"""Streaming image folders: the same splits, folds, pixels, statistics and weights as in memory."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

import kerascnn
from kerascnn.data import Preprocessing, load, streamed_folders, streaming
from kerascnn.data.running_stats import RunningMoments


def _write_folder(root, per_class, seed=0, corrupt=True):
    """3 classes of colour and grey PNGs and JPEGs of two sizes, plus two damaged files."""
    rng = np.random.default_rng(seed)
    for label in range(3):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(per_class):
            size = (20, 24) if i % 3 else (18, 26)
            smooth = np.linspace(0, 1, size[0] * size[1]).reshape(size)[..., None]
            pixels = (200 * smooth + rng.integers(0, 50, (*size, 3)) + 10 * label).astype(np.uint8)
            image = Image.fromarray(pixels[..., 0] if i % 7 == 0 else pixels)  # some grey
            image.save(root / f"class{label}" / f"{i:04d}.{'png' if i % 2 else 'jpg'}")
    if corrupt:
        (root / "class1" / "broken.jpg").write_bytes(b"not a jpeg at all")
        whole = (root / "class0" / "0001.png").read_bytes()
        (root / "class0" / "cut.png").write_bytes(whole[: len(whole) // 2])
        (root / "class2" / "notes.txt").write_text("not an image")
    return root


def _load_both(root, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(root, stream=False, **options), load(root, stream=True, **options)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("streaming") / "shapes", per_class=70)


@pytest.fixture(scope="module")
def both(folder):
    return _load_both(folder, target_size=(16, 16), validation_split=0.2, seed=3)


def _positions(data, split):
    return data._split(split).all_positions()


def test_same_files_in_the_same_splits_and_folds(both):
    memory, streamed = both
    assert memory.describe()["storage"] == "memory"
    assert streamed.describe()["storage"] == "files"
    assert {**streamed.describe(), "storage": "memory"} == memory.describe()
    assert streamed.split_digests() == memory.split_digests()  # the run.json digests
    np.testing.assert_array_equal(streamed.training_labels(), memory.training_labels())
    for (mem_train, mem_held), (str_train, str_held) in zip(memory.folds(3, seed=5),
                                                            streamed.folds(3, seed=5)):
        np.testing.assert_array_equal(_positions(str_train, "train"),
                                      _positions(mem_train, "train"))
        np.testing.assert_array_equal(_positions(str_held, "test"), _positions(mem_held, "test"))
    # The pixels are the same too: decoding (JPEG DCT) and resizing agree with Pillow's path.
    np.testing.assert_array_equal(np.asarray(streamed.x_val), memory.x_val)
    assert streamed.x_test[3].shape == (16, 16, 3)
    np.testing.assert_array_equal(streamed.x_test[3], memory.x_test[3])


def test_pipelines_give_the_same_batches(both):
    memory, streamed = both
    for options in ({"augment": "flip,rotate=10"}, {"augment": "flip", "epochs": 2}):
        mine = list(streamed.pipeline("train", 32, seed=1, **options).as_numpy_iterator())
        reference = list(memory.pipeline("train", 32, seed=1, **options).as_numpy_iterator())
        assert len(mine) == len(reference) == (2 if "epochs" in options else 1) * 5
        for (x, y), (x_ref, y_ref) in zip(mine, reference):
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)
    validation = list(streamed.pipeline("validation", 40).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([x for x, _ in validation]), memory.x_val)


def test_statistics_in_one_pass_match_numpy(both, capsys):
    memory, streamed = both
    reference = memory.x_train.astype(np.float64)
    for mode in ("standardize", "mean_image"):
        layer = Preprocessing(mode=mode)
        layer.adapt(streamed.x_train, batch_size=50)  # 5 batches, the last one partial
        in_memory = Preprocessing(mode=mode)
        in_memory.adapt(memory.x_train)
        expected_mean = reference.mean(axis=0) if mode == "mean_image" else reference.mean(
            axis=(0, 1, 2))
        np.testing.assert_allclose(layer.mean.numpy(), expected_mean, rtol=1e-5)
        np.testing.assert_allclose(layer.mean.numpy(), in_memory.mean.numpy(), rtol=1e-6)
        if mode == "standardize":
            np.testing.assert_allclose(layer.std.numpy(), reference.std(axis=(0, 1, 2)),
                                       rtol=1e-5)
            np.testing.assert_allclose(layer.std.numpy(), in_memory.std.numpy(), rtol=1e-6)
    assert "batch" in capsys.readouterr().out  # the progress bar of a streamed pass


def test_running_moments_stay_accurate_far_from_zero():
    rng = np.random.default_rng(0)
    # float32 values near 1e4 with a spread of 0.1: sum of squares minus squared mean
    # loses every digit of the variance in float32; the pairwise update keeps them.
    x = (1e4 + 0.1 * rng.standard_normal((300, 4, 4, 3))).astype(np.float32)
    moments = RunningMoments(axis=(0, 1, 2))
    for start in range(0, len(x), 17):
        moments.update(x[start:start + 17])
    exact = x.astype(np.float64)
    np.testing.assert_allclose(moments.mean, exact.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(moments.variance, exact.var(axis=(0, 1, 2)), rtol=1e-6)
    assert moments.count == 300 * 16


def test_training_gives_the_same_weights(both):
    memory, streamed = both
    weights = [kerascnn.train("lenet5", data, epochs=1, seed=2, verbose=0,
                              normalization="standardize").model.get_weights()
               for data in (memory, streamed)]
    # Same pixels, same batches, same statistics, deterministic ops: the same weights.
    for mine, reference in zip(*weights):
        np.testing.assert_array_equal(mine, reference)


def test_damaged_files_are_skipped_and_listed_once(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(folder, stream=True, target_size=(16, 16))
    messages = [str(w.message) for w in caught if "Skipped" in str(w.message)]
    assert len(messages) == 1
    for name in ("broken.jpg", "cut.png", "notes.txt"):
        assert name in messages[0]
    assert "Skipped 3 of 213 files" in messages[0]
    assert data.size("train") + data.size("test") == 210
    batches = sum(1 for _ in data.pipeline("train", 64))  # a whole epoch, no crash
    assert batches == -(-data.size("train") // 64)


def test_auto_streams_above_the_memory_share(folder, monkeypatch, caplog):
    size, count = streamed_folders.estimated_size(str(folder), (16, 16))
    assert (size, count) == (212 * 16 * 16 * 3, 212)  # image files, RGB (the first is)
    memory = streaming.physical_memory()
    monkeypatch.setattr(streaming, "MEMORY_SHARE", 0.9 * size / memory)
    with warnings.catch_warnings(), caplog.at_level("INFO", logger=streaming.__name__):
        warnings.simplefilter("ignore")
        assert load(folder, target_size=(16, 16)).describe()["storage"] == "files"
        assert "212 files" in caplog.text and "streaming from the files" in caplog.text
        monkeypatch.setattr(streaming, "MEMORY_SHARE", 1.1 * size / memory)
        assert load(folder, target_size=(16, 16)).describe()["storage"] == "memory"
        assert load("digits").describe()["storage"] == "memory"  # only folders stream
    with pytest.raises(ValueError, match="stream must be 'auto', True or False; got"):
        load(folder, stream="yes")
    with pytest.raises(ValueError, match="stream=True streams image folders only"):
        load("digits", stream=True)


def test_cache_gives_the_same_batches_and_follows_the_files(tmp_path):
    root = _write_folder(tmp_path / "small", per_class=12, corrupt=False)
    cache = tmp_path / "cache"
    plain = load(root, stream=True, target_size=(16, 16))
    cached = load(root, stream=True, target_size=(16, 16), cache=cache)
    assert sorted(os.listdir(cache)) == ["train.json", "train.npy"]
    for (x, y), (x_ref, y_ref) in zip(cached.pipeline("train", 8, augment="flip"),
                                      plain.pipeline("train", 8, augment="flip")):
        np.testing.assert_array_equal(x.numpy(), x_ref.numpy())
    built = os.stat(cache / "train.npy").st_mtime_ns
    load(root, stream=True, target_size=(16, 16), cache=cache)
    assert os.stat(cache / "train.npy").st_mtime_ns == built  # reused
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "class0" / "0001.png")
    again = load(root, stream=True, target_size=(16, 16), cache=cache)
    assert os.stat(cache / "train.npy").st_mtime_ns != built  # a file changed: rebuilt
    assert np.asarray(again.x_train).max() > 0
    with pytest.raises(ValueError, match="cache=.* holds decoded images of a streamed folder"):
        load("digits", cache=cache)


def test_a_folder_with_its_own_validation_split_folds_alike(tmp_path):
    for split, count in (("train", 9), ("validation", 4), ("test", 3)):
        _write_folder(tmp_path / "split" / split, per_class=count, seed=count, corrupt=False)
    memory, streamed = _load_both(tmp_path / "split", target_size=(12, 12))
    assert streamed.split_digests() == memory.split_digests()
    for (mem_train, _), (str_train, _) in zip(memory.folds(2), streamed.folds(2)):
        np.testing.assert_array_equal(np.asarray(str_train.x_train), mem_train.x_train)


def test_grey_and_transparent_images_read_as_in_memory(tmp_path):
    rng = np.random.default_rng(1)
    for name, mode in (("grey", "L"), ("alpha", "LA")):
        (tmp_path / "grey" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (9, 11) if mode == "L" else (9, 11, 2), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(tmp_path / "grey" / name / f"{i}.png")
    memory, streamed = _load_both(tmp_path / "grey", test_split=None)
    assert streamed.input_shape == memory.input_shape == (9, 11, 1)  # alpha dropped
    np.testing.assert_array_equal(np.asarray(streamed.x_train), memory.x_train)
    (tmp_path / "grey" / "colour").mkdir()
    Image.fromarray(rng.integers(0, 255, (9, 11, 4), dtype=np.uint8), "RGBA").save(
        tmp_path / "grey" / "colour" / "0.png")
    memory, streamed = _load_both(tmp_path / "grey", test_split=None)
    assert streamed.input_shape == memory.input_shape == (9, 11, 3)  # grey repeated
    np.testing.assert_array_equal(np.asarray(streamed.x_train), memory.x_train)


def test_mixed_sizes_need_a_target_size(folder):
    with pytest.raises(ValueError, match="different sizes .* Pass target_size"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load(folder, stream=True)


@pytest.mark.slow
def test_a_few_thousand_files_stream_as_they_load(tmp_path):
    root = _write_folder(tmp_path / "large", per_class=1000)
    memory, streamed = _load_both(root, target_size=(16, 16), validation_split=0.1, seed=7)
    assert streamed.split_digests() == memory.split_digests()
    for (mem_train, _), (str_train, _) in zip(memory.folds(5, seed=1), streamed.folds(5, seed=1)):
        np.testing.assert_array_equal(_positions(str_train, "train"),
                                      _positions(mem_train, "train"))
    layer, reference = Preprocessing(mode="standardize"), Preprocessing(mode="standardize")
    layer.adapt(streamed.x_train, progress=False)
    reference.adapt(memory.x_train)
    np.testing.assert_allclose(layer.mean.numpy(), reference.mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.std.numpy(), reference.std.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(streamed.x_train), memory.x_train)
