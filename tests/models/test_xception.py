"""Xception against keras.applications.Xception."""

import re

import keras
import numpy as np
import pytest

from kerascnn.layers import SpatialPadding, StochasticDepth
from kerascnn.layers.regularization import DropConnectDense
from kerascnn.models import build_model, pretrained


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_parameter_counts_equal_keras_applications():
    # keras.applications.Xception(weights=None): 22,910,480 total, 22,855,952 trainable.
    ours = build_model("xception")
    reference = keras.applications.Xception(weights=None)
    assert ours.count_params() == reference.count_params() == 22_910_480
    assert trainable_count(ours) == trainable_count(reference) == 22_855_952
    assert ours.output_shape == (None, 1000)
    assert not any(getattr(layer, "use_bias", False) for layer in ours.layers
                   if layer.name != "predictions")


def test_outputs_equal_keras_applications_with_copied_weights():
    rng = np.random.default_rng(0)
    shape = (71, 71, 3)  # keras.applications' smallest Xception input
    reference = keras.applications.Xception(
        weights=None, input_shape=shape, classes=10, classifier_activation=None
    )
    for layer in layers_of(reference, keras.layers.BatchNormalization):
        n = layer.gamma.shape
        layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                           rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])
    ours = build_model("xception", input_shape=shape, num_classes=10, classifier_activation=None)
    # Separable convolutions split in two; keras' unnamed shortcuts come in block order.
    pretrained.copy_weights("xception", reference, ours)
    x = rng.uniform(-1, 1, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    assert np.std(expected) > 1e-2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape, depthwise, middle_flow_side",
    # Stem 3x3/2 and 3x3 'valid', then 3x3/2 'same' poolings: 24 -> 11 -> 9 -> 5, 3, 2;
    # 12 -> 5 -> 3 -> 2, 1, 1.
    [((24, 2), keras.layers.DepthwiseConv1D, 2), ((12, 12, 12, 1), keras.layers.Conv3D, 1)],
)
def test_1d_and_3d_forward(shape, depthwise, middle_flow_side):
    model = build_model("xception", input_shape=shape, num_classes=4, width_multiplier=1 / 32)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert isinstance(model.get_layer("block5_sepconv1_dw"), depthwise)
    # int(728 / 32) = 22 channels in the middle flow.
    spatial = (middle_flow_side,) * (len(shape) - 1)
    assert model.get_layer("block5_add").output.shape == (None, *spatial, 22)


def test_too_small_input_names_the_minimum():
    # block1_conv1 (3x3/2 'valid') gives floor((n - 3) / 2) + 1, block1_conv2 (3x3 'valid')
    # needs that to be >= 3, so n >= 7; the 'same' poolings never vanish. (keras.applications
    # asks for 71 without a structural reason.)
    with pytest.raises(ValueError, match=r"xception needs inputs of at least 7×7; got 6×6"):
        build_model("xception", input_shape=(6, 6, 3), width_multiplier=1 / 32)
    model = build_model("xception", input_shape=(7, 7, 3), width_multiplier=1 / 32,
                        include_top=False)
    assert model.output_shape == (None, 1, 1, 64)


def test_paper_dropout_before_the_classifier():
    # Chollet 2017, Sec. 4.3: dropout of rate 0.5 before the logistic regression layer.
    model = build_model("xception", input_shape=(32, 32, 3), width_multiplier=1 / 32)
    assert model.get_layer("predictions_dropout").rate == 0.5
    assert layers_of(build_model("xception", input_shape=(32, 32, 3), width_multiplier=1 / 32,
                                 dropout=0.0), keras.layers.Dropout) == []


def test_options_change_the_graph_and_survive_save_load(tmp_path):
    model = build_model(
        "xception", input_shape=(48, 48, 3), num_classes=3, width_multiplier=1 / 32,
        norm="layer", activation="gelu", padding_mode="reflect", se_ratio=0.25,
        spatial_dropout=0.1, drop_connect=0.2, drop_path_rate=0.2,
    )
    assert not layers_of(model, keras.layers.BatchNormalization)
    assert layers_of(model, keras.layers.LayerNormalization)
    paddings = layers_of(model, SpatialPadding)
    assert paddings and {layer.mode for layer in paddings} == {"reflect"}
    assert len(layers_of(model, keras.layers.Multiply)) == 12
    assert len(layers_of(model, keras.layers.SpatialDropout2D)) == 12
    assert isinstance(model.get_layer("predictions"), DropConnectDense)
    # Stochastic depth rises linearly over the 12 residual blocks, from 0 (no layer) to 0.2.
    rates = [layer.rate for layer in layers_of(model, StochasticDepth)]
    np.testing.assert_allclose(rates, [0.2 * i / 11 for i in range(1, 12)])
    path = tmp_path / "xception.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 48, 48, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )


def test_no_norm_puts_biases_on_convolutions():
    model = build_model("xception", input_shape=(32, 32, 3), width_multiplier=1 / 32, norm="none")
    assert not layers_of(model, keras.layers.BatchNormalization)
    assert model.get_layer("block1_conv1").use_bias
    assert model.get_layer("block2_residual_conv").use_bias
    assert model.get_layer("block14_sepconv2_pw").use_bias


@pytest.mark.parametrize(
    "option, value",
    [
        ("width_multiplier", -1.0),
        ("conv_kind", "grouped"),
        ("se_ratio", 1.5),
        ("drop_path_rate", 1.0),
        ("drop_connect", 2.0),
        ("norm", "weight"),
    ],
)
def test_bad_options_raise(option, value):
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        build_model("xception", input_shape=(32, 32, 3), **{option: value})


def test_mobilenet_only_option_is_rejected():
    with pytest.raises(ValueError, match="xception has no option depth_multiplier"):
        build_model("xception", depth_multiplier=2)
