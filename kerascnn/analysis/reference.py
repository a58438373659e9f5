"""NumPy reference implementations of convolution and pooling, for teaching and checking.

Channels-last arrays `(batch, *spatial, channels)` with 1, 2 or 3 spatial
axes, and Keras's weight layout `(*kernel_size, in_channels / groups,
filters)`, so a trained layer's `get_weights()` can be fed in directly.

A deep-learning "convolution" is a cross-correlation: the filter slides over
the input without being flipped (a mathematical convolution would flip it).
`conv` shows the trick every fast implementation starts from: lay each
receptive field out as a row (`im2col`), lay each filter out as a column,
and the whole layer is one matrix product.
"""

import math

import numpy as np

from kerascnn.errors import InputError

_PADDING_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "circular": "wrap",
}


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """Lays every receptive field of `x` out as one row of a matrix.

    Args:
        x: input array `(batch, *spatial, channels)`, 1 to 3 spatial axes.
        kernel_size: window size, an int or one per spatial axis.
        stride: step between windows, an int or one per axis.
        padding: an int or one per axis (added on both sides), "valid" (none)
            or "same" (Keras's: output `ceil(size / stride)`, any odd pixel at
            the end).
        dilation: spacing between taps, an int or one per axis.
        padding_mode: "zeros", "reflect", "symmetric", "replicate" or
            "circular".

    Returns:
        A matrix of shape `(batch * output positions, prod(kernel_size) *
        channels)`; rows follow the output positions in C order, each row
        holds the window's taps in C order with the channel last, matching
        `w.reshape(-1, filters)` for a Keras kernel `w`.
    """
    windows = _windows(np.asarray(x), kernel_size, stride, padding, dilation, padding_mode)
    rank = np.ndim(x) - 2
    return windows.reshape(math.prod(windows.shape[: rank + 1]), -1)


def conv(x, w, b=None, stride=1, padding=0, padding_mode="zeros", dilation=1, groups=1):
    """Convolution (a cross-correlation: no filter flip) as ONE matrix product.

    `im2col(x) @ w.reshape(-1, filters)`: rows are receptive fields, columns
    are the linearised filters. Groups make the filter matrix block-diagonal:
    group `g`'s filters see only group `g`'s input channels. A depthwise
    convolution is `groups = channels` with the Keras depthwise kernel
    `(*k, channels, multiplier)` reshaped to `(*k, 1, channels * multiplier)`.

    Args:
        x: input array `(batch, *spatial, in_channels)`, 1 to 3 spatial axes.
        w: kernel `(*kernel_size, in_channels / groups, filters)`.
        b: optional bias `(filters,)`.
        stride, padding, padding_mode, dilation: as in `im2col`.
        groups: number of channel groups.

    Returns:
        The output array `(batch, *output spatial, filters)`.

    Raises:
        ValueError: if the shapes of `x`, `w`, `b` and `groups` disagree.
    """
    x, w = np.asarray(x), np.asarray(w)
    rank = x.ndim - 2
    if w.ndim != rank + 2 or x.shape[-1] != w.shape[-2] * groups or w.shape[-1] % groups:
        raise InputError(
            f"Kernel of shape {w.shape} does not fit input {x.shape} with groups={groups}: "
            f"expected {rank} kernel axes, then in_channels / groups = "
            f"{x.shape[-1]} / {groups}, then filters divisible by {groups}."
        )
    if b is not None and np.shape(b) != (w.shape[-1],):
        raise InputError(f"Bias must have shape ({w.shape[-1]},); got {np.shape(b)}.")
    windows = _windows(x, w.shape[:rank], stride, padding, dilation, padding_mode)
    rows = windows.reshape(math.prod(windows.shape[: rank + 1]), -1)
    y = rows @ _block_diagonal(w, groups).reshape(-1, w.shape[-1])
    y = y.reshape(*windows.shape[: rank + 1], w.shape[-1])
    return y if b is None else y + b


def pool(x, size, stride=None, padding="valid", kind="max"):
    """Max or mean pooling, as Keras computes it.

    Args:
        x: input array `(batch, *spatial, channels)`, 1 to 3 spatial axes.
        size: window size, an int or one per spatial axis.
        stride: step between windows; defaults to `size`.
        padding: "valid" or "same"; padded cells are ignored, so a mean
            divides by the number of real cells.
        kind: "max" or "mean".

    Returns:
        The pooled array `(batch, *output spatial, channels)`.
    """
    reduce = _reduction(kind)
    if padding not in ("valid", "same"):
        raise InputError(f"padding must be 'valid' or 'same'; got {padding!r}.")
    x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    windows = _windows(x, size, size if stride is None else stride, padding, 1, fill=np.nan)
    rank = x.ndim - 2
    return reduce(windows, axis=tuple(range(rank + 1, 2 * rank + 1)))


def global_pool(x, kind="max", keepdims=False):
    """Global max or mean pooling over all spatial axes of `(batch, *spatial, channels)`."""
    x = np.asarray(x)
    return _reduction(kind)(x, axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def _reduction(kind):
    """The NumPy reduction for `kind`; it skips NaNs, which mark padded cells."""
    if kind not in ("max", "mean"):
        raise InputError(f"kind must be 'max' or 'mean'; got {kind!r}.")
    return {"max": np.nanmax, "mean": np.nanmean}[kind]


def _block_diagonal(w, groups):
    if groups == 1:
        return w
    per_group_in, per_group_out = w.shape[-2], w.shape[-1] // groups
    full = np.zeros((*w.shape[:-2], per_group_in * groups, w.shape[-1]), dtype=w.dtype)
    for g in range(groups):
        rows = slice(g * per_group_in, (g + 1) * per_group_in)
        cols = slice(g * per_group_out, (g + 1) * per_group_out)
        full[..., rows, cols] = w[..., cols]
    return full


def _windows(x, kernel_size, stride, padding, dilation, padding_mode="zeros", fill=None):
    """Returns the view `(batch, *output positions, *kernel_size, channels)` of `x`."""
    rank = x.ndim - 2
    if rank not in (1, 2, 3):
        raise InputError(
            f"Input must be (batch, *spatial, channels) with 1 to 3 spatial axes; "
            f"got shape {x.shape}."
        )
    kernel = _per_axis(kernel_size, rank, "kernel_size")
    strides = _per_axis(stride, rank, "stride")
    dilations = _per_axis(dilation, rank, "dilation")
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations))
    widths = _pad_widths(x.shape[1:-1], effective, strides, padding, rank)
    if padding_mode not in _PADDING_MODES:
        raise InputError(
            f"padding_mode must be one of {sorted(_PADDING_MODES)}; got {padding_mode!r}."
        )
    pad = [(0, 0), *widths, (0, 0)]
    if fill is not None:
        x = np.pad(x, pad, mode="constant", constant_values=fill)
    else:
        x = np.pad(x, pad, mode=_PADDING_MODES[padding_mode])
    if any(n < k for n, k in zip(x.shape[1:-1], effective)):
        raise InputError(
            f"Window of effective size {effective} does not fit the padded input "
            f"{x.shape[1:-1]}."
        )
    spatial = tuple(range(1, rank + 1))
    view = np.lib.stride_tricks.sliding_window_view(x, effective, axis=spatial)
    view = view[
        (slice(None),)
        + tuple(slice(None, None, s) for s in strides)
        + (slice(None),)
        + tuple(slice(None, None, d) for d in dilations)
    ]
    return np.moveaxis(view, rank + 1, -1)  # channels after the taps


def _pad_widths(sizes, effective, strides, padding, rank):
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * rank
        if padding != "same":
            raise InputError(f"padding must be an int, a tuple, 'valid' or 'same'; got {padding!r}.")
        widths = []
        for n, k, s in zip(sizes, effective, strides):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            widths.append((total // 2, total - total // 2))
        return widths
    return [(p, p) for p in _per_axis(padding, rank, "padding", low=0)]


def _per_axis(value, rank, name, low=1):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank
    if len(values) != rank or not all(isinstance(v, (int, np.integer)) and v >= low for v in values):
        raise InputError(
            f"{name} must be an int >= {low} or {rank} of them; got {value!r}."
        )
    return values
