"""What kind of computation a Keras layer performs, as the inspector needs to know it."""

import keras

from kerascnn.layers.activations import Maxout
from kerascnn.layers.locally_connected import LocallyConnected1D, LocallyConnected2D

CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
TRANSPOSED_CONVOLUTIONS = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)
DENSE = (keras.layers.Dense, keras.layers.EinsumDense)
WINDOW_POOLING = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
GLOBAL_POOLING = (
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
ADAPTIVE_POOLING = (
    keras.layers.AdaptiveMaxPooling1D,
    keras.layers.AdaptiveMaxPooling2D,
    keras.layers.AdaptiveMaxPooling3D,
    keras.layers.AdaptiveAveragePooling1D,
    keras.layers.AdaptiveAveragePooling2D,
    keras.layers.AdaptiveAveragePooling3D,
)
POOLING = WINDOW_POOLING + GLOBAL_POOLING + ADAPTIVE_POOLING
UPSAMPLING = (
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
)
PADDING_OR_CROPPING = (
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
)
# Keras layers whose multiply-adds the inspector counts as 0 by convention
# (see `kerascnn.analysis.costs`). `Dot` multiplies and accumulates, so it
# is measured like a custom layer instead.
_ZERO_MAC_MODULES = tuple(
    f"keras.src.layers.{name}"
    for name in (
        "activations",
        "normalization",
        "regularization",
        "reshaping",
        "merging",
        "preprocessing",
        "pooling",
        "core.identity",
        "core.input_layer",
        "core.masking",
    )
)


def unwrap(layer):
    """Returns the layer inside wrappers such as DropConnect or SpectralNormalization.

    A wrapper is a layer whose `layer` attribute holds another layer; it
    computes what the wrapped layer computes.
    """
    while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
        layer = layer.layer
    return layer


# kerascnn's layers that compute units: unshared convolutions, and Maxout (one unit per
# max over its pieces).
KERASCNN_UNITS = (LocallyConnected1D, LocallyConnected2D, Maxout)


def computes_units(layer):
    """True for layers whose outputs count as neurons: convolutions, dense, pooling."""
    return isinstance(
        layer, CONVOLUTIONS + TRANSPOSED_CONVOLUTIONS + DENSE + POOLING + KERASCNN_UNITS
    )


def is_zero_mac_keras_layer(layer):
    """True for Keras layers that do no multiply-adds by the inspector's convention."""
    return type(layer).__module__.startswith(_ZERO_MAC_MODULES) and not isinstance(
        layer, keras.layers.Dot
    )


def window(layer):
    """Returns `(kernel_size, strides, dilation_rate)` tuples of a sliding-window layer."""
    if isinstance(layer, WINDOW_POOLING):
        return tuple(layer.pool_size), tuple(layer.strides), (1,) * len(layer.pool_size)
    return tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
