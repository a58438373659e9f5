"""Bad sources: one clear error line each, nothing written."""

import keras
import pytest

import kerascnn
from transfer_helpers import SAVED_MODELS
from kerascnn.transfer import TransferError


def _refused(source, match, digits, tmp_path):
    with pytest.raises(TransferError, match=match) as error:
        kerascnn.finetune(source, digits, out=tmp_path / "out", verbose=0)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_lambda_layer_refused_with_the_risk_and_the_override(digits, tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    _refused(tmp_path / "lambda.keras", "Lambda layer.*double.*runs Python code.*safe_mode=False",
             digits, tmp_path)
    trusted = kerascnn.extract_features(tmp_path / "lambda.keras", digits, safe_mode=False)
    assert trusted["test"][0].shape == (digits.size("test"), 64)


def test_truncated_and_corrupt_files(digits, tmp_path):
    data = (SAVED_MODELS / "lenet5_mnist.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.keras", "not a readable .keras file", digits, tmp_path)
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    _refused(tmp_path / "junk.keras", "not a readable .keras file", digits, tmp_path)


def test_missing_source_lists_the_saved_models(digits, tmp_path):
    _refused("resnet99_mnist", "does not exist.*lenet5_mnist, resnet18_mnist", digits, tmp_path)


@keras.saving.register_keras_serializable(package="transfer_tests")
class Doubling(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


def test_missing_custom_object_names_the_import(digits, tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(Doubling(name="doubling")(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(
        tmp_path / "custom.keras")
    registry = keras.saving.get_custom_objects()
    saved = registry.pop("transfer_tests>Doubling")
    try:
        _refused(tmp_path / "custom.keras", "custom layer 'Doubling' .registered as "
                 f"'transfer_tests>Doubling'.*import {__name__}", digits, tmp_path)
    finally:
        registry["transfer_tests>Doubling"] = saved
