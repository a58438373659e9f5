"""airbench94's network: its count, its whitening (checked against NumPy), Dirac starts, and a
real run on CIFAR-10 JPEGs that sets the whitening from the training images."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.layers import Dirac, PatchWhitening


def test_count_and_frozen_whitening():
    model = kerascnn.build_model("airbench94")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # 24 whitening biases; convolutions 24-64-64, 64-256-256, 256-256-256 without biases;
    # BatchNorm offsets only; a bias-free 256x10 classifier.
    assert trainable == 24 + 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 2 * 256 * 256) \
        + 2 * (64 + 256 + 256) + 256 * 10 == 1_971_352
    whiten = model.get_layer("whiten")
    assert [w.name for w in whiten.trainable_weights] == ["bias"]
    assert model.output_shape == (None, 10)


def test_whitened_patches_have_unit_covariance():
    """The first half of the filters maps the 2x2x3 patches of correlated images to
    uncorrelated unit-variance values (NumPy's covariance of the outputs); the second half is
    their negative."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 16, 16, 1))
    images = (base + 0.3 * rng.normal(size=(200, 16, 16, 3))).astype("float32")  # correlated
    layer = PatchWhitening(2, epsilon=1e-8)
    layer.adapt(images)
    out = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)
    covariance = out[:, :12].T @ out[:, :12] / len(out)
    np.testing.assert_allclose(covariance, np.eye(12), atol=1e-3)
    np.testing.assert_allclose(out[:, 12:], -out[:, :12], atol=1e-5)


def test_whitening_of_a_set_stored_class_by_class_whitens_every_class():
    """A folder's order (all of one class, then the next) must not whiten for the first class
    alone: the filters come from a sample of the whole set, so the whole set comes out with
    unit covariance (the first 5,000 images, one class, gave variances far from 1)."""
    rng = np.random.default_rng(3)
    dark = 0.2 * rng.normal(size=(6000, 4, 4, 3))
    bright = 3.0 * rng.normal(size=(6000, 4, 4, 3)) + rng.normal(size=(6000, 4, 4, 1))
    images = np.concatenate([dark, bright]).astype("float32")  # sorted by "class"
    layer = PatchWhitening(2, epsilon=1e-8)
    layer.adapt(images)
    out = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)[:, :12]
    np.testing.assert_allclose(out.T @ out / len(out), np.eye(12), atol=0.1)


def test_dirac_convolution_starts_as_the_identity_on_its_first_channels():
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, kernel_initializer=Dirac())
    y = keras.ops.convert_to_numpy(conv(x))
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)
    assert np.abs(y[..., 4:]).sum() > 0  # the other filters are drawn


def test_convolutions_start_as_pytorch_draws_them_around_the_identity():
    """Filters past the identity ones lie in PyTorch's default ±1/sqrt(fan_in) (He's would
    reach sqrt(6) times further); the BatchNorm momentum is an option, checked."""
    model = kerascnn.build_model("airbench94", batch_norm_momentum=0.9)
    kernel = keras.ops.convert_to_numpy(model.get_layer("block2_conv1").kernel)  # 3x3x64x256
    bound = 1 / np.sqrt(3 * 3 * 64)
    rest = kernel[..., 64:]
    assert np.abs(rest).max() <= bound and np.abs(rest).max() > 0.9 * bound
    assert model.get_layer("block2_norm1").momentum == 0.9
    assert kerascnn.build_model("airbench94").get_layer("block2_norm1").momentum == 0.6
    with pytest.raises(ValueError, match="batch_norm_momentum must be a number in"):
        kerascnn.build_model("airbench94", batch_norm_momentum=1.5)


@pytest.mark.parametrize("name", ["airbench94", "resnet9"])
def test_the_scaled_classifier_starts_as_pytorch_draws_it(name):
    """Uniform in ±1/sqrt(512) or ±1/sqrt(256), as PyTorch's nn.Linear (Glorot's reaches
    about 2.4 times further)."""
    kernel = keras.ops.convert_to_numpy(kerascnn.build_model(name).get_layer("predictions").kernel)
    bound = 1 / np.sqrt(kernel.shape[0])
    assert bound * 0.9 < np.abs(kernel).max() <= bound


def test_train_sets_the_whitening_from_training_images(cifar10_slice):
    result = kerascnn.train("airbench94", str(cifar10_slice), epochs=1, batch_size=50,
                            validation_split=0, verbose=0)
    backbone = result.model.get_layer("airbench94")
    kernel = keras.ops.convert_to_numpy(backbone.get_layer("whiten").kernel)
    unit = np.eye(12, dtype="float32").reshape(2, 2, 3, 12)
    assert not np.allclose(kernel[..., :12], unit)  # adapted, not the unit start
    assert 0 <= result.metrics["accuracy"] <= 1 and len(result.history["loss"]) == 1
