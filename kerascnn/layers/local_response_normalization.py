"""Local response normalisation across channels (Krizhevsky et al., 2012, section 3.3)."""

import keras
import tensorflow as tf

from kerascnn.errors import InputError


@keras.saving.register_keras_serializable(package="kerascnn")
class LocalResponseNormalization(keras.layers.Layer):
    """b = a / (k + alpha * sum of a^2 over the n neighbouring channels) ** beta.

    The defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75). Unlike PyTorch's
    `LocalResponseNorm`, alpha is not divided by n: this is the paper's formula.
    Works for 1D, 2D and 3D channels-last inputs.

    Args:
        size: n, the number of channels summed over (odd).
        bias: k.
        alpha: the scale of the sum.
        beta: the exponent.
    """

    def __init__(self, size=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise InputError(f"LRN size must be a positive odd number of channels; got {size!r}.")
        self.size, self.bias, self.alpha, self.beta = size, bias, alpha, beta

    def call(self, x):
        shape = tf.shape(x)
        flat = tf.reshape(x, [shape[0], -1, 1, shape[-1]])
        out = tf.nn.local_response_normalization(
            flat, depth_radius=self.size // 2, bias=self.bias, alpha=self.alpha, beta=self.beta
        )
        return tf.reshape(out, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
