"""Fixtures for the data tests: small real subsets of the offline MNIST copy."""

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
