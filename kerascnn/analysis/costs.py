"""Multiply-adds and neurons of one layer call, per example.

Conventions (the papers' and torchvision's):

* A multiply-add (MAC) is one multiplication accumulated into a sum. Papers
  that report "FLOPs" for CNNs (VGG, ResNet, MobileNet) count MACs; profilers
  such as TensorFlow's count FLOPs = 2 x MACs for convolutions and matrix
  products. The inspector reports MACs.
* Convolution: output positions x weights in the kernel, i.e. for every
  output element `prod(kernel_size) * in_channels / groups` MACs; dilation
  changes nothing. Depthwise: `prod(kernel_size)` per output element.
  Separable: depthwise + pointwise. Transposed: input positions x kernel
  weights. Dense: positions x inputs x units (a dense layer on a feature map
  acts at every position).
* Zero by convention: bias additions, normalisation, activations, dropout,
  reshaping, padding, merges (add, concatenate, multiply) and pooling (its
  comparisons and averages are not multiply-adds).
* Neurons: the output elements of layers that compute new units —
  convolutions, dense and pooling layers. Everything else, and the input,
  counts 0.
* Layers the inspector does not know (custom layers, Keras operations):
  `layer.compute_macs(input_shape)` if the layer defines it (`input_shape`
  per example without the batch axis, a list for several inputs; returns an
  int), otherwise the convolutions and matrix products TensorFlow runs for
  the layer are counted, which covers layers built from Keras sub-layers or
  ops. Their neurons are the outputs of those products. A layer that cannot
  be measured (it fails to trace, or runs a loop) counts 0 and is reported
  as not counted.
"""

import dataclasses
import math
import string

import keras
import tensorflow as tf

from kerascnn import compat
from kerascnn.analysis import layer_types

# TensorFlow ops that multiply-accumulate (what `Conv1D`, `Dense`... become).
_CONV_OPS = ("Conv2D", "Conv3D")
_TRANSPOSED_CONV_OPS = ("Conv2DBackpropInput", "Conv3DBackpropInputV2")
_MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_MAC_OPS = (
    _CONV_OPS + _TRANSPOSED_CONV_OPS + _MATMUL_OPS + ("DepthwiseConv2dNative", "Einsum")
)
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_LOOP_OPS = ("While", "StatelessWhile")


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """Multiply-adds and neurons of one layer call for one example.

    Attributes:
        macs: multiply-adds.
        neurons: output units computed (see the module docstring).
        counted: False when the multiply-adds could not be measured.
    """

    macs: int
    neurons: int
    counted: bool = True


def layer_cost(call):
    """Returns the `LayerCost` of a `LayerCall`."""
    operation = call.operation
    layer = layer_types.unwrap(operation)
    outputs = _elements(call.outputs)
    if hasattr(operation, "compute_macs"):
        shapes = [tuple(x.shape[1:]) for x in call.inputs]
        macs = int(operation.compute_macs(shapes[0] if len(shapes) == 1 else shapes))
        neurons = outputs if layer_types.computes_units(layer) else _traced(call).neurons
        return LayerCost(macs, neurons)
    if isinstance(layer, keras.layers.EinsumDense):
        shape = (1, *call.inputs[0].shape[1:])
        return LayerCost(einsum_macs(layer.equation, shape, layer.kernel.shape), outputs)
    if isinstance(layer, layer_types.CONVOLUTIONS + layer_types.DENSE):
        return LayerCost(_positions(call.outputs[0]) * _kernel_weights(layer), outputs)
    if isinstance(layer, layer_types.TRANSPOSED_CONVOLUTIONS):
        return LayerCost(_positions(call.inputs[0]) * _kernel_weights(layer), outputs)
    if layer_types.is_zero_mac_keras_layer(layer):
        return LayerCost(0, outputs if layer_types.computes_units(layer) else 0)
    return _traced(call)


def einsum_macs(equation, *shapes):
    """Multiply-adds of an `einsum` of two operands: the product of every index's size.

    Args:
        equation: the einsum equation, e.g. `"abc,cd->abd"` (`...` allowed).
        *shapes: the operands' shapes.

    Returns:
        The number of multiply-adds; 0 for a single operand (no products).
    """
    operands = equation.replace(" ", "").split("->")[0].split(",")
    if len(operands) < 2:
        return 0
    # The ellipsis stands for leading axes, aligned from the right across operands.
    spare = "".join(c for c in string.ascii_letters if c not in equation)[:16]
    sizes = {}
    for subscripts, shape in zip(operands, shapes):
        if "..." in subscripts:
            hidden = len(shape) - len(subscripts) + 3
            subscripts = subscripts.replace("...", spare[len(spare) - hidden :])
        for index, size in zip(subscripts, shape):
            sizes[index] = max(sizes.get(index, 1), int(size))
    return math.prod(sizes.values())


def _kernel_weights(layer):
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        return math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
    return math.prod(layer.kernel.shape)


def _positions(tensor):
    """Positions a window or dense layer visits: all axes but batch and channels."""
    return math.prod(tensor.shape[1:-1])


def _elements(tensors):
    return sum(math.prod(x.shape[1:]) for x in tensors)


def _traced(call):
    """Counts the multiply-adds in the TensorFlow graph of one call, batch size 1."""
    flat = keras.tree.flatten((call.args, call.kwargs))
    specs = [
        tf.TensorSpec((1, *x.shape[1:]), x.dtype)
        for x in flat
        if isinstance(x, keras.KerasTensor)
    ]

    def run(*tensors):
        feed = iter(tensors)
        args, kwargs = keras.tree.map_structure(
            lambda x: next(feed) if isinstance(x, keras.KerasTensor) else x,
            (call.args, call.kwargs),
        )
        return call.operation(*args, **kwargs)

    try:
        graph = tf.function(run).get_concrete_function(*specs).graph
        return _graph_cost(graph)
    except Exception:  # any failure to trace means: not measurable
        return LayerCost(0, 0, counted=False)


def _graph_cost(graph):
    macs = neurons = 0
    counted = True
    for op in graph.get_operations():
        if op.type in _LOOP_OPS:
            counted = False  # the number of iterations is unknown
        elif op.type in _CALL_OPS:
            inner = _graph_cost(compat.graph_function(graph, op.get_attr("f").name).graph)
            macs, neurons = macs + inner.macs, neurons + inner.neurons
            counted = counted and inner.counted
        elif op.type in _MAC_OPS:
            macs += _op_macs(op)
            neurons += op.outputs[0].shape.num_elements()
    return LayerCost(macs, neurons, counted)


def _op_macs(op):
    shapes = [tuple(x.shape) for x in op.inputs]
    if op.type == "Einsum":
        return einsum_macs(op.get_attr("equation").decode(), *shapes)
    if op.type in _MATMUL_OPS:
        adjoint = any(op.get_attr(a) for a in ("transpose_a", "adj_x") if a in op.node_def.attr)
        reduced = shapes[0][-2] if adjoint else shapes[0][-1]
        return op.outputs[0].shape.num_elements() * reduced
    if op.type == "DepthwiseConv2dNative":  # filter (kh, kw, channels, multiplier)
        return op.outputs[0].shape.num_elements() * math.prod(shapes[1][:-2])
    if op.type in _TRANSPOSED_CONV_OPS:  # each input element meets a (k..., out) block
        return math.prod(shapes[2]) * math.prod(shapes[1][:-1])
    return op.outputs[0].shape.num_elements() * math.prod(shapes[1][:-1])
