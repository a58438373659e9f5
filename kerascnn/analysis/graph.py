"""Walks a Keras model symbolically: one record per layer call, shapes included, nothing run."""

import dataclasses
import functools

import keras

from kerascnn import compat
from kerascnn.errors import InputError


@dataclasses.dataclass(frozen=True)
class LayerCall:
    """One call of a layer (or Keras operation) inside a model.

    Attributes:
        operation: the layer or operation that was called.
        name: its name, prefixed by the nested models it lives in
            (`"backbone/conv1"`); a shared layer's later calls end in `#2`, `#3`...
        args: the positional arguments, tensors replaced by `keras.KerasTensor`s.
        kwargs: the keyword arguments, likewise.
        inputs: the input tensors (batch axis first), flattened.
        outputs: the output tensors (batch axis first), flattened.
        first_call: False when a shared layer is called again (its parameters
            are then already counted).
    """

    operation: object
    name: str
    args: tuple
    kwargs: dict
    inputs: tuple
    outputs: tuple
    first_call: bool


def trace_calls(model, input_shape=None):
    """Lists every layer call of `model` in execution order, nested models expanded.

    Functional and Sequential models are walked through their graph, nested
    models included; a subclassed model is one opaque call.

    Args:
        model: a built Keras model.
        input_shape: shape of one example without the batch axis (a list of
            shapes for several inputs); needed when the model's inputs have
            unknown sizes (`None`).

    Returns:
        A tuple `(inputs, calls)`: the input `KerasTensor`s (batch axis `None`,
        named after their input layers) and the list of `LayerCall`s.

    Raises:
        ValueError: if the model is not built, `input_shape` is missing,
            malformed or different from the size the model was built for, or
            a layer's output size cannot be known.
    """
    inputs = _input_specs(model, input_shape)
    tracer = _Tracer()
    x = inputs if len(inputs) > 1 else inputs[0]
    if is_graph_model(model):
        walk(model, x, functools.partial(tracer, ""))
    else:
        tracer("", model, x)
    return inputs, tracer.calls


def is_graph_model(operation):
    """True for functional and Sequential models, whose layer graph can be walked."""
    return isinstance(operation, keras.Sequential) or compat.has_graph(operation)


def walk(model, inputs, call):
    """Runs a graph model on `inputs`, computing each operation as `call(operation, *args, **kwargs)`.

    Args:
        model: a functional or Sequential model.
        inputs: what stands for its inputs (tensors or `KerasTensor`s).
        call: computes one operation's outputs from its (replaced) arguments.

    Returns:
        The model's outputs as `call` computed them.
    """
    functional = compat.functional_graph(model)
    if functional is None:  # a Sequential model without a graph: a chain
        for layer in model.layers:
            inputs = call(layer, inputs)
        return inputs
    return compat.run_through_graph(functional, inputs, lambda op: functools.partial(call, op))


def keras_tensors(structure):
    """The `KerasTensor`s in a nested structure, flattened."""
    return [x for x in keras.tree.flatten(structure) if isinstance(x, keras.KerasTensor)]


class _Tracer:
    """Collects `LayerCall`s while walking the graph with `compute_output_spec`."""

    def __init__(self):
        self.calls = []
        self._call_counts = {}

    def __call__(self, prefix, operation, *args, **kwargs):
        if is_graph_model(operation):
            return walk(operation, args[0], functools.partial(self, prefix + operation.name + "/"))
        outputs = operation.compute_output_spec(*args, **kwargs)
        for x in keras_tensors(outputs):
            if None in x.shape[1:]:
                raise InputError(
                    f"Layer {prefix + operation.name!r} ({type(operation).__name__}) gives "
                    f"an output of unknown size {x.shape}; the inspector needs every "
                    "size but the batch. Give the layer a fully defined output shape."
                )
        count = self._call_counts.get(id(operation), 0) + 1
        self._call_counts[id(operation)] = count
        self.calls.append(
            LayerCall(
                operation=operation,
                name=prefix + operation.name + ("" if count == 1 else f"#{count}"),
                args=args,
                kwargs=kwargs,
                inputs=tuple(keras_tensors((args, kwargs))),
                outputs=tuple(keras_tensors(outputs)),
                first_call=count == 1,
            )
        )
        return outputs


def _input_specs(model, input_shape):
    if not model.built:
        raise InputError(
            f"Model {model.name!r} is not built, so its layers have no weights yet. "
            "Call it on data or use `model.build((None, *input_shape))` first."
        )
    references = _reference_inputs(model)
    if input_shape is None:
        if references is None:
            raise InputError(
                f"Model {model.name!r} is a subclassed model without declared inputs; "
                "pass `input_shape` (one example, without the batch axis)."
            )
        shapes = [tuple(x.shape[1:]) for x in references]
        if any(None in shape for shape in shapes):
            raise InputError(
                f"Model {model.name!r} accepts inputs of unknown size {shapes}; "
                "pass `input_shape`, e.g. input_shape=(224, 224, 3)."
            )
    else:
        shapes = _as_shapes(input_shape, references)
    references = references or [None] * len(shapes)
    return [
        keras.KerasTensor(
            shape=(None, *shape),
            dtype=getattr(reference, "dtype", "float32"),
            name=_input_name(reference, index, len(shapes)),
        )
        for index, (shape, reference) in enumerate(zip(shapes, references))
    ]


def _input_name(reference, index, count):
    history = getattr(reference, "_keras_history", None)
    if history is not None:
        return history.operation.name
    return "input" if count == 1 else f"input_{index + 1}"


def _reference_inputs(model):
    try:
        return list(model.inputs)
    except (AttributeError, ValueError):
        return None


def _as_shapes(input_shape, references):
    nested = len(input_shape) > 0 and isinstance(input_shape[0], (tuple, list))
    shapes = [tuple(s) for s in input_shape] if nested else [tuple(input_shape)]
    for shape in shapes:
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise InputError(
                f"input_shape must hold positive integers (one example, no batch "
                f"axis), e.g. (224, 224, 3); got {input_shape!r}."
            )
    if references is None:
        return shapes
    expected = [tuple(x.shape[1:]) for x in references]
    compatible = len(shapes) == len(expected) and all(
        len(s) == len(e) and all(b is None or a == b for a, b in zip(s, e))
        for s, e in zip(shapes, expected)
    )
    if not compatible:
        raise InputError(
            f"input_shape {input_shape!r} does not fit the model's inputs "
            f"{expected if len(expected) > 1 else expected[0]} (None = any size). "
            "Rebuild the model for that size instead."
        )
    return shapes
