"""Locally connected layers: a convolution's windows with unshared weights (1D and 2D)."""

import math

import keras
from keras import ops

from kerascnn.errors import InputError


class _LocallyConnected(keras.layers.Layer):
    """Every output position has its own filters over its window (no weight sharing).

    Keras 2's `LocallyConnected1D/2D`, removed from Keras 3: "valid" windows, an untied bias
    (one per position and filter), channels last. The layer has
    positions × filters × (window × channels + 1) parameters.
    """

    rank = None

    def __init__(self, filters, kernel_size, strides=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise InputError(f"{type(self).__name__} filters must be a positive int; got {filters!r}.")
        self.filters = filters
        self.kernel_size = _tuple(kernel_size, self.rank)
        self.strides = _tuple(strides, self.rank)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _output_sizes(self, sizes):
        out = []
        for n, k, s in zip(sizes, self.kernel_size, self.strides):
            if n is None or n < k:
                raise InputError(
                    f"{self.name}: a locally connected layer needs every input size known and at "
                    f"least its window {self.kernel_size}; got {tuple(sizes)}."
                )
            out.append((n - k) // s + 1)
        return tuple(out)

    def build(self, input_shape):
        self.output_sizes = self._output_sizes(input_shape[1:-1])
        window = math.prod(self.kernel_size) * input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.output_sizes, window, self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(*self.output_sizes, self.filters),
                                        initializer="zeros")

    def _patches(self, x):
        """(batch, *output sizes, window × channels): each position's window, flattened."""
        if self.rank == 1:
            x = ops.expand_dims(x, 1)
        size = self.kernel_size if self.rank == 2 else (1, *self.kernel_size)
        strides = self.strides if self.rank == 2 else (1, *self.strides)
        patches = keras.ops.image.extract_patches(x, size, strides=strides, padding="valid",
                                                  data_format="channels_last")
        return patches[:, 0] if self.rank == 1 else patches

    def call(self, x):
        equation = "blp,lpf->blf" if self.rank == 1 else "bhwp,hwpf->bhwf"
        outputs = ops.einsum(equation, self._patches(x), self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._output_sizes(input_shape[1:-1]), self.filters)

    def compute_macs(self, input_shape):
        """Multiply-adds per example: one product per kernel weight."""
        sizes = self._output_sizes(input_shape[:-1])
        return math.prod(sizes) * math.prod(self.kernel_size) * input_shape[-1] * self.filters

    def get_config(self):
        return {
            **super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
            "strides": self.strides, "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _tuple(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


@keras.saving.register_keras_serializable(package="kerascnn")
class LocallyConnected1D(_LocallyConnected):
    """A Conv1D with unshared weights: each output position has its own filters.

    Args:
        filters: output channels.
        kernel_size: window length.
        strides: step between windows.
        activation, use_bias, kernel_initializer: as in `keras.layers.Conv1D`.
    """

    rank = 1


@keras.saving.register_keras_serializable(package="kerascnn")
class LocallyConnected2D(_LocallyConnected):
    """A Conv2D with unshared weights: each output position has its own filters.

    Args:
        filters: output channels.
        kernel_size: int or (height, width) of the window.
        strides: int or (height, width) step between windows.
        activation, use_bias, kernel_initializer: as in `keras.layers.Conv2D`.
    """

    rank = 2
