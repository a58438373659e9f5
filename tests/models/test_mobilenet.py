"""MobileNet v1 against keras.applications.MobileNet and the paper's Tables 4 and 6."""

import re

import keras
import numpy as np
import pytest

from kerascnn.layers import SpatialPadding
from kerascnn.layers.regularization import DropConnectDense
from kerascnn.models import build_model, pretrained


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def randomize_batch_norm(model, rng):
    """Gives every BatchNorm non-trivial statistics so that copied weights are really tested."""
    for layer in layers_of(model, keras.layers.BatchNormalization):
        shape = layer.gamma.shape
        layer.set_weights([
            rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.1, shape),
            rng.normal(0, 0.1, shape), rng.uniform(0.5, 1.5, shape),
        ])


# Howard et al. 2017, Table 6 ("Million Parameters", one decimal): 1.0 -> 4.2, 0.75 -> 2.6,
# 0.5 -> 1.3, 0.25 -> 0.5. The exact counts come from keras.applications.MobileNet(weights=None).
@pytest.mark.parametrize(
    "alpha, paper_millions",
    [
        (1.0, 4.2),
        pytest.param(0.75, 2.6, marks=pytest.mark.slow),
        pytest.param(0.5, 1.3, marks=pytest.mark.slow),
        (0.25, 0.5),
    ],
)
def test_parameter_counts_equal_keras_applications(alpha, paper_millions):
    ours = build_model("mobilenet", width_multiplier=alpha)
    reference = keras.applications.MobileNet(weights=None, alpha=alpha)
    assert ours.count_params() == reference.count_params()
    assert trainable_count(ours) == trainable_count(reference)
    assert round(trainable_count(ours) / 1e6, 1) == paper_millions


def test_canonical_counts():
    # keras.applications.MobileNet(weights=None, alpha=1.0): 4,253,864 total, 4,231,976 trainable.
    model = build_model("mobilenet")
    assert (model.count_params(), trainable_count(model)) == (4_253_864, 4_231_976)
    assert model.output_shape == (None, 1000)


def test_full_convolutions_give_the_conv_mobilenet_of_table4():
    # Howard et al. 2017, Table 4: "Conv MobileNet" (full 3x3 convolutions) has 29.3M parameters.
    model = build_model("mobilenet", conv_kind="standard")
    assert round(trainable_count(model) / 1e6, 1) == 29.3
    assert not layers_of(model, keras.layers.DepthwiseConv2D)


def test_depth_multiplier_count_equals_keras_applications():
    ours = build_model("mobilenet", width_multiplier=0.25, depth_multiplier=2,
                       input_shape=(64, 64, 3))
    reference = keras.applications.MobileNet(
        weights=None, alpha=0.25, depth_multiplier=2, input_shape=(64, 64, 3)
    )
    assert ours.count_params() == reference.count_params()


def test_outputs_equal_keras_applications_with_copied_weights():
    rng = np.random.default_rng(0)
    shape = (64, 64, 3)
    reference = keras.applications.MobileNet(
        weights=None, alpha=0.25, input_shape=shape, classes=10, classifier_activation=None
    )
    randomize_batch_norm(reference, rng)
    ours = build_model("mobilenet", width_multiplier=0.25, input_shape=shape, num_classes=10,
                       classifier_activation=None)
    # Same names except keras' 1x1-conv classifier, which is our Dense layer.
    pretrained.copy_weights("mobilenet", reference, ours)
    x = rng.uniform(-1, 1, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    assert np.std(expected) > 1e-2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape, depthwise",
    [((40, 2), keras.layers.DepthwiseConv1D), ((32, 32, 32, 1), keras.layers.Conv3D)],
)
def test_1d_and_3d_forward(shape, depthwise):
    model = build_model("mobilenet", input_shape=shape, num_classes=5, width_multiplier=0.125)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    conv_dw_2 = model.get_layer("conv_dw_2")
    assert isinstance(conv_dw_2, depthwise)
    # Depthwise: one 3-wide filter per channel, whatever the rank.
    assert int(np.prod(conv_dw_2.kernel.shape)) == 3 ** (len(shape) - 1) * 8


def test_too_small_input_names_the_minimum():
    # conv1 (3x3/2 'same') gives ceil(n/2); each of the four later stride-2 depthwise convs
    # (padded bottom/right by one, then 'valid') gives floor(m/2) and needs m >= 2, so
    # ceil(n/2) >= 16: n >= 31.
    with pytest.raises(ValueError, match=r"mobilenet needs inputs of at least 31×31; got 30×30"):
        build_model("mobilenet", input_shape=(30, 30, 3), width_multiplier=0.25)
    model = build_model("mobilenet", input_shape=(31, 31, 3), width_multiplier=0.25,
                        include_top=False)
    assert model.output_shape == (None, 1, 1, 256)


def test_options_change_the_graph():
    model = build_model(
        "mobilenet", input_shape=(64, 64, 3), width_multiplier=0.25, norm="group",
        activation="swish", padding_mode="reflect", se_ratio=0.25, spatial_dropout=0.1,
        drop_connect=0.2,
    )
    assert not layers_of(model, keras.layers.BatchNormalization)
    assert len(layers_of(model, keras.layers.GroupNormalization)) == 27
    assert {layer.activation for layer in layers_of(model, keras.layers.Activation)
            if layer.name.endswith("_act")} == {keras.activations.get("swish")}
    paddings = layers_of(model, SpatialPadding)
    assert paddings and {layer.mode for layer in paddings} == {"reflect"}
    assert len(layers_of(model, keras.layers.Multiply)) == 13
    assert len(layers_of(model, keras.layers.SpatialDropout2D)) == 13
    assert isinstance(model.get_layer("predictions"), DropConnectDense)


def test_no_norm_puts_biases_on_convolutions():
    plain = build_model("mobilenet", input_shape=(32, 32, 3), width_multiplier=0.25, norm="none")
    assert not layers_of(plain, keras.layers.BatchNormalization)
    assert plain.get_layer("conv1").use_bias and plain.get_layer("conv_pw_13").use_bias


@pytest.mark.parametrize(
    "option, value",
    [
        ("width_multiplier", 0),
        ("width_multiplier", "wide"),
        ("depth_multiplier", 0),
        ("depth_multiplier", 1.5),
        ("conv_kind", "depthwise"),
        ("se_ratio", 2.0),
        ("dropout", 1.0),
        ("spatial_dropout", -0.1),
        ("norm", "batchnorm"),
        ("padding_mode", "circular"),
        ("activation", "nope"),
    ],
)
def test_bad_options_raise(option, value):
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        build_model("mobilenet", input_shape=(32, 32, 3), **{option: value})
