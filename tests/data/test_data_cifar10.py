"""CIFAR-10 as a user meets it: by name from a data folder holding its `.npz`, its image
folder or its JPEG archive; streamed or in memory; previewed; written as a `.npz`."""

import importlib
import io
import os
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from kerascnn.data import DATA_DIR_ENV, KERAS_DATASETS, load, preview, to_npz
from kerascnn.data.make_npz import main as make_npz
from kerascnn.data.sources import local_copy

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]  # keras.datasets.cifar10's label order (its batches.meta)


@pytest.fixture(autouse=True)
def _no_environment_folder(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def _data_folder(tmp_path, name, source):
    """A data folder holding `source` (a folder or file) under `name`."""
    folder = tmp_path / "data"
    folder.mkdir(parents=True, exist_ok=True)
    copy = shutil.copytree if os.path.isdir(source) else shutil.copyfile
    copy(source, folder / name)
    return folder


def _splits(data):
    return {split: tuple(np.asarray(part) for part in data.arrays(split))
            for split in data.split_names}


def _assert_same(first, second):
    first, second = _splits(first), _splits(second)
    assert list(first) == list(second)
    for split in first:
        np.testing.assert_array_equal(first[split][0], second[split][0], err_msg=split)
        np.testing.assert_array_equal(first[split][1], second[split][1], err_msg=split)


def test_sorted_class_folders_are_keras_label_order():
    assert KERAS_DATASETS["cifar10"] == CIFAR10_CLASSES == sorted(CIFAR10_CLASSES)


def test_cifar10_by_name_from_its_folder_its_archive_or_its_npz_gives_the_same_data(
        cifar10_slice, cifar10_slice_archive, tmp_path):
    from_folder = load("cifar10", data_dir=_data_folder(tmp_path / "f", "cifar10", cifar10_slice),
                       stream=False)
    archive_dir = _data_folder(tmp_path / "a", "cifar10-jpg.tar.gz", cifar10_slice_archive)
    from_archive = load("cifar10", data_dir=str(archive_dir))
    assert from_folder.name == from_archive.name == "cifar10"
    assert from_folder.class_names == from_archive.class_names == CIFAR10_CLASSES
    assert from_folder.input_shape == (32, 32, 3) and from_folder.dtype == np.uint8
    assert from_folder.split_names == ("train", "test")  # the official split, no split drawn
    assert (from_folder.size("train"), from_folder.size("test")) == (200, 100)
    assert np.bincount(from_folder.arrays("test")[1]).tolist() == [10] * 10
    x_train, y_train = from_folder.arrays("train")
    assert x_train[y_train == 0].mean(axis=(0, 1, 2)).std() > 1  # colour, not grey
    _assert_same(from_folder, from_archive)
    assert from_archive.sha256 is not None  # the archive's checksum is recorded
    assert not [p for p in archive_dir.iterdir() if p.name != "cifar10-jpg.tar.gz"]  # no unpacking

    npz_dir = tmp_path / "n"
    to_npz(cifar10_slice_archive, npz_dir / "cifar10.npz")
    shutil.copytree(cifar10_slice, npz_dir / "cifar10")  # the .npz comes first
    assert local_copy("cifar10", npz_dir) == os.path.join(npz_dir, "cifar10.npz")
    from_npz = load("cifar10", data_dir=npz_dir)
    assert from_npz.name == "cifar10" and from_npz.class_names == CIFAR10_CLASSES
    _assert_same(from_folder, from_npz)


def test_the_folder_found_by_name_streams_with_the_same_splits_and_pixels(
        cifar10_slice, tmp_path):
    data_dir = _data_folder(tmp_path, "cifar10", cifar10_slice)
    in_memory = load("cifar10", data_dir=data_dir, stream=False, validation_split=0.1, seed=3)
    streamed = load("cifar10", data_dir=data_dir, stream=True, validation_split=0.1, seed=3)
    cached = load(cifar10_slice, stream=True, cache=tmp_path / "cache", validation_split=0.1,
                  seed=3)
    assert streamed.describe()["storage"] == "files" and streamed.name == "cifar10"
    assert in_memory.split_names == ("train", "validation", "test")
    assert (in_memory.size("validation"), in_memory.size("test")) == (20, 100)
    _assert_same(in_memory, streamed)
    _assert_same(in_memory, cached)
    assert sorted(os.listdir(tmp_path / "cache")) == [
        "test.json", "test.npy", "train.json", "train.npy"]
    x_pipeline, y_pipeline = next(iter(streamed.pipeline("validation", 20, shuffle=False)))
    np.testing.assert_array_equal(np.asarray(x_pipeline, np.uint8),
                                  in_memory.arrays("validation")[0])


def test_the_archive_is_refused_for_streaming_with_the_command_to_unpack_it(
        cifar10_slice_archive, tmp_path):
    data_dir = _data_folder(tmp_path, "cifar10-jpg.tar.gz", cifar10_slice_archive)
    with pytest.raises(ValueError, match="tar xzf ARCHIVE -C DIR"):
        load("cifar10", data_dir=data_dir, stream=True)


def test_a_cifar10_folder_with_other_classes_is_refused_by_name(cifar10_slice, tmp_path):
    data_dir = _data_folder(tmp_path, "cifar10", cifar10_slice)
    shutil.move(data_dir / "cifar10" / "train" / "cat", data_dir / "cifar10" / "train" / "kitten")
    shutil.move(data_dir / "cifar10" / "test" / "cat", data_dir / "cifar10" / "test" / "kitten")
    with pytest.raises(ValueError, match="keras' label order") as caught:
        load("cifar10", data_dir=data_dir)
    assert "kitten" in str(caught.value)


def test_cifar10_not_found_says_which_files_in_which_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load("cifar10", data_dir=tmp_path, download=False)
    message = str(caught.value)
    for expected in ("cifar10.npz", "cifar10/", "train/<class>/", "test/<class>/",
                     "cifar10-jpg.tar.gz", str(tmp_path), "--data-dir DIR", "data_dir=DIR",
                     DATA_DIR_ENV, "--data PATH/cifar10", "python -m kerascnn.data.make_npz"):
        assert expected in message, expected


def test_to_npz_writes_atomically_and_overwrites_only_its_own_files(cifar10_slice, tmp_path,
                                                                     capsys):
    out = tmp_path / "cifar10.npz"
    assert make_npz([str(cifar10_slice), str(out)]) == 0
    assert "train 200, test 100" in capsys.readouterr().out
    with np.load(out) as archive:
        assert archive["x_train"].shape == (200, 32, 32, 3) and archive["y_test"].shape == (100,)
        assert archive["class_names"].tolist() == CIFAR10_CLASSES
    assert sorted(os.listdir(tmp_path)) == ["cifar10.npz"]  # no temporary file left
    assert make_npz([str(cifar10_slice), str(out)]) == 0  # its own file: rewritten
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x_train=np.zeros((2, 2)), y_train=np.zeros(2))
    before = foreign.read_bytes()
    with pytest.raises(FileExistsError, match="not written by kerascnn"):
        to_npz(cifar10_slice, foreign)
    assert make_npz([str(cifar10_slice), str(foreign)]) == 1
    assert "not written by kerascnn" in capsys.readouterr().err
    assert foreign.read_bytes() == before


def test_an_archive_under_a_top_folder_reads_as_the_folder(cifar10_slice, tmp_path):
    path = tmp_path / "wrapped.tgz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(cifar10_slice, arcname="cifar10")
        note = b"not an image"
        info = tarfile.TarInfo("cifar10/train/cat/README.txt")
        info.size = len(note)
        archive.addfile(info, io.BytesIO(note))
    with pytest.warns(UserWarning, match=r"Skipped 1 of 301 files .*README.txt \(not an image"):
        wrapped = load(path)
    assert wrapped.name == "wrapped" and wrapped.class_names == CIFAR10_CLASSES
    _assert_same(wrapped, load(cifar10_slice))
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="cannot be read as a tar archive"):
        load(damaged)


def test_preview_of_the_folder_draws_colour_images_titled_with_class_names(
        cifar10_slice, tmp_path, monkeypatch, capsys):
    from kerascnn import cli

    preview_module = importlib.import_module("kerascnn.data.preview")  # not the function

    titles = []
    draw = preview_module._write_grid
    monkeypatch.setattr(preview_module, "_write_grid",
                        lambda images, names, *rest: titles.extend(names) or draw(images, names,
                                                                                  *rest))
    out = tmp_path / "preview.png"
    cli.main(["data", "preview", "--data", str(cifar10_slice), "--out", str(out), "-n", "9"])
    assert "preview written" in capsys.readouterr().out
    assert len(titles) == 9 and set(titles) <= set(CIFAR10_CLASSES)
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB"), np.int16)
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert (saturation > 40).mean() > 0.02  # coloured pixels: not drawn grey
    titles.clear()
    data = load(cifar10_slice)
    preview(data, "flip", tmp_path / "flipped.png", n=4, seed=1)
    _, y = data.arrays("train")
    chosen = np.sort(np.random.default_rng(1).choice(len(y), 4, replace=False))
    assert titles == [CIFAR10_CLASSES[label] for label in y[chosen]]


@pytest.mark.slow
def test_the_full_archive_by_name_is_the_official_split(cifar10_archive):
    data = load("cifar10", data_dir=cifar10_archive.parent, download=False)
    assert data.class_names == CIFAR10_CLASSES and data.input_shape == (32, 32, 3)
    assert data.split_names == ("train", "test")
    assert np.bincount(data.arrays("train")[1]).tolist() == [5000] * 10
    assert np.bincount(data.arrays("test")[1]).tolist() == [1000] * 10
