"""The Preprocessing layer: statistics against NumPy, resizing against TF/NumPy, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import Preprocessing, load
from kerascnn.files import atomic_save_model

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (40, 6, 5, 3), dtype=np.uint8)


def _output(layer, x):
    return np.asarray(layer(x))


def test_statistics_come_from_the_adapted_split_only():
    train = RGB[:30].astype(np.float64)
    mean_image, low, high = train.mean(axis=0), train.min(), train.max()
    channel_mean, channel_std = train.mean(axis=(0, 1, 2)), train.std(axis=(0, 1, 2))
    references = {
        "mean_image": lambda x: x - mean_image,
        "channel_mean": lambda x: x - channel_mean,
        "standardize": lambda x: (x - channel_mean) / channel_std,
        "scale": lambda x: (x - low) / (high - low),
    }
    for mode, reference in references.items():
        layer = Preprocessing(mode=mode)
        assert not layer.is_adapted
        layer.adapt(RGB[:30], batch_size=7)  # chunks that do not divide the data
        assert layer.is_adapted
        # Training and other data both go through the training statistics.
        for x in (RGB[:30], RGB[30:]):
            np.testing.assert_allclose(
                _output(layer, x), reference(x.astype(np.float64)), rtol=1e-4, atol=1e-3
            )


def test_scale_with_a_value_range_needs_no_adapt():
    layer = Preprocessing(mode="scale", value_range=(0, 255))
    assert layer.is_adapted
    np.testing.assert_allclose(_output(layer, RGB), RGB / 255.0, rtol=1e-6)


def test_grey_raw_images_are_resized_and_made_rgb():
    grey = RNG.integers(0, 255, (4, 28, 28), dtype=np.uint8)
    layer = Preprocessing((32, 32, 3), mode=None)
    expected = tf.image.resize(grey[..., None].astype(np.float32), (32, 32)).numpy()
    out = _output(layer, grey)
    assert out.shape == (4, 32, 32, 3)
    for channel in range(3):
        np.testing.assert_allclose(out[..., channel : channel + 1], expected, atol=1e-4)


def test_rgb_becomes_grey_by_luminance():
    out = _output(Preprocessing((6, 5, 1), mode=None), RGB)
    expected = tf.image.rgb_to_grayscale(RGB.astype(np.float32)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_signals_are_resized_linearly():
    signal = RNG.normal(size=(3, 10)).astype(np.float32)
    out = _output(Preprocessing((25, 1), mode=None), signal)
    # Half-pixel centres, as tf.image.resize uses.
    centres = np.clip((np.arange(25) + 0.5) * 10 / 25 - 0.5, 0, 9)
    expected = np.stack([np.interp(centres, np.arange(10), s) for s in signal])
    np.testing.assert_allclose(out[..., 0], expected, atol=1e-5)


def test_volumes_are_resized_trilinearly():
    depth_ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (4, 6, 6))
    volume = np.stack([depth_ramp, 2 * depth_ramp])  # (2, D=4, 6, 6), no channel axis
    out = _output(Preprocessing((8, 3, 3, 1), mode=None), volume)
    centres = np.clip((np.arange(8) + 0.5) * 4 / 8 - 0.5, 0, 3)
    ramp = np.interp(centres, np.arange(4), np.arange(4))
    assert out.shape == (2, 8, 3, 3, 1)
    np.testing.assert_allclose(out[0, :, 1, 2, 0], ramp, atol=1e-5)
    np.testing.assert_allclose(out[1, :, 0, 0, 0], 2 * ramp, atol=1e-5)


def test_saved_model_keeps_its_preprocessing(tmp_path):
    grey = RNG.integers(0, 255, (16, 28, 28), dtype=np.uint8)
    inputs = keras.Input((28, 28, 1), dtype="uint8")
    preprocessing = Preprocessing((32, 32, 3), mode="standardize", name="preprocessing")
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(preprocessing(inputs)))
    model = keras.Model(inputs, outputs)
    preprocessing.adapt(grey[..., None])
    expected = np.asarray(model(grey[..., None]))
    # Raw (N, 28, 28) digits work as well as (N, 28, 28, 1).
    np.testing.assert_allclose(np.asarray(model(grey)), expected, rtol=1e-6)
    path = tmp_path / "model.keras"
    atomic_save_model(model, path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.get_layer("preprocessing")
    assert layer.is_adapted and layer.get_config() == preprocessing.get_config()
    np.testing.assert_allclose(np.asarray(loaded(grey[..., None])), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.std.numpy(), preprocessing.std.numpy())


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        ({"mode": "whiten"}, None, "mode must be one of"),
        ({"interpolation": "cubic"}, None, "interpolation must be one of"),
        ({"target_shape": (8, 8, 3)}, (2, 8, 8, 2), "1 <-> 3 channels only"),
        ({"target_shape": (8, 8, 3)}, (2, 8), "ranks must match"),
        ({"value_range": (1, 1)}, None, "low < high"),
    ],
)
def test_bad_settings_are_refused(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing(**kwargs)(np.zeros(shape or (2, 8, 8, 3)))


def test_mnist_standardisation_matches_the_published_constants(data_dir):
    layer = Preprocessing((28, 28, 1), mode="standardize")
    layer.adapt(load("mnist", data_dir=data_dir).x_train)
    # The usual MNIST mean and standard deviation on a 0-1 scale.
    assert layer.mean.numpy()[0] / 255 == pytest.approx(0.1307, abs=5e-4)
    assert layer.std.numpy()[0] / 255 == pytest.approx(0.3081, abs=5e-4)
