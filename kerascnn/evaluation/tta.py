"""Test-time augmentation: a model's prediction averaged over views of each image.

"flip": the image and its left-right mirror. "flip_shift": airbench's (Jordan 2024) level 2,
half the flip mean on the image, a quarter each on the image shifted by one pixel up-left and
down-right (borders reflected).
"""

import keras

from kerascnn.errors import InputError
from kerascnn.training.recipes import TTA_MODES


@keras.saving.register_keras_serializable(package="kerascnn")
class Mirror(keras.layers.Layer):
    """Mirrors a batch of images left to right (channels last)."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


@keras.saving.register_keras_serializable(package="kerascnn")
class Shift(keras.layers.Layer):
    """Shifts a batch of images (channels last) by `pixels` down and right (negative: up and
    left), the pixels that come in reflecting the border.

    Args:
        pixels: a whole number of pixels, below the image's side.
    """

    def __init__(self, pixels, **kwargs):
        super().__init__(**kwargs)
        self.pixels = int(pixels)

    def call(self, images):
        p = abs(self.pixels)
        padded = keras.ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        start = p - self.pixels
        height, width = images.shape[1], images.shape[2]
        return padded[:, start:start + height, start:start + width, :]

    def get_config(self):
        return {**super().get_config(), "pixels": self.pixels}


def check_tta(tta):
    """Refuses a test-time augmentation kerascnn does not know."""
    if tta not in TTA_MODES:
        raise InputError(f"tta must be None, 'flip' (the mean over the image and its left-right "
                         f"mirror) or 'flip_shift' (flips of the image and of it shifted by one "
                         f"pixel); got tta={tta!r}.")


def with_tta(model, tta):
    """`model` as is (tta=None), or a model returning the mean of its outputs over the views
    `tta` names (images only, channels last)."""
    check_tta(tta)
    if tta is None:
        return model
    shape = model.inputs[0].shape
    if len(model.inputs) != 1 or len(shape) != 4 or None in shape[1:3]:
        raise InputError(f"tta={tta!r} mirrors images (batch, height, width, channels) of a "
                         f"fixed size; {model.name} takes inputs of shape {shape}.")
    inputs = keras.Input(shape[1:], dtype=model.inputs[0].dtype)
    mirror = Mirror(name="mirror")

    def flip_views(images):
        return [model(images), model(mirror(images))]

    if tta == "flip":
        views = flip_views(inputs)
    else:  # each shifted image weighs half as much as the image itself
        views = (2 * flip_views(inputs) + flip_views(Shift(-1, name="shift_up")(inputs))
                 + flip_views(Shift(1, name="shift_down")(inputs)))
    outputs = keras.layers.Average(name=f"{tta}_mean")(views)
    return keras.Model(inputs, outputs, name=f"{model.name}_{tta}_tta")
