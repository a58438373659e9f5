"""Receptive fields: how much of the input each unit sees, per spatial axis.

The standard recurrence (Araujo et al., "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019): a window layer with kernel
`k`, dilation `d` and stride `s` maps a field of size `r` and jump `j`
(distance in input pixels between neighbouring units) to

    r' = r + (d * (k - 1) + 1 - 1) * j        j' = j * s

Conventions:

* Sizes are theoretical and may exceed the input (ResNet-50 reaches 483
  pixels on a 224 input); padding never changes them.
* Transposed convolutions and up-sampling divide the jump (it may become a
  fraction).
* Merges (Add, Concatenate, Multiply...) take the largest size and jump over
  their inputs. Inputs that already see the whole input, such as a
  squeeze-and-excitation gate of shape 1x1xC, are ignored, as in the usual
  calculations; strictly, such a gate lets every later unit see everything.
* After global pooling, flattening or a dense layer on flattened features a
  unit sees the whole input: `ReceptiveField(size=<input size>, jump=None)`.
* Layers the inspector does not know are assumed to act position by position
  when they keep (or pad) the spatial size; if they shrink it the field is
  unknown (`None`) from there on.
"""

import collections
import fractions
import math

from kerascnn.analysis import graph
from kerascnn.analysis import layer_types

ReceptiveField = collections.namedtuple("ReceptiveField", ["size", "jump"])
ReceptiveField.__doc__ = """Receptive field along one spatial axis of the input.

Attributes:
    size: input pixels one unit sees along the axis.
    jump: input pixels between neighbouring units; None when the unit sees
        the whole input (then `size` is the input size).
"""

_GLOBAL = "global"  # internal state: the unit sees the whole input


def receptive_field(model, input_shape=None):
    """Receptive field of a network: that of its deepest spatial feature map.

    This is the largest field over all layers before the spatial axes are
    pooled away (for a fully convolutional network, the output's field).

    Args:
        model: a built Keras model.
        input_shape: one example's shape without the batch axis; needed only
            when the model's inputs have unknown sizes.

    Returns:
        A tuple with one `ReceptiveField(size, jump)` per spatial axis of the
        input (empty for inputs without spatial axes).

    Example:
    >>> receptive_field(keras.applications.VGG16(weights=None))
    (ReceptiveField(size=212, jump=32), ReceptiveField(size=212, jump=32))
    """
    input_field, call_fields = receptive_fields(*graph.trace_calls(model, input_shape))
    finite = [f for f in call_fields if f and f[0].jump is not None]
    if not finite:
        return input_field
    return max(reversed(finite), key=lambda f: math.prod(axis.size for axis in f))


def receptive_fields(inputs, calls):
    """Receptive field of the first input and of every call's first output.

    Args:
        inputs: the model's input `KerasTensor`s, as `graph.trace_calls` gives.
        calls: the `LayerCall`s, in execution order.

    Returns:
        A tuple `(input_field, call_fields)`: each field is a tuple of
        `ReceptiveField` per spatial axis of the first input, or None when
        unknown.
    """
    state = {id(x): tuple((1, fractions.Fraction(1)) for _ in x.shape[1:-1]) for x in inputs}
    extents = tuple(inputs[0].shape[1:-1])
    call_fields = []
    for call in calls:
        field = _propagate(call, _merge([state.get(id(x)) for x in call.inputs]))
        state.update((id(x), field) for x in call.outputs)
        call_fields.append(_public(field, extents))
    return _public(state[id(inputs[0])], extents), call_fields


def _merge(fields):
    if any(f is None for f in fields):
        return None
    finite = [f for f in fields if f != _GLOBAL]
    if not finite:
        return _GLOBAL
    return tuple(
        (max(axis[0] for axis in axes), max(axis[1] for axis in axes))
        for axes in zip(*finite)
    )


def _propagate(call, field):
    if field is None or field == _GLOBAL or not field:
        return field
    layer = layer_types.unwrap(call.operation)
    in_shape = tuple(call.inputs[0].shape[1:-1])
    out_shape = tuple(call.outputs[0].shape[1:-1]) if call.outputs else ()
    if isinstance(layer, layer_types.CONVOLUTIONS + layer_types.WINDOW_POOLING):
        return _windowed(field, *layer_types.window(layer))
    if isinstance(layer, layer_types.TRANSPOSED_CONVOLUTIONS):
        kernel, strides, dilation = layer_types.window(layer)
        return tuple(
            (r + (math.ceil((d * (k - 1) + 1) / s) - 1) * j, j / s)
            for (r, j), k, s, d in zip(field, kernel, strides, dilation)
        )
    if isinstance(layer, layer_types.UPSAMPLING):
        return tuple((r, j / s) for (r, j), s in zip(field, _as_tuple(layer.size, len(field))))
    if isinstance(layer, layer_types.GLOBAL_POOLING):
        return _GLOBAL
    if isinstance(layer, layer_types.ADAPTIVE_POOLING):
        if all(o == 1 for o in out_shape):
            return _GLOBAL
        if all(i % o == 0 for i, o in zip(in_shape, out_shape)):
            strides = tuple(i // o for i, o in zip(in_shape, out_shape))
            return _windowed(field, strides, strides, (1,) * len(strides))
        return None
    if isinstance(layer, layer_types.PADDING_OR_CROPPING + layer_types.DENSE):
        return field
    if len(out_shape) < len(in_shape):
        return _GLOBAL  # flattened or pooled away
    if len(out_shape) == len(in_shape) and all(o >= i for o, i in zip(out_shape, in_shape)):
        return field  # position by position, perhaps padded
    return None


def _windowed(field, kernel, strides, dilation):
    if len(kernel) != len(field):
        return None
    return tuple(
        (r + d * (k - 1) * j, j * s)
        for (r, j), k, s, d in zip(field, kernel, strides, dilation)
    )


def _as_tuple(value, rank):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def _public(field, extents):
    if field is None:
        return None
    if field == _GLOBAL:
        return tuple(ReceptiveField(size, None) for size in extents)
    return tuple(ReceptiveField(int(r), int(j) if j.denominator == 1 else float(j)) for r, j in field)
