"""ResNet family: published parameter counts, ranks, options, stochastic depth."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.layers import SpatialPadding, StochasticDepth

TINY = {"width_multiplier": 0.125, "num_classes": 3}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def conv_bias_count(model):
    """keras.applications' ResNets put a bias on every convolution (all followed by BN)."""
    return sum(
        layer.bias.shape[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.use_bias
    )


# Trainable: torchvision's parameter counts (torchvision.models, weights=None; timm for
# seresnet50, whose SE uses 1×1 convolutions with bias). Total adds BatchNorm's moving mean and
# variance, which torchvision keeps as buffers: 2 × the BN channels of He et al.'s Table 1
# (resnet18: 2 × 4,800 = 9,600; resnet50: 2 × 26,560 = 53,120; resnext50: 2 × 34,112).
PUBLISHED = {
    "resnet18": (11_689_512, 11_699_112),
    "resnet34": (21_797_672, 21_814_696),
    "resnet50": (25_557_032, 25_610_152),
    "resnet101": (44_549_160, 44_654_504),
    "resnet152": (60_192_808, 60_344_232),
    "resnext50_32x4d": (25_028_904, 25_097_128),
    "se_resnet50": (28_088_024, 28_141_144),
}


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_counts_match_torchvision(name):
    model = kerascnn.build_model(name)
    assert (trainable_count(model), model.count_params()) == PUBLISHED[name]


@pytest.mark.parametrize(
    "name, reference",
    [
        ("resnet50", "ResNet50"),
        pytest.param("resnet101", "ResNet101", marks=pytest.mark.slow),
        pytest.param("resnet152", "ResNet152", marks=pytest.mark.slow),
    ],
)
def test_counts_match_keras_applications_less_conv_biases(name, reference):
    ours = kerascnn.build_model(name)
    theirs = getattr(keras.applications, reference)(weights=None)
    biases = conv_bias_count(theirs)
    assert trainable_count(ours) == trainable_count(theirs) - biases == PUBLISHED[name][0]
    assert ours.count_params() == theirs.count_params() - biases == PUBLISHED[name][1]


def test_se_resnet50_count_and_se_before_the_addition():
    # Hu et al. 2018, Fig. 3: the SE gate rescales the residual branch, then the shortcut is added.
    # Its 2,530,992 extra weights (timm seresnet50): over the 16 blocks, 2·C·C/16 + C/16 + C.
    model = kerascnn.build_model("se_resnet50")
    assert (trainable_count(model), model.count_params()) == PUBLISHED["se_resnet50"]
    excites = [l for l in model.layers if l.name.endswith("_se_excite")]
    assert len(excites) == 16
    assert model.get_layer("conv2_block1_se_reduce").filters == 256 // 16
    assert model.get_layer("conv5_block3_se_reduce").filters == 2048 // 16
    add = model.get_layer("conv3_block2_add")
    assert model.get_layer("conv3_block2_se_excite").output is add.input[1]


def test_resnet_rs50_matches_keras_resnet_rs50():
    # tf.keras (tf-keras 2.21) ResNetRS50(weights=None, include_top=True): trainable 35,691,912,
    # total 35,745,288 (Keras 3 dropped ResNet-RS, so these are literals; the Model Garden table
    # says 35.7M). Same architecture: 3×3 stem 32-32-64 and a stride-2 3×3 conv instead of the
    # max-pool, avg-down projections in the first block of each stage, SE 0.25 of the output
    # channels with biased 1×1 convs, no conv bias, dropout 0.25, no stochastic depth for RS-50.
    model = kerascnn.build_model("resnet_rs50")
    assert (trainable_count(model), model.count_params()) == (35_691_912, 35_745_288)
    assert model.input.shape[1:] == (160, 160, 3)
    assert model.get_layer("conv5_block3_out").output.shape[1:] == (5, 5, 2048)
    assert model.get_layer("predictions_dropout").rate == 0.25
    assert isinstance(model.get_layer("conv3_block1_0_pool"), keras.layers.AveragePooling2D)
    assert model.get_layer("conv3_block1_0_conv").strides == (1, 1)
    assert not any(isinstance(l, keras.layers.MaxPooling2D) for l in model.layers)
    assert not any(isinstance(l, StochasticDepth) for l in model.layers)


@pytest.mark.parametrize(
    "stem, side, final_side",
    [("standard", 224, 7), ("deep", 224, 7), ("rs", 160, 5), ("cifar", 32, 4)],
)
def test_stems_downsample_as_documented(stem, side, final_side):
    model = kerascnn.build_model(
        "resnet18", input_shape=(side, side, 3), stem=stem, include_top=False,
        width_multiplier=0.125,
    )
    assert model.output.shape[1:] == (final_side, final_side, 64)
    names = {l.name for l in model.layers}
    assert ("pool1_pool" in names) == (stem in ("standard", "deep"))
    assert ("conv1_4_conv" in names) == (stem == "rs")


@pytest.mark.parametrize(
    "stride_on, strided", [("3x3", "conv3_block1_2_conv"), ("1x1", "conv3_block1_1_conv")]
)
def test_stride_on_moves_the_bottleneck_stride(stride_on, strided):
    model = kerascnn.build_model("resnet50", input_shape=(32, 32, 3), stride_on=stride_on, **TINY)
    strides = {
        l.name: l.strides
        for l in model.layers
        if l.name.startswith("conv3_block1_") and l.name.endswith("conv")
    }
    assert strides.pop(strided) == (2, 2)
    assert strides.pop("conv3_block1_0_conv") == (2, 2)
    assert set(strides.values()) == {(1, 1)}


@pytest.mark.parametrize("shape", [(64, 2), (16, 16, 16, 1)], ids=["1d", "3d"])
def test_one_and_three_dimensional_resnet18_forward(shape):
    model = kerascnn.build_model("resnet18", input_shape=shape, **TINY)
    rank = len(shape) - 1
    convs = [l for l in model.layers if "Conv" in type(l).__name__]
    assert convs and all(type(l).__name__ == f"Conv{rank}D" for l in convs)
    out = model(np.random.default_rng(0).normal(size=(2, *shape)).astype("float32"))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


def test_stochastic_depth_rises_linearly_and_acts_only_in_training():
    model = kerascnn.build_model("resnet18", input_shape=(16, 16, 3), drop_path_rate=0.5, **TINY)
    rates = [l.rate for l in model.layers if isinstance(l, StochasticDepth)]
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.5, 8)[1:])  # timm: 0 in block 1.
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    first, second = model(x, training=True), model(x, training=True)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_zero_init_residual_makes_every_block_start_as_its_shortcut():
    model = kerascnn.build_model(
        "resnet50", input_shape=(32, 32, 3), zero_init_residual=True, **TINY
    )
    gammas = {
        l.name: l.gamma.numpy()
        for l in model.layers
        if isinstance(l, keras.layers.BatchNormalization)
    }
    last = {n for n in gammas if n.endswith("_3_norm")}
    assert len(last) == 16 and all(not gammas[n].any() for n in last)
    assert all((g == 1).all() for n, g in gammas.items() if n not in last)
    probe = keras.Model(model.input, [model.get_layer("conv4_block2_add").output,
                                      model.get_layer("conv4_block1_out").output])
    added, shortcut = probe(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"))
    np.testing.assert_allclose(added, shortcut, atol=1e-6)


def test_resnext_count_groups_and_widths_follow_xie_et_al():
    model = kerascnn.build_model("resnext50_32x4d")
    assert (trainable_count(model), model.count_params()) == PUBLISHED["resnext50_32x4d"]
    conv = model.get_layer("conv2_block1_2_conv")
    assert (conv.groups, conv.filters) == (32, 128)  # 32 groups × 4 channels.
    assert model.get_layer("conv5_block1_2_conv").filters == 32 * 4 * 8


def test_options_change_the_graph():
    model = kerascnn.build_model(
        "resnet18", input_shape=(64, 64, 3), norm="group", padding_mode="reflect",
        conv_kind="depthwise_separable", spatial_dropout=0.1, se_ratio=0.25, **TINY,
    )
    types = {type(l).__name__ for l in model.layers}
    assert "GroupNormalization" in types and "BatchNormalization" not in types
    assert {l.mode for l in model.layers if isinstance(l, SpatialPadding)} == {"reflect"}
    assert "DepthwiseConv2D" in types and "SpatialDropout2D" in types
    unnormalised = kerascnn.build_model("resnet18", input_shape=(32, 32, 3), norm="none", **TINY)
    assert all(l.use_bias for l in unnormalised.layers if isinstance(l, keras.layers.Conv2D))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"stem": "tiny"}, "stem='tiny' is not supported"),
        ({"stride_on": "3x1"}, "stride_on='3x1' is not supported"),
        ({"shortcut": "zeros"}, "shortcut='zeros' is not supported"),
        ({"padding_mode": "wrap"}, "padding_mode='wrap' is not supported"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\); got 1.0"),
        ({"se_ratio": 2}, r"se_ratio=2 must be in \[0, 1\]"),
        ({"width_multiplier": 0}, "width_multiplier must be a positive number; got 0"),
        ({"groups": 32, "base_width": 4}, "basic block supports only groups=1 and base_width=64"),
        ({"conv_kind": "dilated"}, "conv_kind='dilated' is not supported by ResNet"),
        ({"conv_kind": "grouped"}, "conv_kind='grouped' needs groups >= 2; got groups=1"),
        ({"zero_init_residual": True, "norm": "none"}, "zero_init_residual=True .* norm != 'none'"),
    ],
)
def test_bad_options_raise_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        kerascnn.build_model("resnet18", input_shape=(32, 32, 3), **options)


def test_resnet_rs_with_stochastic_depth_round_trips(tmp_path):
    model = kerascnn.build_model("resnet_rs50", input_shape=(32, 32, 3), drop_path_rate=0.2, **TINY)
    model.save(tmp_path / "rs.keras")
    loaded = keras.models.load_model(tmp_path / "rs.keras")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x), loaded(x), rtol=1e-5, atol=1e-6)
    rates = [l.rate for l in loaded.layers if isinstance(l, StochasticDepth)]
    assert rates[-1] == pytest.approx(0.2)
