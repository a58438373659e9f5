"""Augmentation specs and the augmentation layers, checked against NumPy and SciPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from kerascnn.data import LensDistortion, PixelShift, RandomAffine, augmentation, parse_spec
from kerascnn.data.augment import AUGMENTATIONS, affine, distort

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (8, 12, 12, 3)).astype(np.float32)
LABELS = np.eye(4, dtype=np.float32)[np.arange(8) % 4]


def test_spec_string_and_dict_agree_and_take_defaults():
    parsed = parse_spec("crop=0.9, flip ,rotate=5")
    assert parsed == {"flip": "horizontal", "rotate": 5.0, "crop": 0.9}
    assert list(parsed) == ["flip", "rotate", "crop"]  # the order of application
    assert parse_spec({"rotate": 5, "flip": True, "crop": 0.9, "zoom": False}) == parsed
    assert parse_spec("rotate") == {"rotate": 5.0}
    assert parse_spec(None) == parse_spec("") == {}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("flip,blur=3", "Unknown augmentation 'blur'; valid names: flip, altflip, rotate, translate"),
        ("rotate=abc", "rotate='abc': the value must be a number"),
        ("crop=1.5", r"crop=1.5: the value must be in \(0, 1.0\]"),
        ("flip=diagonal", "must be one of"),
        ("randaugment=1.5", "integer"),
        ("flip,flip", "given twice"),
        ("mixup,cutmix", "Choose one of mixup and cutmix"),
        ("shift=1.5", "shift=1.5: the value must be a whole number of pixels"),
        ("shift=0", "shift=0: the value must be a whole number of pixels >= 1"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_each_augmentation_keeps_shape_range_and_label_mass(name):
    augment = augmentation(name, seed=1, value_range=(0, 255), input_shape=(12, 12, 3))
    images, labels = augment(IMAGES, LABELS)
    images, labels = np.asarray(images), np.asarray(labels)
    assert images.shape == IMAGES.shape and labels.shape == LABELS.shape
    assert np.isfinite(images).all() and images.min() >= -1e-3 and images.max() <= 255 + 1e-3
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(images, IMAGES)


def test_a_batch_seed_fixes_the_resampling():
    augment = augmentation("flip,rotate=20,crop=0.7,lens", seed=3)
    first, _ = augment(IMAGES, LABELS, seed=np.array([1, 2]))
    again, _ = augment(IMAGES, LABELS, seed=np.array([1, 2]))
    other, _ = augment(IMAGES, LABELS, seed=np.array([1, 3]))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert not np.allclose(np.asarray(first), np.asarray(other))


def test_mixup_mixes_images_and_labels_with_the_same_weights():
    images, labels = augmentation("mixup=1", seed=2)(IMAGES, LABELS)
    images, labels = np.asarray(images), np.asarray(labels)
    mixed = labels.max(axis=1) < 1
    assert mixed.any()
    for i in np.flatnonzero(mixed):
        # The weight of the image's own class tells how much of it is left.
        weight = labels[i, i % 4]
        mixes = [weight * IMAGES[i] + (1 - weight) * IMAGES[j] for j in range(8)]
        assert any(np.allclose(images[i], mix, atol=1e-2) for mix in mixes)


def test_colour_jitter_needs_rgb():
    with pytest.raises(ValueError, match="RGB"):
        augmentation("color", input_shape=(28, 28, 1))


def test_lens_distortion_matches_scipy_bilinear_sampling():
    image = RNG.uniform(0, 1, (1, 9, 11, 2)).astype(np.float32)
    for k in (-0.3, 0.0, 0.25):
        rows, cols = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 11), indexing="ij")
        factor = 1 + k * (rows**2 + cols**2) / 2
        source_rows = (rows * factor + 1) * 8 / 2
        source_cols = (cols * factor + 1) * 10 / 2
        expected = np.stack(
            [
                ndimage.map_coordinates(
                    image[0, ..., c], [source_rows, source_cols], order=1, mode="nearest"
                )
                for c in range(2)
            ],
            axis=-1,
        )
        ours = np.asarray(distort(image, np.array([k], np.float32)))[0]
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_positive_k_is_barrel_and_negative_k_pincushion():
    line = np.zeros((1, 41, 41, 1), np.float32)
    line[:, 12, :] = 1.0  # a straight line above the centre

    def height(k, column):  # the line's row in that column (centroid)
        values = np.asarray(distort(line, np.array([k], np.float32)))[0, :, column, 0]
        return (np.arange(41) * values).sum() / values.sum()

    # Barrel: the middle bulges away from the centre; pincushion: the ends do.
    assert height(0.3, 20) < height(0.3, 0) - 0.5
    assert height(-0.3, 20) > height(-0.3, 0) + 0.5


def test_affine_rotates_crops_and_mirrors_like_numpy_and_tf():
    square = RNG.uniform(0, 255, (1, 9, 9, 2)).astype(np.float32)

    def resample(angle=0.0, scale=1.0, shift=(0.0, 0.0), mirror=(1.0, 1.0)):
        batch = [np.float32([value]) for value in (angle, scale, shift, mirror)]
        return np.asarray(affine(square, *batch))[0]

    np.testing.assert_allclose(resample(angle=90), np.rot90(square[0]), atol=1e-3)
    np.testing.assert_allclose(resample(mirror=(-1, 1)), square[0, :, ::-1], atol=1e-4)
    np.testing.assert_allclose(resample(mirror=(1, -1)), square[0, ::-1], atol=1e-4)
    # A crop of half the side at the top left corner, resized back.
    top_left = tf.image.crop_and_resize(square, [[0.0, 0.0, 0.5, 0.5]], [0], (9, 9)).numpy()[0]
    np.testing.assert_allclose(resample(scale=0.5, shift=(-2.0, -2.0)), top_left, atol=1e-3)


def test_random_affine_without_ranges_is_the_identity():
    np.testing.assert_array_equal(np.asarray(RandomAffine(seed=0)(IMAGES, training=True)), IMAGES)


def test_shift_moves_whole_pixels_as_reflect_padding_and_a_random_crop_in_numpy():
    """Each image is one of the (2p+1)^2 crops of NumPy's reflect-padded image, untouched
    values (no interpolation); the crops differ between images; a seed repeats them."""
    images = np.random.default_rng(2).integers(0, 256, size=(64, 7, 9, 2)).astype("uint8")
    shifted = np.asarray(PixelShift(3).augment(images, np.array([4, 5])))
    seen = set()
    for image, out in zip(images, shifted):
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="reflect")
        offsets = [(dy, dx) for dy in range(7) for dx in range(7)
                   if np.array_equal(padded[dy:dy + 7, dx:dx + 9], out)]
        assert offsets, "not a crop of the reflect-padded image"
        seen.update(offsets)
    assert len(seen) > 20
    np.testing.assert_array_equal(shifted,
                                  np.asarray(PixelShift(3).augment(images, np.array([4, 5]))))


def test_a_shift_as_large_as_the_image_is_refused():
    with pytest.raises(ValueError, match="shift=12 moves these 12x12 images by their whole side"):
        augmentation("shift=12", input_shape=(12, 12, 3))


@pytest.mark.parametrize(
    "layer", [LensDistortion(0.3, seed=4), RandomAffine("vertical", 10, 0.1, 0.2, 0.7, seed=5),
              PixelShift(2, seed=6)]
)
def test_custom_layers_serialize(layer):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(clone(IMAGES, training=False)), IMAGES)
