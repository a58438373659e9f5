"""ConvNeXt-T: published parameter count, keras.applications parity, options, serialization."""

import keras
import numpy as np
import pytest

from kerascnn.layers import SpatialPadding, StochasticDepth
from kerascnn.layers.layer_scale import LayerScale
from kerascnn.models import build_model, pretrained
from kerascnn.models.convnext import convnext_tiny

DEPTHS, WIDTHS = (3, 3, 9, 3), (96, 192, 384, 768)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_parameter_count_matches_keras_applications_and_timm():
    model = convnext_tiny()
    reference = keras.applications.ConvNeXtTiny(weights=None, include_preprocessing=False)
    assert model.count_params() == reference.count_params()
    assert model.count_params() == 28_589_128  # timm convnext_tiny, sum of p.numel()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 28_589_128
    assert model.get_layer("stage4_block3_add").output.shape == (None, 7, 7, 768)
    for stage, (depth, width) in enumerate(zip(DEPTHS, WIDTHS), start=1):
        assert model.get_layer(f"stage{stage}_block{depth}_pointwise_conv_1").units == 4 * width


def test_convnext_tiny_computes_what_keras_applications_computes():
    """Features (pooled + LayerNorm) equal keras.applications' for the same random weights."""
    shape = (32, 32, 3)
    ours = convnext_tiny(include_top=False, pooling="avg", input_shape=shape)
    reference = keras.applications.ConvNeXtTiny(
        weights=None, include_preprocessing=False, include_top=False, pooling="avg",
        input_shape=shape,
    )
    assert ours.count_params() == reference.count_params()
    rng = np.random.default_rng(0)
    # Random weights everywhere, layer scales included (at 1e-6 the blocks would not count).
    weights = [rng.normal(0, 0.1, w.shape).astype("float32") for w in reference.get_weights()]
    reference.set_weights(weights)
    # keras.applications' depthwise kernels are grouped Conv2D kernels (7, 7, 1, C).
    pretrained.copy_weights("convnext_tiny", reference, ours)
    images = rng.uniform(0, 1, (2, *shape)).astype("float32")
    np.testing.assert_allclose(ours(images), reference(images), rtol=1e-4, atol=1e-4)


def test_small_images_classify_and_survive_save_and_load(tmp_path):
    model = convnext_tiny(input_shape=(32, 32, 3), classes=7, width_multiplier=0.25,
                          drop_path_rate=0.1)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = model(images)
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
    path = tmp_path / "convnext.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("stage1_block1_layer_scale"), LayerScale)
    assert loaded.get_layer("stage4_block3_drop_path").rate == pytest.approx(0.1)
    np.testing.assert_allclose(loaded(images), probabilities, rtol=1e-6, atol=1e-7)


def test_1d_and_3d_convnexts_run_forward():
    for shape in ((32, 2), (32, 32, 32, 1)):
        model = build_model("convnext_tiny", input_shape=shape, num_classes=3,
                            width_multiplier=0.125)
        rank = len(shape) - 1
        assert isinstance(model.get_layer("stem_conv"), getattr(keras.layers, f"Conv{rank}D"))
        out = model(np.random.default_rng(0).normal(size=(1, *shape)).astype("float32"))
        assert out.shape == (1, 3)


def test_stochastic_depth_grows_linearly_and_layer_scale_starts_small():
    model = convnext_tiny(input_shape=(32, 32, 3), width_multiplier=0.125, drop_path_rate=0.1)
    rates = np.linspace(0.0, 0.1, sum(DEPTHS))  # the official code's schedule
    names = [f"stage{s}_block{b}" for s, d in enumerate(DEPTHS, start=1) for b in range(1, d + 1)]
    drops = {layer.name: layer.rate for layer in layers_of(model, StochasticDepth)}
    assert drops == pytest.approx({f"{n}_drop_path": r for n, r in zip(names, rates) if r})
    gamma = model.get_layer("stage3_block9_layer_scale").gamma
    np.testing.assert_array_equal(gamma, np.full(48, 1e-6, "float32"))


def test_options_change_the_graph():
    plain = convnext_tiny(input_shape=(32, 32, 3), width_multiplier=0.125)
    assert not layers_of(plain, StochasticDepth)
    assert isinstance(plain.get_layer("stage2_downsample_norm"), keras.layers.LayerNormalization)

    no_scale = convnext_tiny(input_shape=(32, 32, 3), width_multiplier=0.125,
                             layer_scale_init_value=None)
    assert not layers_of(no_scale, LayerScale)
    scales = sum(d * round(w * 0.125) for d, w in zip(DEPTHS, WIDTHS))
    assert plain.count_params() - no_scale.count_params() == scales

    batch = convnext_tiny(input_shape=(32, 32, 3), width_multiplier=0.125, norm="batch",
                          padding_mode="replicate", dropout=0.2, spatial_dropout=0.1)
    assert not layers_of(batch, keras.layers.LayerNormalization)
    assert not batch.get_layer("stage1_block1_depthwise_conv").use_bias  # BatchNorm follows
    assert batch.get_layer("stage1_block1_depthwise_conv_pad").mode == "replicate"
    assert {layer.mode for layer in layers_of(batch, SpatialPadding)} == {"replicate"}
    assert len(layers_of(batch, keras.layers.SpatialDropout2D)) == 4
    assert batch.get_layer("predictions_dropout").rate == 0.2

    group = convnext_tiny(input_shape=(32, 32, 3), width_multiplier=0.125, norm="group")
    assert isinstance(group.get_layer("stage1_block1_norm"), keras.layers.GroupNormalization)
    assert group.get_layer("stage1_block1_depthwise_conv").use_bias


def test_too_small_input_names_the_minimum():
    with pytest.raises(ValueError, match=r"convnext_tiny needs inputs of at least 32×32; got 31"):
        build_model("convnext_tiny", input_shape=(31, 31, 3), width_multiplier=0.125)


@pytest.mark.parametrize(
    "option, match",
    [
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
        ({"norm": "rms"}, "norm='rms'"),
        ({"width_multiplier": -1}, "width_multiplier must be a positive number"),
        ({"layer_scale_init_value": -1e-6}, "init_value must be a positive number"),
        ({"padding_mode": "wrap"}, "padding_mode='wrap'"),
    ],
)
def test_bad_options_raise_value_errors(option, match):
    with pytest.raises(ValueError, match=match):
        convnext_tiny(**{"input_shape": (32, 32, 3), "width_multiplier": 0.125, **option})
