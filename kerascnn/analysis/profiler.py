"""TensorFlow's own count of multiply-adds, to cross-check the inspector."""

import tensorflow as tf

from kerascnn.analysis import graph

# Ops whose profiler statistics are 2 FLOPs per multiply-add.
_MULTIPLY_ADD_OPS = (
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
)


def tensorflow_profiler_macs(model, input_shape=None):
    """Multiply-adds of one example as TensorFlow's profiler counts them.

    Traces `model` into a graph for a batch of one and asks
    `tf.compat.v1.profiler` for the FLOPs of its convolutions and matrix
    products, halved (the profiler counts a multiply and an add). Elementwise
    ops (bias, activations, normalisation), which the profiler also counts,
    are left out, as the inspector leaves them out. So are transposed
    convolutions: the profiler charges them per output element, the
    inspector per input element (the products actually made). Ops inside
    nested functions, such as the XLA kernel Keras uses for grouped
    convolutions on CPU, are not visited by the profiler.

    Args:
        model: a built Keras model.
        input_shape: one example's shape without the batch axis; needed only
            when the model accepts any size.

    Returns:
        The multiply-adds, an int.
    """
    specs = [
        tf.TensorSpec((1, *x.shape[1:]), x.dtype)
        for x in graph.trace_calls(model, input_shape)[0]
    ]
    function = tf.function(lambda *xs: model(xs if len(xs) > 1 else xs[0], training=False))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    result = tf.compat.v1.profiler.profile(
        graph=function.get_concrete_function(*specs).graph, cmd="op", options=options
    )
    flops = 0
    nodes = [result]
    while nodes:  # the "op" view nests one child per op type
        node = nodes.pop()
        nodes.extend(node.children)
        if node.name in _MULTIPLY_ADD_OPS:
            flops += node.float_ops
    return flops // 2
