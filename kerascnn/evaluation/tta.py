"""Test-time augmentation: a model's prediction averaged over an image and its mirror image."""

import keras

from kerascnn.errors import InputError

TTA = (None, "flip")


@keras.saving.register_keras_serializable(package="kerascnn")
class Mirror(keras.layers.Layer):
    """Mirrors a batch of images left to right (channels last)."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


def check_tta(tta):
    """Refuses a test-time augmentation kerascnn does not know."""
    if tta not in TTA:
        raise InputError(f"tta must be None or 'flip' (the mean over the image and its "
                         f"left-right mirror); got tta={tta!r}.")


def with_tta(model, tta):
    """`model` as is (tta=None), or a model returning the mean of its outputs on the images
    and on their left-right mirror images (tta="flip": images only, channels last)."""
    check_tta(tta)
    if tta is None:
        return model
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise InputError(f"tta='flip' mirrors images (batch, height, width, channels); "
                         f"{model.name} takes inputs of shape {model.inputs[0].shape}.")
    inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
    mirrored = Mirror(name="mirror")(inputs)
    outputs = keras.layers.Average(name="flip_mean")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_tta")
