"""Fixtures for the data tests: small real subsets of the offline MNIST and CIFAR-10 copies."""

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


@pytest.fixture(scope="session")
def cifar10_slice_archive(cifar10_slice, tmp_path_factory):
    """The slice packed as the shared archive is: `train/...`, `test/...` members, gzip."""
    path = tmp_path_factory.mktemp("cifar_archive") / "cifar10-jpg.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for split in ("train", "test"):
            archive.add(cifar10_slice / split, arcname=split)
    return path
