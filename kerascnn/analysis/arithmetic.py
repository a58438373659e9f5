"""Convolution arithmetic: the size of an activation map, and which sizes are invalid."""

import math
import numbers

from kerascnn.errors import InputError


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output size of a convolution or pooling window along one axis.

    `(size - k + 2 * padding) / stride + 1`, with the effective kernel
    `k = dilation * (kernel_size - 1) + 1`. The combination is invalid when
    the division leaves a remainder (the last window would hang off the edge;
    frameworks silently drop those rows) or when the window does not fit.

    Args:
        size: input size along the axis.
        kernel_size: window size.
        stride: step between windows.
        padding: zeros added on each side, or "same" (output
            `ceil(size / stride)`, as Keras pads) or "valid" (no padding).
        dilation: spacing between kernel taps.

    Returns:
        The output size, an int.

    Raises:
        ValueError: for an invalid combination, naming the values and the
            nearest valid padding or input sizes; or for non-positive
            arguments.

    Example:
    >>> conv_output_size(227, 11, stride=4)
    55
    >>> conv_output_size(224, 11, stride=4)
    Traceback (most recent call last):
    ValueError: ... (224 - 11 + 2*0) = 213 is not divisible by stride 4 ...
    """
    for name, value, low in (
        ("size", size, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        _check_integer(name, value, low)
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise InputError(
                f"padding must be an int >= 0, 'same' or 'valid'; got {padding!r}."
            )
        if padding.lower() == "same":
            return math.ceil(size / stride)
        padding = 0
    _check_integer("padding", padding, 0)
    effective = dilation * (kernel_size - 1) + 1
    span = size - effective + 2 * padding
    described = (
        f"(size - effective kernel + 2*padding) = ({size} - {effective} + 2*{padding}) = {span}"
    )
    if span < 0:
        raise InputError(
            f"{described} < 0: the kernel (effective size {effective} for kernel_size="
            f"{kernel_size}, dilation={dilation}) does not fit in the padded input. "
            f"Use padding >= {math.ceil((effective - size) / 2)} or size >= "
            f"{effective - 2 * padding}."
        )
    remainder = span % stride
    if remainder:
        raise InputError(
            f"{described} is not divisible by stride {stride}: the last window would "
            f"hang off the edge. {_fixes(size, effective, stride, padding, remainder)} "
            f"(Frameworks floor the division: they would give {span // stride + 1} and "
            f"ignore the last {remainder} input row(s).)"
        )
    return span // stride + 1


def _fixes(size, effective, stride, padding, remainder):
    """Suggests the nearest valid paddings and input sizes."""
    sizes = [s for s in (size - remainder, size + stride - remainder) if s >= effective - 2 * padding]
    text = f"Valid sizes nearby: {' or '.join(map(str, sizes))}."
    paddings = [
        p
        for p in range(max(0, padding - stride), padding + stride + 1)
        if (size - effective + 2 * p) % stride == 0 and size - effective + 2 * p >= 0
    ]
    if paddings:
        best = min(paddings, key=lambda p: (abs(p - padding), p))
        return f"Use padding={best}, or change the size. {text}"
    return f"No symmetric padding fixes this (2*padding is even, the remainder is not). {text}"


def _check_integer(name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise InputError(f"{name} must be an integer >= {low}; got {value!r}.")
