"""LayerScale: per-channel scaling, any spatial rank, serialization."""

import keras
import numpy as np
import pytest

from kerascnn.layers.layer_scale import LayerScale


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3), (2, 4, 5, 3)])
def test_scales_each_channel(shape):
    layer = LayerScale(0.5)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(layer(x), 0.5 * x, rtol=1e-6)
    assert layer.gamma.shape == (3,) and layer.gamma.trainable
    gamma = np.array([1.0, -2.0, 3.0], "float32")
    layer.gamma.assign(gamma)
    np.testing.assert_allclose(layer(x), x * gamma, rtol=1e-6)  # NumPy broadcasting


def test_save_and_load_round_trip(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, LayerScale(1e-6, name="scale")(inputs))
    model.get_layer("scale").gamma.assign([0.1, 0.2, 0.3])
    path = tmp_path / "layer_scale.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("scale").init_value == 1e-6
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))
    assert LayerScale.from_config(LayerScale(0.25).get_config()).init_value == 0.25


@pytest.mark.parametrize("bad", [0, -1e-6, "1e-6", True])
def test_bad_init_value_raises(bad):
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        LayerScale(bad)
