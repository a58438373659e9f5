"""Turns a classifier's dense head into convolutions, so it slides over larger images."""

import math

import keras

from kerascnn.analysis import graph
from kerascnn.analysis import layer_types
from kerascnn.errors import InputError

_CONVOLUTION = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_POOLING = {
    "max": {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D},
    "average": {
        1: keras.layers.AveragePooling1D,
        2: keras.layers.AveragePooling2D,
        3: keras.layers.AveragePooling3D,
    },
}
_ELEMENTWISE_MODULES = ("keras.src.layers.activations", "keras.src.layers.regularization")
_LAST_AXIS_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)


def to_fully_convolutional(model):
    """Replaces a classifier's dense head by the equivalent convolutions.

    The first dense layer after `Flatten` becomes a convolution whose kernel
    covers the whole feature map it was trained on (the dense weights,
    reshaped); later dense layers become 1x1 convolutions; the head's global
    pooling becomes a pooling window of the trained feature-map size, stride
    1. On the original input size the new model gives the same numbers, as a
    1x1 map (`(batch, 1, 1, classes)` in 2D); on a larger input it gives a map
    of outputs, one per window of the original size, windows `jump` pixels
    apart (the network's total stride), as in OverFeat (Sermanet et al.,
    2014) and FCN (Long et al., 2015).

    Global poolings whose result is merged back into a feature map
    (squeeze-and-excitation gates) stay global: on a larger input they see
    the whole image, so there the outputs are close to, not equal to, the
    original network's on each window.

    The new model accepts any spatial size and shares every other layer, and
    thus its weights, with `model`; only the converted head is new.

    Args:
        model: a built functional or Sequential Keras model with 1D, 2D or 3D
            channels-last inputs of fixed size (the size the head was trained
            on).

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: for a model without graph, inputs without spatial axes or
            of unknown size, or a layer after the flattening that is not
            dense, dropout, an activation, a 1x1 convolution, or a
            normalisation or merge over the last axis.
    """
    if not graph.is_graph_model(model) or not model.built:
        raise InputError(
            f"to_fully_convolutional needs a built functional or Sequential model; "
            f"got {type(model).__name__} {model.name!r}."
        )
    inputs = []
    for x in model.inputs:
        if not 3 <= len(x.shape) <= 5 or None in x.shape[1:]:
            raise InputError(
                f"Input {x.name!r} has shape {x.shape}; to_fully_convolutional needs "
                "(batch, *spatial, channels) inputs with 1 to 3 spatial axes of the "
                "fixed size the dense head was trained on."
            )
        spatial = (None,) * (len(x.shape) - 2)
        inputs.append(keras.Input(shape=(*spatial, x.shape[-1]), dtype=x.dtype))
    converter = _HeadConverter(rank=len(inputs[0].shape) - 2, gates=_gate_poolings(model))
    outputs = graph.walk(model, inputs if len(inputs) > 1 else inputs[0], converter)
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0], outputs, name=f"{model.name}_fully_convolutional"
    )


def _gate_poolings(model):
    """Ids of the global poolings whose result is merged back into a feature map."""
    gates = set()
    origins = {}  # tensor id -> ids of the global poolings it was computed from
    for call in graph.trace_calls(model)[1]:
        sources = [origins.get(id(x), frozenset()) for x in call.inputs]
        merged = frozenset().union(*sources)
        if merged and any(not s and len(x.shape) > 2 for s, x in zip(sources, call.inputs)):
            gates |= merged
        if isinstance(call.operation, layer_types.GLOBAL_POOLING):
            merged = frozenset({id(call.operation)})
        origins.update((id(x), merged - gates) for x in call.outputs)
    return gates


class _HeadConverter:
    """Rebuilds a model's graph, converting the layers after the spatial collapse.

    `collapsed` holds the tensors that were features (no spatial axes) in the
    original model and are maps now; `kernel_sizes` the map sizes a
    following dense layer must cover (set by `Flatten`).
    """

    def __init__(self, rank, gates):
        self.rank = rank
        self.gates = gates
        self.collapsed = set()
        self.kernel_sizes = {}

    def __call__(self, operation, *args, **kwargs):
        if graph.is_graph_model(operation):
            return graph.walk(operation, args[0], self)
        tensors = graph.keras_tensors((args, kwargs))
        collapsed = any(id(x) in self.collapsed for x in tensors)
        if _is_flatten(operation) and (collapsed or len(args[0].shape) > 2):
            return self._flatten(operation, args[0], collapsed)
        if isinstance(operation, layer_types.GLOBAL_POOLING) and id(operation) not in self.gates:
            return self._mark(self._pool_window(operation, args[0]))
        if not collapsed:
            return operation(*args, **kwargs)
        if isinstance(operation, keras.layers.Dense):
            return self._mark(self._dense_as_conv(operation, args[0]))
        kernel_size = self.kernel_sizes.get(id(tensors[0]))
        if type(operation).__module__.startswith(_ELEMENTWISE_MODULES):
            outputs = self._mark(operation(*args, **kwargs))
            if kernel_size is not None:
                self.kernel_sizes[id(outputs)] = kernel_size
            return outputs
        if kernel_size is None and _acts_on_last_axis(operation):
            return self._mark(operation(*args, **kwargs))
        raise InputError(
            f"to_fully_convolutional cannot convert layer {operation.name!r} "
            f"({type(operation).__name__}) acting on flattened features: after the "
            "flattening only Dense, dropout and activations can follow, and, once a "
            "Dense has restored the channel axis, 1x1 convolutions and normalisations "
            "or merges over the last axis."
        )

    def _flatten(self, operation, x, collapsed):
        sizes = tuple(operation.input.shape[1:-1])
        if not collapsed and any(size != 1 for size in sizes):
            self.kernel_sizes[id(x)] = sizes
        self.collapsed.add(id(x))
        return x

    def _pool_window(self, operation, x):
        kind = "max" if "Max" in type(operation).__name__ else "average"
        sizes = tuple(operation.input.shape[1:-1])
        pooling = _POOLING[kind][self.rank](
            pool_size=sizes, strides=1, name=f"{operation.name}_window"
        )
        return pooling(x)

    def _dense_as_conv(self, dense, x):
        kernel_size = self.kernel_sizes.get(id(x), (1,) * self.rank)
        weights = dense.get_weights()
        channels = weights[0].shape[0] // math.prod(kernel_size)
        weights[0] = weights[0].reshape(*kernel_size, channels, dense.units)
        convolution = _CONVOLUTION[self.rank](
            filters=dense.units,
            kernel_size=kernel_size,
            activation=dense.activation,
            use_bias=dense.use_bias,
            dtype=dense.dtype_policy,
            name=f"{dense.name}_conv",
        )
        y = convolution(x)
        convolution.set_weights(weights)
        return y

    def _mark(self, outputs):
        self.collapsed.update(id(x) for x in keras.tree.flatten(outputs))
        return outputs


def _is_flatten(operation):
    """Flatten, or a Reshape that keeps only the channel axis."""
    if isinstance(operation, keras.layers.Flatten):
        return True
    return isinstance(operation, keras.layers.Reshape) and all(
        d == 1 for d in operation.target_shape[:-1]
    )


def _acts_on_last_axis(operation):
    """True for 1x1 convolutions and for normalisations and merges over the last axis."""
    if isinstance(operation, layer_types.CONVOLUTIONS):
        return all(k == 1 for k in operation.kernel_size) and all(s == 1 for s in operation.strides)
    return isinstance(operation, _LAST_AXIS_LAYERS) and getattr(operation, "axis", -1) in (
        -1,
        [-1],
        (-1,),
    )
