"""`to_npz`: writes a data set's splits as one `.npz` file in keras.datasets layout."""

import os
import zipfile

import numpy as np

from kerascnn.data.sources import load
from kerascnn.errors import InputError
from kerascnn.files import atomic_path

# The key that marks a `.npz` file as written by `to_npz`, which alone it overwrites.
WRITTEN_BY = "kerascnn.data.to_npz"


def to_npz(source, path, *, data_dir=None):
    """Writes the train and test splits of a data set to a `.npz` file, atomically.

    The file holds x_train, y_train, x_test, y_test (int64 labels, as `load` gives them),
    class_names (a string array) and a `written_by` mark, in keras.datasets layout:
    `load(path)` reads it back with the same splits and pixels, and as `<name>.npz` in a
    data folder it is what `load("<name>")` reads first. A source without a test split
    gives a file without one (no split is drawn). An image folder's pixels are stored as
    decoded (for JPEG files: the decoded, lossy pixels).

    Example: the CIFAR-10 image folder (or its archive) as `cifar10.npz`:
    `python -m kerascnn.data.make_npz PATH/cifar10 DIR/cifar10.npz`.

    Args:
        source: anything `kerascnn.data.load` reads into memory: an image folder, its tar
            archive, a data set name, arrays.
        path: the `.npz` file to write.
        data_dir: folder of offline copies, for a source given by name.

    Returns:
        The `Data` written.

    Raises:
        FileExistsError: when `path` exists and was not written by `to_npz`.
        ValueError: for a path not ending in `.npz`, a source with its own validation
            split (keras' layout has no place for it), or regression data.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise InputError(f"path must end in .npz (np.savez adds it otherwise); got {path!r}.")
    check_overwrite(path)
    data = load(source, data_dir=data_dir, test_split=None, stream=False)
    if "validation" in data.split_names:
        raise InputError(f"{data.name} has its own validation split, which keras.datasets' "
                         "layout has no place for. Move it into the train or test folder.")
    if data.task != "classification":
        raise InputError(f"to_npz writes class labels; {data.name} holds regression targets.")
    arrays = {"class_names": np.array(data.class_names, dtype=str),
              "written_by": np.array(WRITTEN_BY)}
    for split in ("train", "test"):
        if split in data.split_names:
            x, y = data.arrays(split)
            arrays[f"x_{split}"] = np.asarray(x)
            arrays[f"y_{split}"] = np.asarray(y, np.int64)
    check_overwrite(path)  # it may have appeared while loading
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return data


def check_overwrite(path):
    """Raises FileExistsError when `path` exists and is not a `.npz` written by `to_npz`."""
    if not os.path.lexists(path):
        return
    mark = None
    if os.path.isfile(path) and not os.path.islink(path):
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "written_by" in archive.files:
                    mark = str(archive["written_by"])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError):
            mark = None  # not a .npz archive (np.load of a .npy gives no context manager)
    if mark != WRITTEN_BY:
        raise FileExistsError(f"{path} exists and was not written by kerascnn.data.to_npz: "
                              "it is left as it is. Choose another path, or move the file "
                              "away first.")
