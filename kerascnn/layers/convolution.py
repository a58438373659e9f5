"""Convolution and pooling as building blocks, for 1D, 2D and 3D inputs.

Each helper checks that the map does not vanish before it adds a layer, so a too-small
input fails with the layer's name instead of a TensorFlow shape error.
"""

import math

import keras

from kerascnn.layers.factories import check_choice, spatial_rank
from kerascnn.layers.padding import PADDING_MODES, SpatialPadding, normalize_padding

CONV_KINDS = (
    "standard",
    "grouped",
    "dilated",
    "depthwise",
    "depthwise_separable",
    "spatially_separable",
    "flattened",
)


class SpatialSizeError(ValueError):
    """A layer would receive a map smaller than its (dilated) kernel."""

    def __init__(self, layer, size, kernel, what="window"):
        self.layer, self.size, self.kernel = layer, size, kernel
        super().__init__(f"layer {layer!r} (a {size} map under a {kernel} {what})")


def _tuple(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _same_pairs(sizes, kernel, strides):
    """Keras' "same" padding as explicit (before, after) pairs (TensorFlow's convention)."""
    pairs = []
    for n, k, s in zip(sizes, kernel, strides):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def _check_window(x, window, name):
    sizes = tuple(x.shape[1:-1])
    if any(n is not None and n < k for n, k in zip(sizes, window)):
        raise SpatialSizeError(name, "×".join(map(str, sizes)), "×".join(map(str, window)))


def pad(x, padding, kernel, strides, padding_mode, name):
    """Pads `x` for a window: returns (tensor, Keras padding string for the layer that follows).

    Args:
        padding: "valid", "same", or explicit ints / (before, after) pairs per axis.
        kernel: the effective (dilated) window size per axis.
        strides: strides per axis.
        padding_mode: one of "zeros", "reflect", "replicate".
    """
    check_choice(padding_mode, PADDING_MODES, "padding_mode")
    rank = spatial_rank(x)
    if padding == "valid":
        return x, "valid"
    if padding == "same":
        if padding_mode == "zeros":
            return x, "same"
        pairs = _same_pairs(x.shape[1:-1], kernel, strides)
    elif isinstance(padding, str):
        raise ValueError(f"padding={padding!r} must be 'valid', 'same' or explicit sizes.")
    else:
        pairs = normalize_padding(padding, rank)
    sizes = x.shape[1:-1]
    if padding_mode == "reflect" and any(n is not None and max(p) >= n for n, p in zip(sizes, pairs)):
        raise SpatialSizeError(f"{name}_pad", "×".join(map(str, sizes)),
                               "×".join(str(max(p)) for p in pairs), "reflect padding")
    if any(sum(p) for p in pairs):
        x = SpatialPadding(pairs, mode=padding_mode, name=f"{name}_pad")(x)
    return x, "valid"


def _layer(kind, rank):
    return getattr(keras.layers, f"{kind}{rank}D")


def conv(
    x,
    filters,
    kernel_size,
    *,
    name,
    strides=1,
    padding="same",
    padding_mode="zeros",
    kind="standard",
    groups=1,
    dilation=1,
    use_bias=True,
    kernel_initializer="glorot_uniform",
):
    """Adds a convolution of the given kind and returns its output.

    Kinds: "standard" (with optional `groups` and `dilation`); "grouped" (needs groups > 1);
    "dilated" (à trous, needs dilation > 1); "depthwise" (one filter per channel,
    `filters` a multiple of the input channels); "depthwise_separable" (depthwise then 1×1,
    Chollet 2017); "spatially_separable" (k×1 then 1×k, Szegedy et al. 2016);
    "flattened" (1×1 across channels, then per-channel k×1 and 1×k, Jin et al. 2014).

    Args:
        x: channels-last input (1D, 2D or 3D).
        filters: output channels.
        kernel_size: int or one int per spatial axis.
        name: base name of the layers added.
        strides, padding, padding_mode, groups, dilation, use_bias: as their names say;
            padding is "same", "valid" or explicit sizes (e.g. AlexNet's 2).

    Returns:
        The output tensor.

    Raises:
        ValueError: an unknown kind, inconsistent options, or a map smaller than the window.
    """
    check_choice(kind, CONV_KINDS, "conv kind")
    rank = spatial_rank(x)
    kernel, strides = _tuple(kernel_size, rank), _tuple(strides, rank)
    dilation = _tuple(dilation, rank)
    if kind == "grouped" and groups < 2:
        raise ValueError(f"conv kind 'grouped' needs groups >= 2; got groups={groups}.")
    if kind == "dilated" and max(dilation) < 2:
        raise ValueError(f"conv kind 'dilated' needs dilation >= 2; got dilation={dilation}.")
    channels = x.shape[-1]
    if groups > 1 and (channels % groups or filters % groups):
        raise ValueError(
            f"{name}: groups={groups} must divide both the input channels ({channels}) and "
            f"the filters ({filters})."
        )
    window = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    x, keras_padding = pad(x, padding, window, strides, padding_mode, name)
    if keras_padding == "valid":
        _check_window(x, window, name)
    common = dict(padding=keras_padding, kernel_initializer=kernel_initializer)
    if kind in ("standard", "grouped", "dilated"):
        return _layer("Conv", rank)(
            filters, kernel, strides=strides, dilation_rate=dilation, groups=groups,
            use_bias=use_bias, name=name, **common,
        )(x)
    if kind == "depthwise":
        return depthwise(x, kernel, strides, dilation, filters // channels, use_bias, name, common)
    if kind == "depthwise_separable":
        x = depthwise(x, kernel, strides, dilation, 1, False, f"{name}_dw", common)
        return _layer("Conv", rank)(filters, 1, use_bias=use_bias, name=f"{name}_pw")(x)
    if rank == 1:
        raise ValueError(f"conv kind {kind!r} factorises a 2D or 3D kernel; the input is 1D.")
    if kind == "flattened":
        x = _layer("Conv", rank)(filters, 1, use_bias=False, name=f"{name}_lateral")(x)
    for axis in range(rank):
        axis_kernel = tuple(k if a == axis else 1 for a, k in enumerate(kernel))
        axis_strides = tuple(s if a == axis else 1 for a, s in enumerate(strides))
        last = axis == rank - 1
        suffix = f"axis{axis}"
        if kind == "flattened":
            x = depthwise(x, axis_kernel, axis_strides, dilation, 1, use_bias and last,
                          f"{name}_{suffix}", common)
        else:
            x = _layer("Conv", rank)(
                filters, axis_kernel, strides=axis_strides, dilation_rate=dilation,
                use_bias=use_bias and last, name=f"{name}_{suffix}", **common,
            )(x)
    return x


def depthwise(x, kernel, strides, dilation, multiplier, use_bias, name, common):
    """One filter (or `multiplier` filters) per input channel; 3D uses a grouped Conv3D."""
    rank = spatial_rank(x)
    if rank == 3:
        channels = x.shape[-1]
        return keras.layers.Conv3D(
            channels * multiplier, kernel, strides=strides, dilation_rate=dilation,
            groups=channels, use_bias=use_bias, name=name, **common,
        )(x)
    return _layer("DepthwiseConv", rank)(
        kernel, strides=strides, dilation_rate=dilation, depth_multiplier=multiplier,
        use_bias=use_bias, name=name, padding=common["padding"],
        depthwise_initializer=common["kernel_initializer"],
    )(x)


POOLS = ("max", "avg")


def pool(x, kind, pool_size, *, name, strides=None, padding="valid"):
    """Adds max or average pooling after checking that the window fits.

    Args:
        kind: "max" or "avg".
        pool_size, strides: int or one int per axis; strides default to pool_size.
        padding: "valid" or "same".
    """
    check_choice(kind, POOLS, "pooling")
    check_choice(padding, ("valid", "same"), "pooling padding")
    rank = spatial_rank(x)
    window = _tuple(pool_size, rank)
    if padding == "valid":
        _check_window(x, window, name)
    layer = _layer("MaxPooling" if kind == "max" else "AveragePooling", rank)
    return layer(window, strides=strides, padding=padding, name=name)(x)


def global_pool(x, kind, name, keepdims=False):
    """Global max or average pooling over every spatial axis."""
    check_choice(kind, POOLS, "pooling")
    prefix = "GlobalMaxPooling" if kind == "max" else "GlobalAveragePooling"
    return _layer(prefix, spatial_rank(x))(keepdims=keepdims, name=name)(x)
