"""Fixtures of the transfer tests: scikit-learn's digits, grey and RGB."""

import numpy as np
import pytest

from kerascnn.data import load


@pytest.fixture(scope="session")
def digits():
    return load("digits", validation_split=0.1, seed=0)


@pytest.fixture(scope="session")
def rgb_digits(digits):
    """The digits as RGB images (three equal channels)."""
    x, y = digits.arrays("train")
    x_test, y_test = digits.arrays("test")
    return load(((np.repeat(x, 3, axis=-1), y), (np.repeat(x_test, 3, axis=-1), y_test)),
                validation_split=0.1, seed=0)
