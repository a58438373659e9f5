"""Inception-v3: Keras' InceptionV3 counts, Table 1's map sizes, Keras' outputs from its weights."""

import time

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.models import minimum_input_size, pretrained


@pytest.fixture(scope="module")
def twins():
    """(ours, keras.applications') at 299×299 with logits, Keras' weights copied into ours."""
    ours = kerascnn.build_model("inception_v3", classifier_activation=None)
    twin = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    pretrained.copy_weights("inception_v3", twin, ours)  # in order: equal shapes, or this raises
    return ours, twin


def test_counts_equal_keras_applications_and_the_paper(twins):
    ours, twin = twins
    assert ours.count_params() == twin.count_params() == 23_851_784
    assert round(ours.count_params() / 1e6, 1) == 23.9  # the table of keras.io/api/applications
    # Without the top: keras.applications.InceptionV3(weights=None, include_top=False).
    assert ours.count_params() - ours.get_layer("predictions").count_params() == 21_802_784


def test_map_sizes_follow_table_1(twins):
    ours, _ = twins
    assert ours.get_layer("pool2").output.shape[1:] == (35, 35, 192)
    assert ours.get_layer("mixed2").output.shape[1:] == (35, 35, 288)
    assert ours.get_layer("mixed7").output.shape[1:] == (17, 17, 768)
    assert ours.get_layer("mixed10").output.shape[1:] == (8, 8, 2048)


def test_keras_weights_give_keras_outputs(twins):
    ours, twin = twins
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 299, 299, 3)).astype("float32")
    expected = np.asarray(twin(x))
    np.testing.assert_allclose(ours(x), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 100 * 1e-6  # logits well above the tolerance


def test_minimum_input_equals_keras_and_is_refused_instantly():
    assert minimum_input_size("inception_v3") == 75
    with pytest.raises(ValueError, match="at least 75x75"):  # Keras' own check
        keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(74, 74, 3))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"inception_v3 needs inputs of at least 75×75; got "
                                         r"74×74: the map vanishes at layer 'mixed8_3x3_2'"):
        kerascnn.build_model("inception_v3", input_shape=(74, 74, 3))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("shape, width", [((75, 2), 80), ((75, 75, 75, 1), 176)], ids=["1d", "3d"])
def test_one_and_three_dimensional_variants(shape, width):
    model = kerascnn.build_model("inception_v3", input_shape=shape, num_classes=3,
                                 width_multiplier=1 / 16)
    rank = len(shape) - 1
    convs = [l for l in model.layers if "Conv" in type(l).__name__]
    assert all(type(l).__name__.endswith(f"{rank}D") for l in convs)
    # A factorised 7×7 is one 7-tap convolution per axis; the expanded bank has one per axis
    # side by side: mixed10 is 20 + 24·rank + 24·rank + 12 channels wide at 1/16 width.
    assert model.get_layer("mixed10").output.shape[-1] == width == 32 + 48 * rank
    assert model.get_layer(f"mixed4_7x7_{rank + 1}").kernel.shape[:rank] == (7,) + (1,) * (rank - 1)
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    if rank == 1:  # a training step in 1D; 3D runs forward only (75³ maps are slow on a CPU)
        model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
        assert np.isfinite(model.train_on_batch(x, keras.utils.to_categorical([0, 2], 3)))
    else:
        np.testing.assert_allclose(np.asarray(model(x)).sum(axis=1), 1.0, rtol=1e-5)


def test_auxiliary_classifier_is_torchvisions_on_mixed7(twins):
    ours, _ = twins
    aux = kerascnn.build_model("inception_v3", classifier_activation=None, aux_logits=True)
    assert aux.output_names == ["predictions", "aux_predictions"]
    # torchvision's InceptionAux(768, 1000): 3,326,696 parameters with BatchNorm scales (128 +
    # 768); Keras-style BatchNorm has no scale and counts two moving statistics per channel.
    head = aux.count_params() - ours.count_params()
    assert head == 3_326_696 - (128 + 768) + 2 * (128 + 768) == 3_327_592
    assert aux.get_layer("aux_conv0").kernel.shape == (1, 1, 768, 128)
    assert aux.get_layer("aux_conv1").kernel.shape == (5, 5, 128, 768)  # 5×5 map: valid → 1×1
    assert aux.get_layer("aux_pool").input.shape[1:] == (17, 17, 768)
    # The main path is the network without the head: its weights give the same logits.
    for layer in ours.layers:
        if layer.weights:
            aux.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 299, 299, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(aux(x)[0]), np.asarray(ours(x)), rtol=1e-5, atol=1e-6)


def test_small_inputs_shrink_the_auxiliary_windows_and_train_weights_its_loss():
    from kerascnn.training import loop, network

    model = kerascnn.build_model("inception_v3", input_shape=(75, 75, 1), num_classes=10,
                                 width_multiplier=0.25, aux_logits=True)
    assert model.get_layer("aux_conv1").kernel_size == (1, 1)  # 3×3 mixed7 pooled whole
    wrapped = network.wrap(model, kerascnn.data.load("digits"), "standardize")
    assert loop._loss_weights(wrapped) == [1.0, 0.4]  # TF-slim's auxiliary weight
    googlenet = kerascnn.build_model("googlenet", input_shape=(32, 32, 1), num_classes=10,
                                     width_multiplier=0.25)
    assert loop._loss_weights(googlenet) == [1.0, 0.3, 0.3]  # Szegedy et al. 2015, section 5
