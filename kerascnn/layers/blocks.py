"""Blocks shared by the families: convolution-normalisation-activation, the residual merge."""

import keras

from kerascnn.layers import factories
from kerascnn.layers.convolution import conv
from kerascnn.layers.regularization import StochasticDepth
from kerascnn.layers.squeeze_excite import squeeze_excite

# Kinds that need no argument besides their name and keep any filter count: what a family
# can offer as a `conv_kind` option ("grouped" and "dilated" need groups / dilation,
# "depthwise" needs filters that are a multiple of the input channels).
PLAIN_CONV_KINDS = ("standard", "depthwise_separable", "spatially_separable", "flattened")


def conv_norm_act(x, filters, kernel_size, *, name, norm="none", activation="relu",
                  se_ratio=None, norm_name=None, activation_name=None, norm_options=None,
                  **conv_options):
    """Adds a convolution, its normalisation, its activation and optional squeeze-excitation.

    The convolution has a bias only when no normalisation follows it (a bias before
    BatchNorm is redundant).

    Args:
        x: channels-last input (1D, 2D or 3D).
        filters: output channels.
        kernel_size: int or one int per spatial axis.
        name: name of the convolution; the layers after it append "_norm", "_<activation>"
            and "_se".
        norm: one of `factories.NORMALIZATIONS`.
        activation: a Keras activation name.
        se_ratio: bottleneck ratio of a squeeze-and-excitation block after the activation,
            or None for none.
        norm_name, activation_name: layer names when a family keeps another convention
            (keras.applications' "_bn" / "_act"); default "<name>_norm", "<name>_<activation>".
        norm_options: keyword arguments of `factories.normalization` (epsilon, momentum).
        **conv_options: strides, padding, padding_mode, kind, groups, dilation (see `conv`).

    Returns:
        The output tensor.
    """
    use_bias = factories.check_norm(norm) == "none"
    x = conv(x, filters, kernel_size, name=name, use_bias=use_bias, **conv_options)
    x = factories.normalization(x, norm, norm_name or f"{name}_norm", **(norm_options or {}))
    x = factories.activation(x, activation, activation_name or f"{name}_{activation}")
    if se_ratio:
        x = squeeze_excite(x, se_ratio, f"{name}_se")
    return x


# Keras' BatchNorm defaults (TF-slim's epsilon), kept by keras.applications' MobileNet and
# Xception, so weights trained there give the same outputs here.
KERAS_BATCH_NORM = {"epsilon": 1e-3, "momentum": 0.99}


def keras_conv_norm_act(x, filters, kernel_size, *, name, **options):
    """`conv_norm_act` named as keras.applications (`name`, `name`_bn, `name`_act), Keras' BatchNorm."""
    return conv_norm_act(x, filters, kernel_size, name=name, norm_name=f"{name}_bn",
                         activation_name=f"{name}_act", norm_options=KERAS_BATCH_NORM, **options)


def residual_add(x, shortcut, *, name, se_ratio=0.0, drop_path=0.0):
    """Ends a residual branch: optional squeeze-excitation, stochastic depth, then the sum.

    Args:
        x: the residual branch.
        shortcut: the identity or projected input.
        name: block name; adds "<name>_se", "<name>_drop_path" and "<name>_add".
        se_ratio: squeeze-and-excitation on the branch when > 0 (Hu et al., 2018, Fig. 3).
        drop_path: probability of dropping the whole branch in training (Huang et al., 2016).
    """
    if se_ratio:
        x = squeeze_excite(x, se_ratio, f"{name}_se")
    if drop_path:
        x = StochasticDepth(drop_path, name=f"{name}_drop_path")(x)
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])
