"""Activations the course teaches beyond keras.activations: Maxout, and parsed choices such as
"leaky_relu:0.1" (the slope as an option), "prelu" and "maxout:2"."""

import keras
from keras import ops

from kerascnn.errors import InputError


@keras.saving.register_keras_serializable(package="kerascnn")
class Maxout(keras.layers.Layer):
    """The maximum of `pieces` affine functions of the channels (Goodfellow et al., 2013).

    Each of the `units` outputs is max_j (x · W_j + b_j) over `pieces` affine pieces of the
    input channels, at every position of a 1D, 2D or 3D map (or of a flat vector), so it
    learns a convex piecewise-linear activation; it has pieces × units × (channels + 1)
    parameters.

    Args:
        units: outputs per position; None keeps the input's channels (Maxout as an
            activation: `activation="maxout:2"`).
        pieces: k, the number of affine pieces (at least 2).
        **kwargs: the arguments of `keras.layers.Layer`.
    """

    def __init__(self, units=None, pieces=2, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if units is not None and (isinstance(units, bool) or not isinstance(units, int) or units < 1):
            raise InputError(f"Maxout units must be a positive int or None; got {units!r}.")
        if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 2:
            raise InputError(f"Maxout pieces must be an int >= 2 (k affine pieces); got {pieces!r}.")
        self.units, self.pieces = units, pieces
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.output_units = self.units or input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.output_units * self.pieces),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.output_units * self.pieces,),
                                    initializer="zeros")

    def call(self, x):
        z = ops.matmul(x, self.kernel) + self.bias
        z = ops.reshape(z, (*ops.shape(z)[:-1], self.output_units, self.pieces))
        return ops.max(z, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units or input_shape[-1])

    def compute_macs(self, input_shape):
        """Multiply-adds per example: one product per weight at every position."""
        positions = 1
        for n in input_shape[:-1]:
            positions *= n
        return positions * input_shape[-1] * (self.units or input_shape[-1]) * self.pieces

    def get_config(self):
        return {
            **super().get_config(), "units": self.units, "pieces": self.pieces,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _leaky_relu(slope, rank, name):
    return keras.layers.LeakyReLU(negative_slope=slope, name=name)


def _maxout(pieces, rank, name):
    return Maxout(pieces=pieces, name=name)


def _prelu(_, rank, name):
    # One slope per channel, shared over positions (He et al., 2015).
    return keras.layers.PReLU(shared_axes=list(range(1, rank + 1)) or None, name=name)


# Activation choices built as layers: name -> (factory(argument, rank, name), default argument;
# None when the choice takes no argument). "leaky_relu" without a slope stays Keras' (0.2).
PARAMETRIC = {"leaky_relu": (_leaky_relu, 0.2), "maxout": (_maxout, 2), "prelu": (_prelu, None)}


def parse_activation(activation):
    """Splits "name:argument" into (name, argument or None); other values pass through.

    Raises:
        ValueError: an argument that is not a number, out of range, or given to an
            activation that takes none.
    """
    if not isinstance(activation, str) or ":" not in activation:
        return activation, None
    name, argument = activation.split(":", 1)
    if name not in PARAMETRIC or PARAMETRIC[name][1] is None:
        raise InputError(
            f"activation={activation!r}: only 'leaky_relu' and 'maxout' take an argument after "
            "':' (e.g. 'leaky_relu:0.1', 'maxout:2')."
        )
    try:
        value = float(argument) if name == "leaky_relu" else int(argument)
    except ValueError:
        raise InputError(
            f"activation={activation!r}: {argument!r} is not a "
            f"{'number' if name == 'leaky_relu' else 'whole number'}."
        ) from None
    if name == "leaky_relu" and not 0 <= value < 1:
        raise InputError(f"activation={activation!r}: the slope must be in [0, 1), e.g. 0.1.")
    if name == "maxout" and value < 2:
        raise InputError(f"activation={activation!r}: maxout needs at least 2 pieces.")
    return name, value


def activation_layer(activation, rank, name):
    """The layer of a parametric choice ("leaky_relu:0.1", "prelu", "maxout:2"), else None.

    Args:
        activation: an activation choice.
        rank: spatial axes of the input (0 for flat vectors).
        name: the layer name.
    """
    key, argument = parse_activation(activation)
    if key not in PARAMETRIC or (key == "leaky_relu" and argument is None):
        return None
    factory, default = PARAMETRIC[key]
    return factory(default if argument is None else argument, rank, name)
