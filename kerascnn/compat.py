"""The one module that touches private Keras and TensorFlow APIs.

kerascnn walks functional graphs without running them (the inspector), counts the
multiply-adds TensorFlow runs inside custom layers, and builds a model's metric and optimizer
variables before a distributed step. Keras offers no public API for these, so each private
call lives here, behind a small function whose test (tests/test_compat.py) runs against the
installed Keras: a Keras release that changes one of them breaks this file, loudly.
"""

import contextlib

import keras
from keras.src.saving import serialization_lib

# The Keras range setup.cfg declares: 3.13 brought AdaptiveMaxPooling (kerascnn.analysis),
# 3.8 RandAugment, MixUp and CutMix (kerascnn.data); 4 may drop the private APIs below.
KERAS_RANGE = ((3, 13), (4, 0))


def functional_graph(model):
    """Returns the functional graph of a functional or Sequential model, or None.

    A Sequential model holds a functional model once its input is known
    (`Sequential._functional`, private); before that it has none.
    """
    if isinstance(model, keras.Sequential):
        return model._functional
    return model if has_graph(model) else None


def has_graph(model):
    """True for functional models (and subclasses of keras.Model built functionally)."""
    return hasattr(model, "_run_through_graph")


def run_through_graph(functional, inputs, operation_fn):
    """Runs a functional graph on `inputs`, each operation computed by `operation_fn(op)(...)`.

    Wraps `Functional._run_through_graph` (private).

    Args:
        functional: a functional model.
        inputs: what stands for its inputs (tensors or `KerasTensor`s).
        operation_fn: called with each operation, returns the callable that computes it.

    Returns:
        The model's outputs as computed.
    """
    return functional._run_through_graph(inputs, operation_fn)


def symbolic_build(model, data_batch):
    """Creates a compiled model's metric and optimizer variables from a batch's spec.

    Wraps `Trainer._symbolic_build` (private): in a distributed step no replica may create
    variables, so they must exist before the first one.
    """
    model._symbolic_build(data_batch=data_batch)


def graph_function(graph, name):
    """Returns the function `name` called inside a `tf.Graph` (`Graph._get_function`, private)."""
    return graph._get_function(name)


def safe_mode_scope(safe_mode):
    """A context in which every Keras deserialization (`from_config`, `load_model`) follows
    `safe_mode`: Keras refuses a Lambda layer unless an enclosing `SafeModeScope` (private)
    says otherwise, without switching safe mode off for the whole process."""
    return contextlib.nullcontext() if safe_mode else serialization_lib.SafeModeScope(False)
