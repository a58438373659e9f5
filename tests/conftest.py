"""Shared test fixtures: quiet TensorFlow, seeded Keras, the offline data folder."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def data_dir():
    """The folder holding the offline mnist.npz, or skip."""
    folder = pathlib.Path(os.environ.get("KERASCNN_DATA_DIR") or REPO.parent / "shared/datasets")
    if not (folder / "mnist.npz").exists():
        pytest.skip(f"offline MNIST copy not found in {folder}; set KERASCNN_DATA_DIR")
    return folder
