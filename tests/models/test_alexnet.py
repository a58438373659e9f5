"""AlexNet and ZFNet: published sizes and parameter counts, options, small-input checks."""

import keras
import numpy as np
import pytest

from kerascnn.layers import LocalResponseNormalization, SpatialPadding
from kerascnn.models import alexnet, build_model, zfnet
from kerascnn.models.alexnet import max_pool

# The papers' convolutions as (filters, kernel, stride, padding, split into towers, pooled).
# AlexNet: Krizhevsky et al. 2012, Fig. 2 / section 3.5 (the paper's pads of 2 and 1 keep the
# size). ZFNet: Zeiler & Fergus 2013, Fig. 3 (conv1 pad 1, conv2 unpadded).
ALEXNET_TABLE = [
    (96, 11, 4, 0, False, True),
    (256, 5, 1, 2, True, True),
    (384, 3, 1, 1, False, False),
    (384, 3, 1, 1, True, False),
    (256, 3, 1, 1, True, True),
]
ZFNET_TABLE = [(96, 7, 2, 1, False, True), (256, 5, 2, 0, True, True)] + ALEXNET_TABLE[2:]


def conv_side(n, kernel, stride, pad):
    return (n + 2 * pad - kernel) // stride + 1


def ceil_pool_side(n, window=3, stride=2):
    return -(-(n - window) // stride) + 1


def hand_count(table, side, channels=3, classes=1000, groups=1, hidden=(4096, 4096)):
    """Parameter count of an AlexNet-style table, by the textbook formulas."""
    total = 0
    for filters, kernel, stride, pad, split, pooled in table:
        g = groups if split else 1
        total += kernel * kernel * (channels // g) * filters + filters
        channels, side = filters, conv_side(side, kernel, stride, pad)
        side = ceil_pool_side(side) if pooled else side
    widths = [side * side * channels, *hidden, classes]
    return total + sum(a * b + b for a, b in zip(widths, widths[1:]))


def sides(model, names):
    return [model.get_layer(n).output.shape[1] for n in names]


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_alexnet_matches_the_paper():
    model = alexnet()
    # Fig. 2: 55×55 first maps, 27 after pool1, 13 after pool2, 6×6×256 into the FC layers.
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    assert sides(model, names) == [55, 27, 27, 13, 13, 13, 13, 6]
    # "Sixty million parameters": 62,378,344 for the single-tower network.
    assert model.count_params() == trainable_count(model) == 62_378_344
    assert model.count_params() == hand_count(ALEXNET_TABLE, 227)
    assert model.output.shape == (None, 1000)


def test_two_tower_alexnet_matches_caffe_bvlc_alexnet():
    model = alexnet(groups=2)
    assert [model.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    # Caffe's bvlc_alexnet (group: 2 on conv2, conv4, conv5) has 60,965,224 parameters.
    assert model.count_params() == hand_count(ALEXNET_TABLE, 227, groups=2) == 60_965_224


def test_zfnet_reproduces_the_figure_maps():
    model = zfnet()
    # Fig. 3: 110 → pool 55 → 26 → pool 13 → 13, 13, 13 → pool 6.
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    assert sides(model, names) == [110, 55, 26, 13, 13, 13, 13, 6]
    assert model.count_params() == hand_count(ZFNET_TABLE, 224) == 62_357_608


def test_lrn_order_and_constants():
    def order(model):
        keep = {"conv1_relu", "lrn1", "pool1"}
        return [layer.name for layer in model.layers if layer.name in keep]

    small = dict(input_shape=(63, 63, 3), width_multiplier=1 / 16, hidden_units=(8,))
    # AlexNet section 3.5: LRN follows the ReLU and precedes the pooling; ZFNet Fig. 3:
    # ReLU, pooling, then contrast normalisation.
    assert order(alexnet(**small)) == ["conv1_relu", "lrn1", "pool1"]
    assert order(zfnet(**small)) == ["conv1_relu", "pool1", "lrn1"]
    lrn = alexnet(**small).get_layer("lrn2")
    assert isinstance(lrn, LocalResponseNormalization)
    assert (lrn.size, lrn.bias, lrn.alpha, lrn.beta) == (5, 2.0, 1e-4, 0.75)
    assert not any(isinstance(layer, LocalResponseNormalization)
                   for layer in alexnet(lrn=False, **small).layers)


def test_ceil_mode_pooling_matches_numpy():
    data = np.random.default_rng(0).normal(size=(2, 6, 7, 3)).astype("float32")
    inputs = keras.Input(data.shape[1:])
    got = keras.Model(inputs, max_pool(inputs, "pool")).predict(data, verbose=0)
    rows, cols = ceil_pool_side(6), ceil_pool_side(7)
    expected = np.empty((2, rows, cols, 3), "float32")
    for i in range(rows):
        for j in range(cols):  # Caffe clips the last windows at the map's edge
            expected[:, i, j] = data[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
    assert got.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "builder, input_shape, conv_layer",
    [(alexnet, (100, 2), keras.layers.Conv1D), (zfnet, (48, 48, 48, 1), keras.layers.Conv3D)],
)
def test_1d_and_3d_inputs(builder, input_shape, conv_layer):
    model = builder(input_shape=input_shape, classes=3, width_multiplier=1 / 16,
                    hidden_units=(8,))
    assert isinstance(model.get_layer("conv2"), conv_layer)
    out = model.predict(np.ones((2, *input_shape), "float32"), verbose=0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_options_change_the_graph():
    small = dict(input_shape=(67, 67, 3), width_multiplier=1 / 16, hidden_units=(8,))
    model = alexnet(norm="group", conv_kind="spatially_separable", activation="gelu",
                    se_ratio=0.25, spatial_dropout=0.1, drop_connect=0.2, **small)
    assert isinstance(model.get_layer("conv1_norm"), keras.layers.GroupNormalization)
    assert not model.get_layer("conv1").use_bias  # no bias before a normalisation
    assert model.get_layer("conv1").kernel_size == (11, 11)  # the stem stays standard
    assert model.get_layer("conv2_axis0").kernel_size == (5, 1)
    assert model.get_layer("conv2_axis1").kernel_size == (1, 5)
    assert model.get_layer("conv3_gelu").get_config()["activation"] == "gelu"
    assert isinstance(model.get_layer("conv5_se_excite"), keras.layers.Multiply)
    assert isinstance(model.get_layer("pool1_spatial_dropout"), keras.layers.SpatialDropout2D)
    assert model.get_layer("fc1").rate == 0.2

    padded = zfnet(padding_mode="reflect", **small).get_layer("conv1_pad")
    assert isinstance(padded, SpatialPadding) and padded.mode == "reflect"


def test_width_multiplier_scales_filters_and_hidden_units():
    model = alexnet(width_multiplier=0.25, input_shape=(227, 227, 3), classes=10)
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 6)] == [24, 64, 96, 96, 64]
    assert model.get_layer("fc1").units == model.get_layer("fc2").units == 1024
    table = [(round(f / 4), *rest) for f, *rest in ALEXNET_TABLE]
    assert model.count_params() == hand_count(table, 227, classes=10, hidden=(1024, 1024))


def test_save_and_load_keeps_outputs(tmp_path):
    model = alexnet(input_shape=(67, 67, 3), classes=4, width_multiplier=1 / 16, groups=2,
                    hidden_units=(8,), norm="batch", padding_mode="reflect", drop_connect=0.2)
    data = np.random.default_rng(1).uniform(size=(2, 67, 67, 3)).astype("float32")
    path = tmp_path / "alexnet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    expected = model.predict(data, verbose=0)
    np.testing.assert_allclose(restored.predict(data, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, input_shape, message",
    [
        # 39 → conv1 8 → pool1 4 → pool2 2 → pool5 1; at 38 the map reaching pool5 is 1 wide.
        ("alexnet", (38, 38, 3), "alexnet needs inputs of at least 39×39; got 38×38"),
        # 47 → conv1 22 → pool1 11 → conv2 4 → pool2 2 → pool5 1.
        ("zfnet", (46, 46, 3), "zfnet needs inputs of at least 47×47; got 46×46"),
        ("alexnet", (38, 2), "alexnet needs inputs of at least 39; got 38"),
    ],
)
def test_too_small_inputs_name_the_minimum(name, input_shape, message):
    with pytest.raises(ValueError, match=message) as error:
        build_model(name, input_shape=input_shape)
    assert "'pool5'" in str(error.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"conv_kind": "dilated"}, r"conv_kind='dilated' is not supported"),
        ({"groups": 0}, r"groups must be a positive int; got 0"),
        ({"groups": 2, "conv_kind": "depthwise_separable"}, "cannot be combined"),
        ({"width_multiplier": 0}, r"width_multiplier must be a positive number; got 0"),
        ({"hidden_units": 4096}, r"hidden_units=4096 must be a tuple of positive ints"),
        ({"norm": "bogus"}, r"norm='bogus' is not supported"),
        ({"pool_kind": "avg"}, r"alexnet has no option pool_kind"),
    ],
)
def test_bad_options_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("alexnet", **options)
