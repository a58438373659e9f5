"""Convolution and pooling as building blocks, for 1D, 2D and 3D inputs.

Each helper checks that the map does not vanish before it adds a layer, so a too-small
input fails with the layer's name instead of a TensorFlow shape error.
"""

import dataclasses
import math

import keras

from kerascnn.errors import InputError
from kerascnn.layers.factories import check_choice, spatial_rank
from kerascnn.layers.padding import (
    PADDING_MODES,
    CeilModePadding,
    SpatialPadding,
    normalize_padding,
)
from kerascnn.layers.regularization import DropConnectConv1D, DropConnectConv2D, DropConnectConv3D

DROP_CONNECT_CONVS = {1: DropConnectConv1D, 2: DropConnectConv2D, 3: DropConnectConv3D}

CONV_KINDS = (
    "standard",
    "grouped",
    "dilated",
    "depthwise",
    "depthwise_separable",
    "spatially_separable",
    "flattened",
)


class SpatialSizeError(InputError):
    """A layer would receive a map smaller than its (dilated) kernel."""

    def __init__(self, layer, size, kernel, what="window"):
        self.layer, self.size, self.kernel = layer, size, kernel
        super().__init__(f"layer {layer!r} (a {size} map under a {kernel} {what})")


@dataclasses.dataclass(frozen=True)
class Window:
    """One sliding window of a network along one axis: what decides whether a map vanishes.

    A family lists the windows of its stage table (kernels, strides, paddings) in order, so
    the smallest input it accepts follows by arithmetic, before any layer is built.

    Attributes:
        name: the layer the window belongs to, quoted in errors.
        kernel: effective (dilated) window size.
        stride: step between windows.
        padding: "valid", "same" (Keras' padding: output ceil(n / stride)), "ceil" (no
            padding, but a last window that runs past the map still counts: Caffe's pools),
            an int per side, or a (before, after) pair.
        padding_mode: "zeros", "reflect" or "replicate"; a reflection must be shorter than
            the map it mirrors.
    """

    name: str
    kernel: int
    stride: int = 1
    padding: object = "valid"
    padding_mode: str = "zeros"

    def output_size(self, size):
        """Returns the output size along one axis, or None when the window does not fit."""
        if self.padding == "same" and self.padding_mode == "zeros":
            return -(-size // self.stride)
        if self.padding == "valid":
            before = after = 0
        elif self.padding == "ceil":
            before, after = 0, -(size - self.kernel) % self.stride
        elif self.padding == "same":
            ((before, after),) = _same_pairs((size,), (self.kernel,), (self.stride,))
        elif isinstance(self.padding, int):
            before = after = self.padding
        else:
            before, after = self.padding
        if self.padding_mode == "reflect" and max(before, after) >= size:
            return None
        padded = size + before + after
        return None if padded < self.kernel else (padded - self.kernel) // self.stride + 1


def vanishing_window(windows, size):
    """Returns (the first window that does not fit, the map size there), or None."""
    for window in windows:
        output = window.output_size(size)
        if output is None:
            return window, size
        size = output
    return None


def smallest_side(windows, limit=4096):
    """Returns the smallest input side that every window in `windows` fits.

    Raises:
        ValueError: no side up to `limit` fits.
    """
    for side in range(1, limit + 1):
        if vanishing_window(windows, side) is None:
            return side
    raise InputError(f"No input side up to {limit} fits the windows {windows}.")


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
        raise InputError(f"padding={padding!r} must be 'valid', 'same' or explicit sizes.")
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
    drop_connect=0.0,
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
        drop_connect: DropConnect rate on the kernel during training (Wan et al., 2013);
            "standard", "grouped" and "dilated" kinds only.

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
        raise InputError(f"conv kind 'grouped' needs groups >= 2; got groups={groups}.")
    if kind == "dilated" and max(dilation) < 2:
        raise InputError(f"conv kind 'dilated' needs dilation >= 2; got dilation={dilation}.")
    channels = x.shape[-1]
    if groups > 1 and (channels % groups or filters % groups):
        raise InputError(
            f"{name}: groups={groups} must divide both the input channels ({channels}) and "
            f"the filters ({filters})."
        )
    window = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    x, keras_padding = pad(x, padding, window, strides, padding_mode, name)
    if keras_padding == "valid":
        _check_window(x, window, name)
    common = dict(padding=keras_padding, kernel_initializer=kernel_initializer)
    if drop_connect and kind not in ("standard", "grouped", "dilated"):
        raise InputError(
            f"{name}: drop_connect applies to 'standard', 'grouped' and 'dilated' convolutions; "
            f"got kind={kind!r}."
        )
    if kind in ("standard", "grouped", "dilated"):
        layer, extra = _layer("Conv", rank), {}
        if drop_connect:
            layer, extra = DROP_CONNECT_CONVS[rank], {"rate": drop_connect}
        return layer(
            filters, kernel, strides=strides, dilation_rate=dilation, groups=groups,
            use_bias=use_bias, name=name, **common, **extra,
        )(x)
    if kind == "depthwise":
        return depthwise(x, kernel, strides, dilation, filters // channels, use_bias, name, common)
    if kind == "depthwise_separable":
        x = depthwise(x, kernel, strides, dilation, 1, False, f"{name}_dw", common)
        return _layer("Conv", rank)(filters, 1, use_bias=use_bias, name=f"{name}_pw")(x)
    if rank == 1:
        raise InputError(f"conv kind {kind!r} factorises a 2D or 3D kernel; the input is 1D.")
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


def ceil_max_pool(x, pool_size, strides, *, name):
    """Max-pooling in ceil mode (cuda-convnet, Caffe): a last window that runs past the map counts.

    Replicating the last row (column, ...) completes that window; the maximum is unchanged
    because the edge already lies in it. Maps of unknown size (variable inputs) are
    completed when the network runs.
    """
    sizes = x.shape[1:-1]
    if None in sizes:
        x = CeilModePadding(pool_size, strides, name=f"{name}_pad")(x)
    else:
        extra = [-(n - pool_size) % strides for n in sizes]
        if any(extra):
            x = SpatialPadding(tuple((0, e) for e in extra), mode="replicate",
                               name=f"{name}_pad")(x)
    return pool(x, "max", pool_size, strides=strides, name=name)


def global_pool(x, kind, name, keepdims=False):
    """Global max or average pooling over every spatial axis."""
    check_choice(kind, POOLS, "pooling")
    prefix = "GlobalMaxPooling" if kind == "max" else "GlobalAveragePooling"
    return _layer(prefix, spatial_rank(x))(keepdims=keepdims, name=name)(x)
