"""Helpers shared by the transfer tests (fixtures live in conftest.py)."""

import pathlib

import kerascnn

SAVED_MODELS = pathlib.Path(__file__).resolve().parents[2] / "kerascnn" / "saved_models"


def small_lenet(norm="none", input_shape=(16, 16, 1), classes=10):
    """A LeNet-5 on 16×16 inputs, optionally with BatchNorm (no Preprocessing layer)."""
    return kerascnn.build_model("lenet5", input_shape=input_shape, num_classes=classes,
                                norm=norm, activation="relu")
