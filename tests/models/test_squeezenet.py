"""SqueezeNet 1.0 / 1.1: published counts, the paper's map sizes, 1D and 3D variants."""

import numpy as np
import pytest
import keras

import kerascnn


@pytest.mark.parametrize("name, count", [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)])
def test_parameter_counts_equal_torchvision(name, count):
    # torchvision.models.squeezenet1_0 / 1_1 (1000 classes): 1,248,424 and 1,235,496.
    assert kerascnn.build_model(name).count_params() == count


def test_fire_module_count_by_hand():
    model = kerascnn.build_model("squeezenet1_0")
    fire2 = sum(model.get_layer(f"fire2_{part}").count_params()
                for part in ("squeeze1x1", "expand1x1", "expand3x3"))
    assert fire2 == (96 * 16 + 16) + (16 * 64 + 64) + (16 * 9 * 64 + 64)


def test_map_sizes_follow_table_1():
    model = kerascnn.build_model("squeezenet1_0")
    # Table 1: 111 (conv1 7×7/2, valid: 109 here as torchvision), 55 → 27 → 13 after the pools.
    assert model.get_layer("fire9_concat").output.shape[1:] == (13, 13, 512)
    assert model.get_layer("conv10").output.shape[1:] == (13, 13, 1000)


@pytest.mark.parametrize("shape", [(64, 2), (24, 24, 24, 1)], ids=["1d", "3d"])
def test_one_and_three_dimensional_variants_train(shape):
    model = kerascnn.build_model("squeezenet1_1", input_shape=shape, num_classes=3,
                                 width_multiplier=0.25)
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    y = keras.utils.to_categorical([0, 2], 3)
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    assert np.isfinite(model.train_on_batch(x, y))
