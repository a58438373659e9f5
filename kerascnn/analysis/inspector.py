"""`inspect`: neurons, parameters, multiply-adds, receptive fields and memory of any Keras model."""

import math

import tensorflow as tf

from kerascnn.analysis import costs
from kerascnn.analysis import graph
from kerascnn.analysis import receptive_field
from kerascnn.analysis import report
from kerascnn.errors import InputError

# Values each optimizer keeps per trainable parameter (momentum, moments...).
OPTIMIZER_SLOTS = {
    "sgd": 0,
    "sgd_momentum": 1,
    "rmsprop": 1,
    "adagrad": 1,
    "adam": 2,
    "adamw": 2,
    "nadam": 2,
}


def inspect(model, batch_size=1, input_shape=None, optimizer="adam"):
    """Counts what a network is made of and what one pass costs, layer by layer.

    Works on any built Keras model: functional and Sequential models are
    walked through their graph (branches, merges and nested models
    included); a subclassed model becomes one row. Nothing is run: shapes are
    computed symbolically. The counting conventions are in
    `kerascnn.analysis.costs`, `kerascnn.analysis.receptive_field` and
    `ArchitectureReport.conventions`; multiply-adds are MACs, the unit the
    papers call "FLOPs" (profilers count 2 FLOPs per MAC).

    Memory is estimated from shapes and dtypes, not measured. Measured on CPU
    (peak resident memory of a second forward pass, with TensorFlow's plain
    allocator: `TF_ENABLE_ONEDNN_OPTS=0`, `MALLOC_MMAP_THRESHOLD_=65536`;
    see `tests/analysis/test_memory.py`), the estimates compare as follows:

    * `activation_bytes` (the input plus every layer output) is what an eager
      Keras call (`model(x)`) holds: Keras keeps every intermediate tensor
      until the call returns. ResNet-50, 224x224, batch 8: 1187.8 MB
      estimated, 1183.7 MB measured (the input, 4.8 MB, existed before).
      Reshapes and inference-time dropout share their input's buffer, so the
      estimate errs high for them.
    * `forward_peak_bytes` frees each tensor after its last consumer, as a
      compiled graph (`tf.function`, `model.predict`) does. VGG16, batch 4:
      102.8 MB of activations estimated, 103.3 MB measured; ResNet-50, batch
      8: 77.1 MB estimated, 57.8 MB measured, because TensorFlow's graph
      optimiser fuses convolution, batch normalisation and activation into
      one kernel and overwrites inputs in place, so fewer tensors live.
    * Framework workspace is left out: with oneDNN on (TensorFlow's default
      on x86), its pooling allocator keeps freed memory and grows in chunks,
      so the process's memory is the pool's high-water mark, not the live
      tensors.
    * `training_bytes` adds one gradient and the optimizer's slots per
      trainable parameter and keeps all activations for backpropagation; the
      transient gradients of activations and the workspace are left out.

    Args:
        model: a built Keras model (ours or not).
        batch_size: examples per batch for the memory figures (counts are per
            example).
        input_shape: one example's shape without the batch axis (a list for
            several inputs); needed when the model accepts any size.
        optimizer: optimizer assumed by `training_bytes`: one of
            `OPTIMIZER_SLOTS` ("adam" keeps 2 slots per parameter,
            "sgd_momentum" 1, "sgd" 0).

    Returns:
        An `ArchitectureReport` with `.layers` rows and totals, and
        `.to_text()`, `.to_markdown()`, `.to_json()` and `.plot(path)`.

    Raises:
        ValueError: for a bad batch size, optimizer or input shape, or a model
            that is not built.

    Example:
    >>> report = inspect(keras.applications.VGG16(weights=None))
    >>> report.macs, report.params
    (15470264320, 138357544)
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if optimizer not in OPTIMIZER_SLOTS:
        raise InputError(
            f"optimizer must be one of {sorted(OPTIMIZER_SLOTS)}; got {optimizer!r}."
        )
    inputs, calls = graph.trace_calls(model, input_shape)
    input_field, call_fields = receptive_field.receptive_fields(inputs, calls)
    call_costs = [costs.layer_cost(call) for call in calls]
    rows = [
        report.LayerRow(x.name, "InputLayer", tuple(x.shape[1:]), 0, 0, 0, 0, input_field)
        for x in inputs
    ] + [
        _row(call, cost, field) for call, cost, field in zip(calls, call_costs, call_fields)
    ]
    weights = _unique(model.weights)
    trainable = _unique(model.trainable_weights)
    param_bytes = sum(_bytes(w.shape, w.dtype) for w in weights)
    trainable_bytes = sum(_bytes(w.shape, w.dtype) for w in trainable)
    activation_bytes = batch_size * sum(
        _bytes(x.shape[1:], x.dtype) for x in _activations(inputs, calls)
    )
    return report.ArchitectureReport(
        model_name=model.name,
        input_shapes=tuple(tuple(x.shape[1:]) for x in inputs),
        batch_size=batch_size,
        optimizer=optimizer,
        layers=tuple(rows),
        params=sum(math.prod(w.shape) for w in weights),
        trainable_params=sum(math.prod(w.shape) for w in trainable),
        neurons=sum(c.neurons for c in call_costs),
        macs=sum(c.macs for c in call_costs),
        param_bytes=param_bytes,
        activation_bytes=activation_bytes,
        forward_bytes=param_bytes + activation_bytes,
        forward_peak_bytes=param_bytes + batch_size * _peak_live_bytes(inputs, calls),
        training_bytes=param_bytes
        + (1 + OPTIMIZER_SLOTS[optimizer]) * trainable_bytes
        + activation_bytes,
        not_counted=tuple(call.name for call, cost in zip(calls, call_costs) if not cost.counted),
    )


def _row(call, cost, field):
    layer = call.operation
    shapes = tuple(tuple(x.shape[1:]) for x in call.outputs)
    weights = getattr(layer, "weights", []) if call.first_call else []
    trainable = getattr(layer, "trainable_weights", []) if call.first_call else []
    return report.LayerRow(
        name=call.name,
        kind=type(layer).__name__,
        output_shape=shapes[0] if len(shapes) == 1 else shapes,
        neurons=cost.neurons,
        params=sum(math.prod(w.shape) for w in _unique(weights)),
        trainable_params=sum(math.prod(w.shape) for w in _unique(trainable)),
        macs=cost.macs,
        receptive_field=field,
    )


def _unique(variables):
    return list({id(v): v for v in variables}.values())


def _bytes(shape, dtype):
    return math.prod(shape) * tf.as_dtype(dtype).size


def _activations(inputs, calls):
    return list(inputs) + [x for call in calls for x in call.outputs]


def _peak_live_bytes(inputs, calls):
    """Most bytes of one example's tensors alive at once, each freed after its last use."""
    born = {id(x): -1 for x in inputs}
    last_use = {}
    for step, call in enumerate(calls):
        born.update((id(x), step) for x in call.outputs)
        last_use.update((id(x), step) for x in call.inputs)
    size = {id(x): _bytes(x.shape[1:], x.dtype) for x in _activations(inputs, calls)}
    # Tensors nobody consumes are the model's outputs: they live to the end.
    end = {key: last_use.get(key, len(calls)) for key in born}
    return max(
        sum(size[key] for key in born if born[key] <= step <= end[key])
        for step in range(-1, len(calls))
    )
