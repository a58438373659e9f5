"""Patch whitening and identity (Dirac) initialisation: a network's first layer set from the
training images' statistics, and convolutions that start as the identity.

Page ('How to train your ResNet', 2018) replaced a CIFAR-10 network's first convolution by a
fixed one whose filters are the eigenvectors of the covariance of the training images' small
patches, scaled to unit variance; hlb-CIFAR10 and airbench (Jordan, '94% on CIFAR-10 in 3.29
seconds on a single GPU', 2024) take 2×2 patches and keep each filter and its negative, so that
the activation after it loses no sign. Starting each convolution as the identity on its first
channels (PyTorch's `dirac_`) gives an implicit residual path through a plain stack.
"""

import keras
import numpy as np
import tensorflow as tf

from kerascnn.errors import InputError

WHITENING_IMAGES = 5000  # images whose patches `adapt` reads (airbench's count)


@keras.saving.register_keras_serializable(package="kerascnn")
class PatchWhitening(keras.layers.Layer):
    """A k×k "valid" convolution with frozen whitening filters and a trainable bias.

    Its 2·k²·C filters are the eigenvectors v of the (uncentred) covariance of the k×k×C
    patches of training images, divided by sqrt(eigenvalue + epsilon), largest eigenvalue
    first, then the same filters negated. `adapt(images)` computes them; until then the
    filters are ± the patch's unit vectors.

    Args:
        kernel_size: the patch side k (2 in airbench).
        epsilon: added to each eigenvalue before its square root.
    """

    def __init__(self, kernel_size=2, epsilon=5e-4, **kwargs):
        super().__init__(**kwargs)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise InputError(f"PatchWhitening: kernel_size must be a positive int; got "
                             f"{kernel_size!r}.")
        if not epsilon > 0:
            raise InputError(f"PatchWhitening: epsilon must be positive; got {epsilon!r}.")
        self.kernel_size = kernel_size
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        k, channels = self.kernel_size, int(input_shape[-1])
        patch = k * k * channels
        unit = np.eye(patch, dtype="float32").reshape(k, k, channels, patch)
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, channels, 2 * patch), trainable=False,
            initializer=keras.initializers.Constant(np.concatenate([unit, -unit], axis=-1)))
        self.bias = self.add_weight(name="bias", shape=(2 * patch,), initializer="zeros")

    def call(self, inputs):
        kernel = keras.ops.cast(self.kernel, inputs.dtype)
        outputs = keras.ops.conv(inputs, kernel, strides=1, padding="valid")
        return outputs + keras.ops.cast(self.bias, inputs.dtype)

    def adapt(self, images):
        """Sets the filters from `images` (N, H, W, C), as the layer will see them (after the
        input's normalisation); reads at most WHITENING_IMAGES of them, drawn at random (seed 0)
        so that a set stored class by class (a folder's order) gives every class its share."""
        images = tf.convert_to_tensor(np.asarray(sample(images), dtype="float32"))
        if not self.built:
            self.build(images.shape)
        k, channels = self.kernel_size, images.shape[-1]
        patches = tf.image.extract_patches(images, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1],
                                           "VALID")
        patches = tf.reshape(patches, (-1, k * k * channels))
        # The k²C × k²C covariance in TensorFlow: no float64 copy of the millions of patches.
        covariance = tf.matmul(patches, patches, transpose_a=True).numpy().astype("float64")
        values, vectors = np.linalg.eigh(covariance / patches.shape[0])  # ascending
        filters = (vectors / np.sqrt(values + self.epsilon))[:, ::-1]
        filters = filters.reshape(k, k, channels, -1).astype("float32")
        self.kernel.assign(np.concatenate([filters, -filters], axis=-1))

    def compute_output_shape(self, input_shape):
        k = self.kernel_size
        sides = [None if n is None else n - k + 1 for n in input_shape[1:-1]]
        return (input_shape[0], *sides, 2 * k * k * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "epsilon": self.epsilon}


def sample(images, count=WHITENING_IMAGES):
    """At most `count` of `images`, drawn without replacement (seed 0), in their order."""
    if len(images) <= count:
        return images
    return images[np.sort(np.random.default_rng(0).choice(len(images), count, replace=False))]


@keras.saving.register_keras_serializable(package="kerascnn")
class Dirac(keras.initializers.Initializer):
    """A convolution kernel that starts as the identity on its first channels: output channel
    i < min(inputs, outputs) copies input channel i (the kernel's centre tap is 1, the rest of
    that filter 0); the other filters are drawn by `base` (PyTorch's `dirac_` after its
    default initialisation).

    Args:
        base: the Keras initializer of the other filters (name or config).
    """

    def __init__(self, base="he_uniform"):
        self.base = keras.initializers.get(base)

    def __call__(self, shape, dtype=None):
        kernel = keras.ops.convert_to_numpy(self.base(shape, dtype="float32")).copy()
        *window, inputs, outputs = shape
        n = min(inputs, outputs)
        kernel[..., :n] = 0.0
        centre = tuple(side // 2 for side in window)
        kernel[(*centre, np.arange(n), np.arange(n))] = 1.0
        return keras.ops.cast(kernel, dtype or "float32")

    def get_config(self):
        return {"base": keras.initializers.serialize(self.base)}
