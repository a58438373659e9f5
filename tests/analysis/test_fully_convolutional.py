"""to_fully_convolutional: same outputs on the trained size, a map of windows on larger inputs."""

import keras
import numpy as np
import pytest

from kerascnn.analysis import receptive_field, to_fully_convolutional

L = keras.layers
RNG = np.random.default_rng(0)


def flatten_head():
    x = keras.Input((12, 12, 2))
    y = L.MaxPooling2D(2)(L.Conv2D(4, 3, activation="relu")(x))
    y = L.Flatten()(L.Conv2D(5, 3)(y))  # 3x3x5 features
    y = L.Dropout(0.3)(L.Dense(8, activation="relu")(y))
    return keras.Model(x, L.Dense(3, activation="softmax")(y))


def pooled_head():
    x = keras.Input((10, 2))
    y = L.Conv1D(4, 3, activation="relu")(x)
    y = L.LayerNormalization()(L.Dense(6)(L.GlobalAveragePooling1D()(y)))
    return keras.Sequential([keras.Input((10, 2)), keras.Model(x, y), L.Dense(3)])


def assert_windows(model, fully, big_shape):
    """Each output position equals the original model on the window it covers."""
    size = model.inputs[0].shape[1:-1]
    jump = [f.jump for f in receptive_field(model)]
    x = RNG.normal(size=(1, *big_shape)).astype("float32")
    grid = fully(x).numpy()[0]
    for position in np.ndindex(grid.shape[:-1]):
        window = tuple(slice(p * j, p * j + s) for p, j, s in zip(position, jump, size))
        np.testing.assert_allclose(grid[position], model(x[(0, *window)][None]).numpy()[0], atol=1e-5)
    return grid.shape[:-1]


def test_flatten_head_becomes_a_convolution():
    model = flatten_head()
    fully = to_fully_convolutional(model)
    x = RNG.normal(size=(4, 12, 12, 2)).astype("float32")
    np.testing.assert_allclose(fully(x).numpy().reshape(4, 3), model(x).numpy(), atol=1e-6)
    assert [type(l).__name__ for l in fully.layers[-3:]] == ["Conv2D", "Dropout", "Conv2D"]
    assert fully.layers[-3].kernel.shape == (3, 3, 5, 8)
    assert fully.count_params() == model.count_params()
    assert assert_windows(model, fully, (16, 18, 2)) == (3, 4)


def test_global_pooling_head_in_nested_models_1d():
    model = pooled_head()
    fully = to_fully_convolutional(model)
    x = RNG.normal(size=(2, 10, 2)).astype("float32")
    np.testing.assert_allclose(fully(x).numpy().reshape(2, 3), model(x).numpy(), atol=1e-5)
    assert assert_windows(model, fully, (15, 2)) == (6,)


def test_keras_applications_mobilenet_head():
    # MobileNet's head: GAP(keepdims) -> Dropout -> 1x1 Conv2D -> Reshape -> softmax.
    model = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), alpha=0.25, classes=5)
    fully = to_fully_convolutional(model)
    x = RNG.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fully(x).numpy().reshape(2, 5), model(x).numpy(), atol=1e-5)
    assert fully(RNG.uniform(0, 255, (1, 96, 64, 3)).astype("float32")).shape == (1, 3, 2, 5)


def test_squeeze_excite_gate_stays_global():
    x = keras.Input((8, 8, 3))
    y = L.Conv2D(4, 3, padding="same")(x)
    gate = L.Dense(4, activation="sigmoid")(L.Reshape((1, 1, 4))(L.GlobalAveragePooling2D()(y)))
    y = L.Multiply()([y, gate])
    model = keras.Model(x, L.Dense(2)(L.GlobalAveragePooling2D()(y)))
    fully = to_fully_convolutional(model)
    inputs = RNG.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(fully(inputs).numpy().reshape(2, 2), model(inputs).numpy(), atol=1e-5)
    assert fully(RNG.normal(size=(1, 12, 10, 3)).astype("float32")).shape == (1, 5, 3, 2)


def test_what_cannot_be_converted_is_explained():
    x = keras.Input((6, 6, 2))
    y = L.BatchNormalization(name="bn_on_features")(L.Flatten()(L.Conv2D(2, 3)(x)))
    with pytest.raises(ValueError, match="cannot convert layer 'bn_on_features'"):
        to_fully_convolutional(keras.Model(x, L.Dense(2)(y)))
    flat = keras.Input((5,))
    with pytest.raises(ValueError, match="1 to 3 spatial axes"):
        to_fully_convolutional(keras.Model(flat, L.Dense(2)(flat)))
    with pytest.raises(ValueError, match="fixed size"):
        to_fully_convolutional(keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(2, 3)]))
