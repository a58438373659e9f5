"""The shared blocks against NumPy references and the parameter counts their papers give."""

import numpy as np
import pytest
import keras

from kerascnn import layers

NUMPY_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])
@pytest.mark.parametrize("shape,padding", [((2, 7, 3), 2), ((2, 6, 5, 3), ((1, 2), (0, 3))), ((1, 4, 5, 6, 2), 1)])
def test_spatial_padding_equals_numpy_pad(mode, shape, padding):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    rank = len(shape) - 2
    pairs = layers.padding.normalize_padding(padding, rank)
    expected = np.pad(x, ((0, 0),) + pairs + ((0, 0),), mode=NUMPY_MODES[mode])
    layer = layers.SpatialPadding(padding, mode=mode)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=0, atol=0)
    assert layer.compute_output_shape(shape) == expected.shape


def test_spatial_padding_rejects_bad_values():
    with pytest.raises(ValueError, match="'mirror'.*zeros"):
        layers.SpatialPadding(1, mode="mirror")
    with pytest.raises(ValueError, match="needs a spatial size above it"):
        layers.SpatialPadding(3, mode="reflect")(np.zeros((1, 3, 3, 1), "float32"))


def test_lrn_equals_paper_formula():
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    k, n, alpha, beta = 2.0, 5, 1e-2, 0.75
    padded = np.pad(x**2, ((0, 0), (0, 0), (0, 0), (n // 2, n // 2)))
    sums = np.stack([padded[..., c : c + n].sum(-1) for c in range(8)], axis=-1)
    expected = x / (k + alpha * sums) ** beta
    out = layers.LocalResponseNormalization(size=n, bias=k, alpha=alpha, beta=beta)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, rtol=1e-5)
    out1d = layers.LocalResponseNormalization(size=n, bias=k, alpha=alpha, beta=beta)(x[:, 0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out1d), expected[:, 0], rtol=1e-5)


def test_drop_connect_zeroes_weights_in_training_only():
    layer = layers.DropConnectDense(64, rate=0.5, use_bias=False, seed=3)
    x = np.eye(16, dtype="float32")
    inference = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(inference, keras.ops.convert_to_numpy(layer.kernel), rtol=1e-6)
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    dropped = trained == 0
    assert 0.4 < dropped.mean() < 0.6
    np.testing.assert_allclose(trained[~dropped], 2 * inference[~dropped], rtol=1e-6)


def test_stochastic_depth_drops_whole_examples():
    layer = layers.StochasticDepth(0.5, seed=0)
    x = np.ones((400, 4, 4, 2), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_example = out.reshape(400, -1)
    assert set(np.unique(per_example)) == {0.0, 2.0}
    assert (per_example.min(1) == per_example.max(1)).all()
    assert 0.4 < (per_example[:, 0] == 0).mean() < 0.6


@pytest.mark.parametrize(
    "kind,kwargs,params",
    [
        ("standard", {}, 3 * 3 * 8 * 16 + 16),
        ("grouped", {"groups": 4}, 3 * 3 * 2 * 16 + 16),
        ("dilated", {"dilation": 2}, 3 * 3 * 8 * 16 + 16),
        ("depthwise_separable", {}, 3 * 3 * 8 + 8 * 16 + 16),
        ("spatially_separable", {}, 3 * 8 * 16 + 3 * 16 * 16 + 16),
        ("flattened", {}, 8 * 16 + 3 * 16 + 3 * 16 + 16),
    ],
)
def test_conv_kinds_parameter_counts_and_shapes(kind, kwargs, params):
    inputs = keras.Input((12, 12, 8))
    out = layers.conv(inputs, 16, 3, name="c", kind=kind, **kwargs)
    model = keras.Model(inputs, out)
    assert model.count_params() == params
    assert out.shape == (None, 12, 12, 16)


@pytest.mark.parametrize("shape", [(20, 4), (10, 10, 4), (6, 6, 6, 4)])
def test_conv_and_pool_follow_the_rank(shape):
    inputs = keras.Input(shape)
    x = layers.conv(inputs, 8, 3, name="c", strides=2, padding_mode="reflect")
    x = layers.pool(x, "max", 2, name="p")
    assert len(x.shape) == len(shape) + 1
    assert x.shape[1:-1] == tuple(((n + 1) // 2) // 2 for n in shape[:-1])


def test_explicit_padding_matches_a_padded_reference():
    """AlexNet's "5×5 pad 2" equals a zero-padded 'valid' convolution."""
    x = np.random.default_rng(2).normal(size=(1, 9, 9, 3)).astype("float32")
    inputs = keras.Input((9, 9, 3))
    model = keras.Model(inputs, layers.conv(inputs, 4, 5, name="c", padding=2))
    conv = model.get_layer("c")
    reference = keras.layers.Conv2D(4, 5, padding="valid")
    reference.build((1, 13, 13, 3))
    reference.set_weights(conv.get_weights())
    expected = reference(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))))
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


def test_window_larger_than_map_names_the_layer():
    with pytest.raises(layers.SpatialSizeError, match="'c2'.*3×3 map under a 5×5 window"):
        layers.conv(keras.Input((3, 3, 1)), 4, 5, name="c2", padding="valid")


@pytest.mark.parametrize("norm,cls", [("batch", "BatchNormalization"), ("layer", "LayerNormalization"), ("group", "GroupNormalization"), ("instance", "GroupNormalization")])
def test_normalization_factory(norm, cls):
    inputs = keras.Input((4, 4, 48))
    out = layers.normalization(inputs, norm, "n")
    layer = out._keras_history.operation
    assert type(layer).__name__ == cls
    if norm == "group":
        assert layer.groups == 24  # the largest divisor of 48 not above 32
    if norm == "instance":
        assert layer.groups == 48
    assert layers.normalization(inputs, "none", "n") is inputs


def test_bad_choices_list_the_valid_ones():
    with pytest.raises(ValueError, match="norm='batchnorm'.*'batch', 'layer'"):
        layers.normalization(keras.Input((4, 4, 2)), "batchnorm", "n")
    with pytest.raises(ValueError, match="conv kind='sparse'"):
        layers.conv(keras.Input((4, 4, 2)), 2, 3, name="c", kind="sparse")
    with pytest.raises(ValueError, match="groups=3 must divide"):
        layers.conv(keras.Input((4, 4, 4)), 6, 3, name="c", groups=3)


def test_squeeze_excite_parameters():
    inputs = keras.Input((8, 8, 64))
    model = keras.Model(inputs, layers.squeeze_excite(inputs, 1 / 16, "se"))
    assert model.count_params() == (64 * 4 + 4) + (4 * 64 + 64)


@pytest.mark.parametrize(
    "layer",
    [
        layers.SpatialPadding(((1, 2), (0, 1)), mode="replicate"),
        layers.LocalResponseNormalization(size=3, alpha=1e-3),
        layers.DropConnectDense(5, rate=0.3),
        layers.StochasticDepth(0.2),
    ],
)
def test_custom_layers_round_trip_through_keras_files(tmp_path, layer):
    shape = (6, 6, 4) if not isinstance(layer, layers.DropConnectDense) else (4,)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert type(loaded.layers[-1]).__name__ == type(layer).__name__
