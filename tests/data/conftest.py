"""Fixtures for the data tests: small real subsets of the offline MNIST and CIFAR-10 copies."""

import os
import pathlib
import tarfile

import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist_arrays(data_dir):
    """The first 600 training and 200 test digits, as keras.datasets returns them."""
    with np.load(data_dir / "mnist.npz") as archive:
        return (
            (archive["x_train"][:600], archive["y_train"][:600]),
            (archive["x_test"][:200], archive["y_test"][:200]),
        )


@pytest.fixture(scope="session")
def mnist_small(mnist_arrays):
    """A `Data` of the MNIST subset, loaded through the arrays source."""
    from kerascnn.data import load

    return load(mnist_arrays, seed=0)


CIFAR10_ARCHIVE = "cifar10-jpg.tar.gz"
CIFAR10_TRAIN_PER_CLASS, CIFAR10_TEST_PER_CLASS = 20, 10


@pytest.fixture(scope="session")
def cifar10_archive():
    """The offline CIFAR-10 JPEG archive (../shared/datasets or $KERASCNN_DATA_DIR), or skip."""
    folder = pathlib.Path(os.environ.get("KERASCNN_DATA_DIR")
                          or pathlib.Path(__file__).resolve().parents[2].parent / "shared/datasets")
    path = folder / CIFAR10_ARCHIVE
    if not path.exists():
        pytest.skip(f"offline CIFAR-10 archive not found: no {CIFAR10_ARCHIVE} in {folder}; "
                    "set KERASCNN_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def cifar10_slice(cifar10_archive, tmp_path_factory):
    """A CIFAR-10 slice unpacked as `<tmp>/cifar10/{train,test}/<class>/NNNN.jpg`: the
    first 20 train and 10 test images of each class in the archive (300 files)."""
    root = tmp_path_factory.mktemp("cifar") / "cifar10"
    wanted = {"train": CIFAR10_TRAIN_PER_CLASS, "test": CIFAR10_TEST_PER_CLASS}
    taken = {}
    with tarfile.open(cifar10_archive) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in wanted:
                continue
            key = tuple(parts[:2])
            if taken.get(key, 0) < wanted[parts[0]]:
                taken[key] = taken.get(key, 0) + 1
                target = root.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
            if len(taken) == 20 and all(taken[k] == wanted[k[0]] for k in taken):
                break
    return root


@pytest.fixture(scope="session")
def cifar10_slice_archive(cifar10_slice, tmp_path_factory):
    """The slice packed as the shared archive is: `train/...`, `test/...` members, gzip."""
    path = tmp_path_factory.mktemp("cifar_archive") / CIFAR10_ARCHIVE
    with tarfile.open(path, "w:gz") as archive:
        for split in ("train", "test"):
            archive.add(cifar10_slice / split, arcname=split)
    return path
