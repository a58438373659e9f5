"""VGG: published parameter counts, equality with keras.applications, options."""

import keras
import numpy as np
import pytest

from kerascnn.layers import SpatialPadding
from kerascnn.models import build_model, pretrained, vgg11, vgg16

# Simonyan & Zisserman 2015, Table 1: filters per stage and convolutions per stage.
FILTERS = (64, 128, 256, 512, 512)
DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2),
          "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def hand_count(depths, side, filters=FILTERS, hidden=(4096, 4096), classes=1000, channels=3):
    """Parameter count of a plain VGG (3×3 convolutions with biases, flatten head)."""
    total = 0
    for width, depth in zip(filters, depths):
        for _ in range(depth):
            total += 9 * channels * width + width
            channels = width
        side //= 2
    widths = [side * side * channels, *hidden, classes]
    return total + sum(a * b + b for a, b in zip(widths, widths[1:]))


# torchvision's published num_params (models/vgg.py weight metadata); VGG16 and VGG19 are
# also checked against keras.applications built with weights=None.
@pytest.mark.parametrize(
    "name, published, application",
    [
        ("vgg11", 132_863_336, None),
        ("vgg13", 133_047_848, None),
        ("vgg16", 138_357_544, "VGG16"),
        ("vgg19", 143_667_240, "VGG19"),
    ],
)
def test_parameter_counts(name, published, application):
    model = build_model(name)
    assert model.count_params() == trainable_count(model) == published
    assert published == hand_count(DEPTHS[name], 224)
    if application:
        reference = getattr(keras.applications, application)(weights=None)
        assert reference.count_params() == published


def test_vgg16_bn_parameter_count():
    model = vgg16(norm="batch")
    # torchvision's vgg16_bn has 138,365,992 trainable parameters, but keeps a bias on each
    # convolution before BatchNorm; we drop them (one per filter: 2·64 + 2·128 + 3·256 +
    # 3·512 + 3·512 = 4,224). Keras also counts BatchNorm's moving mean and variance
    # (PyTorch buffers): 2 · 4,224 more in count_params().
    conv_widths = sum(f * d for f, d in zip(FILTERS, DEPTHS["vgg16"]))
    assert conv_widths == 4_224
    assert trainable_count(model) == 138_365_992 - conv_widths == 138_361_768
    assert model.count_params() == 138_361_768 + 2 * conv_widths == 138_370_216
    assert not model.get_layer("block1_conv1").use_bias
    assert isinstance(model.get_layer("block5_conv3_norm"), keras.layers.BatchNormalization)


@pytest.mark.parametrize("include_top, pooling", [(True, None), (False, "avg")])
def test_same_function_as_keras_applications(include_top, pooling):
    options = dict(include_top=include_top, pooling=pooling, input_shape=(32, 32, 3))
    if include_top:
        options["classes"] = 10
    ours = vgg16(**options)
    reference = keras.applications.VGG16(weights=None, **options)
    weighted = {layer.name for layer in reference.layers if layer.weights}
    assert weighted == {layer.name for layer in ours.layers if layer.weights}
    pretrained.copy_weights("vgg16", reference, ours)
    data = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    expected = reference.predict(data, verbose=0)
    assert ours.output.shape == reference.output.shape
    np.testing.assert_allclose(ours.predict(data, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_dropout_follows_the_first_two_fully_connected_layers():
    names = [(layer.name, layer) for layer in vgg11(input_shape=(32, 32, 3),
                                                      width_multiplier=1 / 16).layers]
    after = {name: names[i + 1][1] for i, (name, _) in enumerate(names[:-1])}
    # Section 3.1: dropout (ratio 0.5) regularises the first two fully connected layers.
    for fc in ("fc1", "fc2"):
        assert isinstance(after[fc], keras.layers.Dropout) and after[fc].rate == 0.5
    assert not any(isinstance(layer, keras.layers.Dropout)
                   for layer in vgg11(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                                      dropout=0.0).layers)


def test_no_dropout_on_the_flattened_maps():
    names = [layer.name for layer in vgg11(input_shape=(32, 32, 3), width_multiplier=1 / 16).layers]
    assert names[names.index("flatten") + 1] == "fc1"


def test_width_multiplier_scales_filters_and_hidden_units():
    model = vgg11(input_shape=(32, 32, 3), width_multiplier=0.25, classes=10)
    assert model.get_layer("block5_conv2").filters == 128
    assert model.get_layer("fc1").units == model.get_layer("fc2").units == 1024
    quarter = tuple(f // 4 for f in FILTERS)
    expected = hand_count(DEPTHS["vgg11"], 32, quarter, hidden=(1024, 1024), classes=10)
    assert model.count_params() == expected


def test_hidden_units_override():
    model = vgg11(input_shape=(32, 32, 3), width_multiplier=0.25, hidden_units=(64,), classes=10)
    assert model.get_layer("fc1").units == 64
    assert "fc2" not in [layer.name for layer in model.layers]
    head = vgg11(input_shape=(32, 32, 3), width_multiplier=0.25, hidden_units=(), classes=10)
    assert head.get_layer("predictions").input.shape == (None, 128)


def test_depthwise_separable_convolutions_keep_a_standard_stem():
    model = vgg11(input_shape=(32, 32, 3), conv_kind="depthwise_separable", hidden_units=(8,))
    assert isinstance(model.get_layer("block1_conv1"), keras.layers.Conv2D)
    assert isinstance(model.get_layer("block2_conv1_dw"), keras.layers.DepthwiseConv2D)
    pointwise = model.get_layer("block2_conv1_pw")
    assert pointwise.kernel_size == (1, 1) and pointwise.filters == 128
    # A depthwise 3×3 (no bias) plus a 1×1 with bias replaces each 3×3 after the stem.
    trunk = 9 * 3 * 64 + 64
    channels = 64
    for width, depth in zip(FILTERS[1:], DEPTHS["vgg11"][1:]):
        for _ in range(depth):
            trunk += 9 * channels + channels * width + width
            channels = width
    head = 512 * 8 + 8 + 8 * 1000 + 1000
    assert model.count_params() == trunk + head


def test_options_change_the_graph():
    model = vgg11(input_shape=(32, 32, 3), width_multiplier=1 / 16, hidden_units=(8,),
                  padding_mode="replicate", norm="instance", activation="elu", se_ratio=0.5,
                  spatial_dropout=0.1, drop_connect=0.3)
    padding = model.get_layer("block3_conv2_pad")
    assert isinstance(padding, SpatialPadding) and padding.mode == "replicate"
    assert model.get_layer("block3_conv2").padding == "valid"
    norm = model.get_layer("block1_conv1_norm")  # instance norm: one group per channel
    assert isinstance(norm, keras.layers.GroupNormalization) and norm.groups == 4
    assert model.get_layer("block2_conv1_elu").get_config()["activation"] == "elu"
    assert isinstance(model.get_layer("block4_conv2_se_excite"), keras.layers.Multiply)
    assert isinstance(model.get_layer("block5_spatial_dropout"), keras.layers.SpatialDropout2D)
    assert model.get_layer("predictions").rate == 0.3


@pytest.mark.parametrize(
    "input_shape, conv_layer",
    [((40, 3), keras.layers.Conv1D), ((32, 32, 32, 1), keras.layers.Conv3D)],
)
def test_1d_and_3d_inputs(input_shape, conv_layer):
    model = vgg11(input_shape=input_shape, classes=5, width_multiplier=1 / 16, hidden_units=(8,))
    assert isinstance(model.get_layer("block4_conv2"), conv_layer)
    out = model.predict(np.ones((2, *input_shape), "float32"), verbose=0)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_too_small_input_names_the_minimum():
    with pytest.raises(ValueError, match="vgg16 needs inputs of at least 32×32; got 31×31") as e:
        build_model("vgg16", input_shape=(31, 31, 3))
    assert "'block5_pool'" in str(e.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"conv_kind": "grouped"}, r"conv_kind='grouped' is not supported"),
        ({"width_multiplier": -1}, r"width_multiplier must be a positive number; got -1"),
        ({"hidden_units": (4096, 0)}, r"hidden_units=\(4096, 0\) must be a tuple"),
        ({"norm": "bn"}, r"norm='bn' is not supported"),
        ({"padding_mode": "circular"}, r"padding_mode='circular' is not supported"),
        ({"groups": 2}, r"vgg16 has no option groups"),
    ],
)
def test_bad_options_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("vgg16", **options)
