"""Issue 24: the same data whichever way a folder is read, and nothing of the user's lost."""

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerascnn.data import CacheError, FileChangedError, load
from kerascnn.data.errors import reading_files
from kerascnn.data.sources import DATA_DIR_ENV


def _write_images(folder, count, seed, size=(10, 12), formats=("png",), mode="RGB"):
    """`count` images in `folder`, cycling through `formats` (suffix:Pillow mode)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        spec = formats[i % len(formats)]
        suffix, image_mode = (spec.split(":") + [mode])[:2]
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if image_mode == "P":
            image = image.quantize(16)  # a colour palette
        elif image_mode != "RGB":
            image = image.convert(image_mode)
        image.save(folder / f"{i:03d}.{suffix}")


def _load_both(root, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        memory = load(root, stream=False, **options)
        streamed = load(root, stream=True, **options)
    return memory, streamed, [str(w.message) for w in caught]


def _assert_same(memory, streamed):
    assert streamed.split_digests() == memory.split_digests()
    assert streamed.input_shape == memory.input_shape
    for split in memory.split_names:
        x, y = memory.arrays(split)
        x_streamed, y_streamed = streamed.arrays(split)
        np.testing.assert_array_equal(np.asarray(x_streamed), x)
        np.testing.assert_array_equal(y_streamed, y)


@pytest.fixture
def small(tmp_path):
    for label in range(2):
        _write_images(tmp_path / "small" / f"class{label}", 6, seed=label)
    return tmp_path / "small"


# 10a: a cache folder only ever overwrites kerascnn's own files.
def test_cache_refuses_files_kerascnn_did_not_write(small, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    theirs = np.arange(12, dtype=np.uint8)
    np.save(cache / "train.npy", theirs)
    with pytest.raises(CacheError, match=r"holds train\.npy, which kerascnn did not write"):
        load(small, stream=True, cache=cache, test_split=None)
    np.testing.assert_array_equal(np.load(cache / "train.npy"), theirs)

    (cache / "train.npy").unlink()
    (cache / "train.json").write_text('{"my": "notes"}')
    with pytest.raises(CacheError, match=r"holds train\.json, which kerascnn did not write"):
        load(small, stream=True, cache=cache, test_split=None)
    assert (cache / "train.json").read_text() == '{"my": "notes"}'
    assert not (cache / "train.npy").exists()

    (cache / "train.json").unlink()
    data = load(small, stream=True, cache=cache, test_split=None)  # its own files: rebuilt
    assert sorted(os.listdir(cache)) == ["train.json", "train.npy"]
    (cache / "train.npy").write_bytes(b"damaged")  # kerascnn's pair: it may rewrite it
    again = load(small, stream=True, cache=cache, test_split=None)
    np.testing.assert_array_equal(np.asarray(again.x_train), np.asarray(data.x_train))

    a_file = tmp_path / "cache.txt"
    a_file.write_text("not a folder")
    with pytest.raises(CacheError, match=r"cache=.*cache\.txt.* is a file, not a folder"):
        load(small, stream=True, cache=a_file)
    assert a_file.read_text() == "not a folder"


# 12: links back into the folder are not followed; a link out of it is, once.
def test_links_back_into_the_folder_are_not_followed(small, tmp_path):
    outside = tmp_path / "outside"
    _write_images(outside, 3, seed=9)
    os.symlink(outside, outside / "loop")  # a loop outside: never followed
    reference, _, _ = _load_both(small, test_split=None)
    os.symlink(".", small / "self")  # the bogus class
    os.symlink("..", small / "class0" / "up")
    os.symlink(small / "class0" / "000.png", small / "class1" / "copy.png")
    os.symlink(outside, small / "class1" / "more")
    memory, streamed, messages = _load_both(small, test_split=None)
    assert memory.class_names == streamed.class_names == ["class0", "class1"]
    assert memory.class_counts("train") == [6, 6 + 3]  # the outside images, once
    _assert_same(memory, streamed)
    np.testing.assert_array_equal(memory.x_train[:6], reference.x_train[:6])
    skipped = [m for m in messages if "Skipped" in m]
    assert len(skipped) == 2 and skipped[0] == skipped[1]  # the same warning both ways
    for name in ("self (a link back into the folder", "up (a link back into the folder",
                 "copy.png (a link back into the folder", "loop (a link to a folder already"):
        assert name in skipped[0]


# 12: the same files accepted, the same pixels, in both modes; BMPs stream through training.
@pytest.mark.parametrize("colour", [True, False])
def test_bmp_png_jpeg_load_alike_streamed_and_in_memory(tmp_path, colour):
    root = tmp_path / "mixed"
    formats = {"bmp1": ("bmp:1",), "bmpgrey": ("bmp:L",), "pnggrey": ("png:L", "png:1"),
               "jpeggrey": ("jpg:L",)}
    if colour:
        formats.update(bmppalette=("bmp:P",), png=("png:RGB", "png:P"), jpeg=("jpg:RGB",))
    for label, (name, specs) in enumerate(formats.items()):
        _write_images(root / name, 8, seed=label, formats=specs)
    (root / "bmp1" / "broken.bmp").write_bytes(b"BM not really")
    memory, streamed, messages = _load_both(root, test_split=0.25, seed=2)
    assert memory.size("train") + memory.size("test") == 8 * len(formats)
    assert streamed.input_shape == (10, 12, 3 if colour else 1)
    _assert_same(memory, streamed)
    assert len(messages) == 2 and messages[0] == messages[1] and "broken.bmp" in messages[0]
    for (x, y), (x_ref, y_ref) in zip(streamed.pipeline("train", 8, shuffle=False),
                                      memory.pipeline("train", 8, shuffle=False)):
        np.testing.assert_array_equal(x.numpy(), x_ref.numpy())  # a whole streamed epoch
    resized, resized_memory, _ = _load_both(root, test_split=None, target_size=(7, 9))
    np.testing.assert_array_equal(np.asarray(resized_memory.x_train), resized.x_train)


# 12: a streamed file deleted or changed after loading: one line naming it.
def test_a_file_changed_or_deleted_after_loading_is_named(small):
    data = load(small, stream=True, test_split=None)
    changed = small / "class1" / "002.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(changed)
    with pytest.raises(FileChangedError) as caught:
        np.asarray(data.x_train)
    message = str(caught.value)
    assert "\n" not in message and str(changed) in message and "load the folder again" in message
    with pytest.raises(FileChangedError, match="002.png changed or was deleted"), \
            reading_files():
        for _ in data.pipeline("train", 4):
            pass

    data = load(small, stream=True, test_split=None)
    deleted = small / "class0" / "004.png"
    deleted.unlink()
    with pytest.raises(FileChangedError, match=r"004\.png changed or was deleted after its "
                                               r"folder was loaded: load the folder again"), \
            reading_files():
        for _ in data.pipeline("train", 4):
            pass
    with pytest.raises(tf.errors.NotFoundError, match="004.png"):  # without: TensorFlow's
        for _ in data.pipeline("train", 4):
            pass


# 22: the offline error names the command line's option too.
def test_named_data_set_not_found_names_both_ways_to_give_the_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for data_dir in (str(tmp_path), tmp_path):  # a str, or a path object
        with pytest.raises(FileNotFoundError) as caught:
            load("mnist", data_dir=data_dir, download=False)
        assert ("--data-dir DIR on the command line, data_dir=DIR in Python, or set "
                f"{DATA_DIR_ENV}=DIR") in str(caught.value)
        assert str(tmp_path) in str(caught.value)


def test_training_on_a_file_deleted_after_loading_ends_in_one_line(small):
    import kerascnn

    data = load(small, stream=True, test_split=None, validation_split=None)
    (small / "class0" / "004.png").unlink()
    with pytest.raises(FileChangedError, match=r"004\.png changed or was deleted"):
        kerascnn.train("lenet1", data, epochs=1, verbose=0)
