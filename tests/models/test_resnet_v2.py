"""Pre-activation ResNet: Keras' ResNet50V2 counts and, with its weights, its outputs."""

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.models import pretrained


def test_resnet50v2_count_equals_keras_applications():
    # keras.applications.ResNet50V2(weights=None): 25,613,800 (23,564,800 without the top).
    assert kerascnn.build_model("resnet50v2").count_params() == 25_613_800
    assert kerascnn.build_model("resnet50v2", include_top=False).count_params() == 23_564_800


def test_resnet50v2_with_keras_weights_gives_keras_outputs():
    ours = kerascnn.build_model("resnet50v2", include_top=False, input_shape=(64, 64, 3))
    twin = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(64, 64, 3))
    pretrained.copy_weights("resnet50v2", twin, ours)  # same weights, same order
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours(x), twin(x), rtol=1e-4, atol=1e-4)


def test_preactivation_blocks_end_unactivated_and_stride_last():
    model = kerascnn.build_model("resnet50v2", include_top=False, input_shape=(64, 64, 3),
                                 width_multiplier=0.125)
    assert isinstance(model.get_layer("conv2_block3_add"), keras.layers.Add)
    # Stages 2-4 halve the map in their last block (Keras' layout), stage 5 keeps it.
    assert model.get_layer("conv2_block2_add").output.shape[1] == 16
    assert model.get_layer("conv2_block3_add").output.shape[1] == 8
    assert model.get_layer("conv5_block3_add").output.shape[1] == 2


@pytest.mark.slow
def test_resnet101v2_count_equals_keras_applications():
    assert kerascnn.build_model("resnet101v2").count_params() == \
        keras.applications.ResNet101V2(weights=None).count_params() == 44_675_560


def test_one_dimensional_variant_trains():
    model = kerascnn.build_model("resnet50v2", input_shape=(48, 2), num_classes=3,
                                 width_multiplier=0.125)
    assert all(type(l).__name__.endswith("1D") for l in model.layers if "Conv" in type(l).__name__)
    x = np.random.default_rng(0).uniform(size=(2, 48, 2)).astype("float32")
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    assert np.isfinite(model.train_on_batch(x, keras.utils.to_categorical([0, 1], 3)))
