"""Input adaptation: grey <-> RGB and N channels through the first convolution."""

import keras
import numpy as np

import kerascnn
from transfer_helpers import small_lenet
from kerascnn.data.preprocessing import split_network
from kerascnn.transfer import surgery
from kerascnn.transfer.channels import adapt_kernel
from kerascnn.transfer.finetune import adapt


def _first_layer_output(model, images):
    _, backbone = split_network(model)
    first = backbone.get_layer(surgery.first_convolution(model))
    return keras.Model(backbone.inputs[0], first.output).predict(images, verbose=0)


def _conv_valid(images, kernel):
    """NumPy reference: a 'valid' 2D cross-correlation, no bias."""
    k = kernel.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(1, 2))
    return np.einsum("nhwcij,ijcf->nhwf", windows, kernel)


def test_kernel_rules_against_numpy():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 4))
    grey = np.random.default_rng(1).normal(size=(2, 6, 6, 1))
    rgb_of_grey = np.repeat(grey, 3, axis=-1)
    # Sum for one channel: the grey model sees g as the RGB model sees (g, g, g).
    np.testing.assert_allclose(_conv_valid(grey, adapt_kernel(kernel, 1)),
                               _conv_valid(rgb_of_grey, kernel), rtol=1e-12)
    # Repeat and rescale by C/N: six equal channels give the three-channel response exactly
    # (N a multiple of C); five keep the kernel's total and the cyclic order.
    np.testing.assert_allclose(_conv_valid(np.repeat(grey, 6, axis=-1), adapt_kernel(kernel, 6)),
                               _conv_valid(rgb_of_grey, kernel), rtol=1e-12)
    five = adapt_kernel(kernel, 5)
    assert five.shape == (3, 3, 5, 4)
    np.testing.assert_allclose(five[:, :, 3], kernel[:, :, 0] * 3 / 5)
    np.testing.assert_allclose(adapt_kernel(kernel[:, :, :1], 3).sum(axis=2), kernel[:, :, 0])


def test_grey_model_on_rgb_and_rgb_model_on_grey(digits, rgb_digits):
    grey_model = small_lenet()
    rgb_model, rows, adaptation = adapt(grey_model, rgb_digits, bn="frozen")
    assert rgb_model.inputs[0].shape[-1] == 3
    assert [r["status"] for r in rows if r["layer"] == "conv1"] == ["adapted"]
    assert adaptation["first_convolution"].startswith("conv1: 1 -> 3")
    grey = np.random.default_rng(0).uniform(0, 16, size=(4, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(_first_layer_output(rgb_model, np.repeat(grey, 3, axis=-1)),
                               _first_layer_output(grey_model, grey), rtol=1e-4, atol=1e-4)
    back, rows, _ = adapt(rgb_model, digits, bn="frozen")
    assert back.inputs[0].shape[-1] == 1
    np.testing.assert_allclose(_first_layer_output(back, grey),
                               _first_layer_output(rgb_model, np.repeat(grey, 3, axis=-1)),
                               rtol=1e-4, atol=1e-4)


def test_finetune_grey_saved_model_on_rgb_and_back(rgb_digits, digits, tmp_path):
    rgb = kerascnn.finetune("lenet5_mnist", rgb_digits, freeze="base", epochs=1,
                            renormalize=False, out=tmp_path / "rgb", verbose=0)
    model = keras.models.load_model(tmp_path / "rgb" / "model.keras")
    assert tuple(model.inputs[0].shape[1:]) == (8, 8, 3)
    assert rgb.metrics["accuracy"] > 0.5
    preprocessing, backbone = split_network(model)
    assert backbone.inputs[0].shape[-1] == 3
    # The source's grey statistics, repeated per channel (its features expect them).
    np.testing.assert_allclose(np.asarray(preprocessing.mean), np.full(3, 33.3, "float32"),
                               atol=0.5)
    grey = kerascnn.finetune(tmp_path / "rgb", digits, freeze="base", epochs=1, verbose=0)
    assert grey.model.inputs[0].shape[-1] == 1
    assert grey.metrics["accuracy"] > 0.5
