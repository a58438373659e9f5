"""DenseNet-BC: published parameter counts, keras.applications parity, channel arithmetic."""

import keras
import numpy as np
import pytest

from kerascnn.layers.regularization import DropConnectDense
from kerascnn.models import build_model, pretrained
from kerascnn.models.densenet import densenet121, densenet169, densenet201

BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
          "densenet201": (6, 12, 48, 32)}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def assert_dense_channels(model, blocks, growth_rate, compression, side):
    """Checks channels: input + layers × k after a block, ⌊θ × channels⌋ after a transition."""
    channels = 2 * growth_rate  # the stem
    for stage, layers in enumerate(blocks, start=2):
        if stage > 2:
            channels, side = int(channels * compression), side // 2
            assert model.get_layer(f"pool{stage - 1}_pool").output.shape == (
                None, side, side, channels)
        for i in range(1, layers + 1):
            concat = model.get_layer(f"conv{stage}_block{i}_concat")
            assert concat.output.shape == (None, side, side, channels + i * growth_rate)
            assert model.get_layer(f"conv{stage}_block{i}_1_conv").filters == 4 * growth_rate
        channels += layers * growth_rate
    assert model.get_layer("norm").output.shape == (None, side, side, channels)


@pytest.mark.parametrize(
    "builder, reference, torchvision_trainable",
    [
        # torchvision.models.densenet121/169/201(): sum of p.numel() over parameters()
        # (BatchNorm running statistics are buffers there).
        (densenet121, keras.applications.DenseNet121, 7_978_856),
        pytest.param(densenet169, keras.applications.DenseNet169, 14_149_480,
                     marks=pytest.mark.slow),
        pytest.param(densenet201, keras.applications.DenseNet201, 20_013_928,
                     marks=pytest.mark.slow),
    ],
)
def test_published_networks(builder, reference, torchvision_trainable):
    model = builder()
    expected = reference(weights=None)
    assert model.count_params() == expected.count_params()  # 8,062,504 / 14,307,880 / 20,242,984
    assert trainable_count(model) == trainable_count(expected) == torchvision_trainable
    # The name counts the weighted layers: the stem, two per dense layer, three transitions, FC.
    weighted = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D,
                                                                      keras.layers.Dense))]
    assert len(weighted) == int(model.name.removeprefix("densenet"))
    assert_dense_channels(model, BLOCKS[model.name], 32, 0.5, side=56)  # 224 -> 112 -> 56


def test_densenet121_computes_what_keras_applications_computes():
    ours = densenet121(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    reference = keras.applications.DenseNet121(
        weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    pretrained.copy_weights("densenet121", reference, ours)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    # keras.applications uses BatchNorm epsilon 1.001e-5, ours 1e-5: equal to ~1e-6.
    np.testing.assert_allclose(ours(images), reference(images), rtol=1e-4, atol=1e-5)


def test_growth_rate_and_compression_set_the_channels():
    model = densenet121(include_top=False, input_shape=(64, 64, 3), growth_rate=12,
                        compression=0.3)
    assert_dense_channels(model, BLOCKS["densenet121"], 12, 0.3, side=16)


def test_1d_and_3d_densenets_run_forward():
    sequences = build_model("densenet121", input_shape=(48, 2), num_classes=5, growth_rate=4)
    assert any(isinstance(layer, keras.layers.Conv1D) for layer in sequences.layers)
    out = sequences(np.random.default_rng(0).normal(size=(2, 48, 2)).astype("float32"))
    assert out.shape == (2, 5)
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)

    volumes = build_model("densenet121", input_shape=(32, 32, 32, 1), num_classes=3,
                          width_multiplier=0.125)
    assert volumes.get_layer("conv1_conv").filters == 8  # 2k with k = 32 × 0.125
    assert isinstance(volumes.get_layer("conv5_block16_2_conv"), keras.layers.Conv3D)
    out = volumes(np.random.default_rng(0).normal(size=(1, 32, 32, 32, 1)).astype("float32"))
    assert out.shape == (1, 3)


def test_options_change_the_graph():
    model = densenet121(
        input_shape=(64, 64, 3), classes=4, growth_rate=4, norm="group",
        padding_mode="reflect", block_dropout=0.2, spatial_dropout=0.1, dropout=0.3,
        drop_connect=0.4,
    )
    layers = model.layers
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    assert isinstance(model.get_layer("conv2_block1_0_norm"), keras.layers.GroupNormalization)
    assert model.get_layer("conv2_block1_2_conv_pad").mode == "reflect"
    assert model.get_layer("pool1_pad").mode == "reflect"
    # The paper's dropout after every convolution but the first: 2 per layer + 3 transitions.
    block_dropouts = [layer for layer in layers if layer.name.endswith("_conv_dropout")]
    assert len(block_dropouts) == 2 * sum(BLOCKS["densenet121"]) + 3
    assert {layer.rate for layer in block_dropouts} == {0.2}
    spatial = [layer for layer in layers if isinstance(layer, keras.layers.SpatialDropout2D)]
    assert [layer.name for layer in spatial] == [f"pool{i}_spatial_dropout" for i in (2, 3, 4)]
    assert model.get_layer("predictions_dropout").rate == 0.3
    assert isinstance(model.get_layer("predictions"), DropConnectDense)


def test_densenet_without_bottleneck_compression_or_norm():
    model = densenet121(input_shape=(32, 32, 3), growth_rate=4, bottleneck=False,
                        compression=1.0, norm="none")
    first = model.get_layer("conv2_block1_1_conv")
    assert first.kernel.shape == (3, 3, 8, 4) and first.use_bias  # no norm after it: a bias
    with pytest.raises(ValueError):
        model.get_layer("conv2_block1_2_conv")
    assert model.get_layer("pool2_conv").filters == 8 + 6 * 4  # θ = 1 keeps every channel


def test_too_small_input_names_the_minimum():
    with pytest.raises(ValueError, match=r"densenet121 needs inputs of at least 29×29; got 28×"):
        build_model("densenet121", input_shape=(28, 28, 3), growth_rate=4)


@pytest.mark.parametrize(
    "option, match",
    [
        ({"growth_rate": 0}, "growth_rate must be a positive int"),
        ({"compression": 1.5}, r"compression must be in \(0, 1\]"),
        ({"norm": "batchnorm"}, "norm='batchnorm'"),
        ({"padding_mode": "circular"}, "padding_mode='circular'"),
        ({"width_multiplier": 0}, "width_multiplier must be a positive number"),
        ({"activation": "relu7"}, "activation='relu7'"),
    ],
)
def test_bad_options_raise_value_errors(option, match):
    with pytest.raises(ValueError, match=match):
        densenet121(input_shape=(32, 32, 3), **option)
