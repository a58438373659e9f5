"""Squeeze-and-excitation (Hu et al., 2018), built from standard layers."""

import keras

from kerascnn.errors import InputError
from kerascnn.layers.convolution import global_pool


def squeeze_excite(x, ratio, name, activation="relu"):
    """Rescales each channel by a gate computed from the globally pooled map.

    Args:
        x: channels-last input.
        ratio: bottleneck width as a fraction of the channels (SENet's r = 16 is 1/16).
        name: base name of the layers.
        activation: activation of the bottleneck.

    Returns:
        `x` multiplied by per-channel gates in (0, 1).
    """
    if not 0 < ratio <= 1:
        raise InputError(f"se_ratio must be in (0, 1], e.g. 1/16 or 0.25; got {ratio!r}.")
    channels = x.shape[-1]
    rank = len(x.shape) - 2
    conv = getattr(keras.layers, f"Conv{rank}D")
    s = global_pool(x, "avg", f"{name}_squeeze", keepdims=True)
    s = conv(max(1, round(channels * ratio)), 1, activation=activation, name=f"{name}_reduce")(s)
    s = conv(channels, 1, activation="sigmoid", name=f"{name}_expand")(s)
    return keras.layers.Multiply(name=f"{name}_excite")([x, s])
