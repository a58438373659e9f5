"""Shared pieces of the tuning tests: digits, loaded once."""

import pytest


@pytest.fixture(scope="session")
def digits():
    from kerascnn.data import load

    return load("digits", seed=0)
