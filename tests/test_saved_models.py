"""The shipped models in saved_models/: intact files that still score what their manifests say."""

import json
import pathlib

import keras
import numpy as np
import pytest

from kerascnn.files import sha256_file

SAVED_MODELS = pathlib.Path(__file__).resolve().parents[1] / "kerascnn" / "saved_models"
MANIFESTS = sorted(SAVED_MODELS.glob("*.json"))


def _manifest(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    """The 10,000 raw uint8 28×28 test digits, their labels and the file's SHA-256."""
    path = data_dir / "mnist.npz"
    with np.load(path) as mnist:
        return mnist["x_test"], mnist["y_test"], sha256_file(path)


def test_the_documented_models_are_shipped():
    assert {path.stem for path in MANIFESTS} >= {"lenet5_mnist", "resnet18_mnist"}
    readme = (SAVED_MODELS / "README.md").read_text()
    assert all(_manifest(path)["file"] in readme for path in MANIFESTS)


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda path: path.stem)
def test_saved_model_file_matches_its_manifest(manifest_path):
    manifest = _manifest(manifest_path)
    path = SAVED_MODELS / manifest["file"]
    assert sha256_file(path) == manifest["file_sha256"]
    assert path.stat().st_size == manifest["file_bytes"] < 12e6
    assert manifest["data"]["name"] == "mnist"
    assert manifest["epochs"] == manifest["recipe"]["epochs"]


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda path: path.stem)
def test_saved_model_scores_its_manifest_accuracy(manifest_path, mnist_test):
    manifest = _manifest(manifest_path)
    x_test, y_test, data_sha256 = mnist_test
    assert data_sha256 == manifest["data"]["sha256"], "not the MNIST copy it was trained on"
    assert x_test.dtype == np.uint8 and x_test.shape == (10000, 28, 28)

    model = keras.models.load_model(SAVED_MODELS / manifest["file"], safe_mode=True)
    assert not model.compiled  # an inference copy, saved without optimizer state
    predictions = model.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
    # One image of 10,000 may flip with the CPU's order of float summation.
    assert np.mean(predictions == y_test) == pytest.approx(manifest["test_accuracy"], abs=1e-4)
