"""Small factories that choose normalisation, activation and dropout by name.

Every architecture calls these instead of branching on options itself, so an option
means the same thing in every family (one option, one place).
"""

import keras

from kerascnn.errors import InputError
from kerascnn.layers.activations import PARAMETRIC, activation_layer, parse_activation

NORMALIZATIONS = ("batch", "layer", "group", "instance", "none")


def check_choice(value, choices, what):
    """Raises ValueError naming `value` and the valid `choices` unless value is one of them."""
    if value not in choices:
        raise InputError(f"{what}={value!r} is not supported; choose one of {tuple(choices)}.")
    return value


def check_norm(norm):
    """Validates a normalisation name (None means "none")."""
    return check_choice("none" if norm is None else norm, NORMALIZATIONS, "norm")


def check_activation(activation):
    """Validates an activation: a keras.activations name, or "leaky_relu:<slope>",
    "maxout:<pieces>", "prelu" (kerascnn.layers.activations)."""
    name, _ = parse_activation(activation)
    if name in PARAMETRIC:
        return activation
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise InputError(
            f"activation={activation!r} is not a Keras activation; use a name such as "
            "'relu', 'tanh', 'gelu', 'swish', 'relu6', 'sigmoid' or 'linear', or "
            "'leaky_relu:0.1', 'prelu', 'maxout:2'."
        ) from None
    return activation


def _group_count(channels, groups=32):
    """The largest divisor of `channels` not above `groups` (Wu & He use 32)."""
    return next(g for g in range(min(groups, channels), 0, -1) if channels % g == 0)


def normalization(x, norm, name, *, epsilon=1e-5, momentum=0.9):
    """Applies the normalisation named `norm` over the channel axis.

    BatchNorm uses PyTorch's defaults (momentum 0.1 there is 0.9 here, epsilon 1e-5);
    "layer" normalises each position over its channels (ConvNeXt, timm's LayerNorm2d);
    "group" uses up to 32 groups; "instance" is one group per channel.

    Args:
        x: the input tensor.
        norm: one of NORMALIZATIONS or None.
        name: the layer name.

    Returns:
        The normalised tensor, or `x` itself for "none".
    """
    norm = check_norm(norm)
    if norm == "none":
        return x
    if norm == "batch":
        layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)
    elif norm == "layer":
        layer = keras.layers.LayerNormalization(epsilon=epsilon, name=name)
    else:
        groups = -1 if norm == "instance" else _group_count(x.shape[-1])
        layer = keras.layers.GroupNormalization(groups=groups, epsilon=epsilon, name=name)
    return layer(x)


def is_layer_activation(activation):
    """True for choices built as their own layer ("prelu", "maxout:2", "leaky_relu:0.1"),
    which a Dense or Conv layer cannot take as its `activation` argument."""
    name, argument = parse_activation(activation)
    return name in PARAMETRIC and not (name == "leaky_relu" and argument is None)


def activation(x, activation, name):
    """Applies an activation choice (see `check_activation`); None or "linear" returns `x`."""
    if activation in (None, "linear"):
        return x
    name = name.replace(":", "_").replace(".", "_")  # "conv1_leaky_relu:0.1" is no layer name
    layer = activation_layer(check_activation(activation), len(x.shape) - 2, name)
    return (layer or keras.layers.Activation(activation, name=name))(x)


def spatial_rank(x):
    """Number of spatial axes of a channels-last tensor (1, 2 or 3)."""
    return len(x.shape) - 2


def spatial_dropout(x, rate, name):
    """Drops whole feature maps (Tompson et al., 2015); identity when rate is 0."""
    if not rate:
        return x
    layer = getattr(keras.layers, f"SpatialDropout{spatial_rank(x)}D")
    return layer(rate, name=name)(x)


def dropout(x, rate, name):
    """Standard dropout; identity when rate is 0."""
    return keras.layers.Dropout(rate, name=name)(x) if rate else x
