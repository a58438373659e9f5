"""The model registry: every architecture by name, timm-style."""

import dataclasses
import difflib
import fnmatch
import inspect
import json
import os

from kerascnn.errors import InputError
from kerascnn.models.base import KERAS_ARGUMENTS, smallest_input_side

_REGISTRY = {}
# What `kerascnn list` prints, written from the registry (`write_catalog`) so that listing
# imports no Keras; tests/test_cli.py keeps it equal to `catalog()`.
CATALOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one architecture.

    Attributes:
        name: registry name, also the builder's name in `kerascnn.models`.
        family: the module that builds it (e.g. "resnet").
        builder: the public builder function (keras.applications' arguments, then the
            family's options, each with its default).
        default_input_shape: the paper's input shape, channels last.
        paper: the reference (authors, year, and the table the configuration comes from).
        options: the keyword arguments the builder accepts, in signature order.
        outputs: what the model with its top returns, for `kerascnn list`.
        loss_weights: {output layer name: its weight in the training loss}, declared by the
            families whose models have auxiliary outputs (see `auxiliary_loss_weight`).
    """

    name: str
    family: str
    builder: object
    default_input_shape: tuple
    paper: str
    options: tuple
    outputs: str = "predictions"
    loss_weights: dict = dataclasses.field(default_factory=dict, hash=False)


def register_model(*, default_input_shape, paper, outputs="predictions", loss_weights=None):
    """Registers a builder under its function name; the builder itself is returned unchanged.

    Args:
        default_input_shape: the paper's input shape.
        paper: the reference and the table the configuration comes from.
        outputs: the outputs of the model with its top, described for `kerascnn list`.
        loss_weights: None, or {output layer name: loss weight} for a model with auxiliary
            outputs (e.g. GoogLeNet's 0.3 on "aux1_predictions").

    Raises:
        TypeError: the builder's signature does not start with keras.applications' arguments,
            or another model gives one of its outputs another loss weight.
    """
    loss_weights = dict(loss_weights or {})

    def decorator(fn):
        parameters = tuple(inspect.signature(fn).parameters)
        if parameters[: len(KERAS_ARGUMENTS)] != KERAS_ARGUMENTS:
            raise TypeError(
                f"{fn.__name__} must start with keras.applications' arguments {KERAS_ARGUMENTS}; "
                f"its parameters: {parameters}."
            )
        for entry in _REGISTRY.values():  # `auxiliary_loss_weight` looks outputs up by name
            for output, weight in loss_weights.items():
                if entry.name != fn.__name__ and entry.loss_weights.get(output, weight) != weight:
                    raise TypeError(f"{fn.__name__} weighs {output!r} by {weight}, "
                                    f"{entry.name} by {entry.loss_weights[output]}.")
        family = fn.__module__.rsplit(".", 1)[-1]
        _REGISTRY[fn.__name__] = ModelEntry(
            fn.__name__, family, fn, tuple(default_input_shape), paper, parameters, outputs,
            loss_weights,
        )
        return fn

    return decorator


def auxiliary_loss_weight(output_name, default=0.3):
    """The loss weight that a registered model declares for its output `output_name` (e.g.
    0.3 for GoogLeNet's "aux1_predictions", 0.4 for Inception-v3's "aux_predictions"), else
    `default`."""
    for entry in _REGISTRY.values():
        if output_name in entry.loss_weights:
            return entry.loss_weights[output_name]
    return default


def minimum_input_size(name, *, rank=2, channels=None, **options):
    """Returns the smallest spatial side (equal on every axis) that model `name` accepts.

    Computed from the strides, kernels and paddings of the stage table; nothing is built.

    Args:
        name: a registry name.
        rank: number of spatial axes (1, 2 or 3).
        channels: input channels; defaults to the paper's.
        **options: builder options that change the size (e.g. first_padding, padding_mode).
    """
    entry = get_model_entry(name)
    channels = channels or entry.default_input_shape[-1]
    return _smallest_side(entry, (1,) * rank + (channels,), options)


def accepts_input(name, input_shape, **options):
    """True when model `name` (without its top) accepts inputs of `input_shape`; builds nothing."""
    least = _smallest_side(get_model_entry(name), tuple(input_shape), options)
    return all(n is None or n >= least for n in input_shape[:-1])


def _smallest_side(entry, input_shape, options):
    # The builder stops at its size check: options are validated, nothing is built.
    return smallest_input_side(entry.builder, **{
        **options, "include_top": False, "pooling": None, "weights": None, "input_tensor": None,
        "input_shape": input_shape})


def list_models(pattern=None):
    """Returns the sorted registry names, optionally filtered by a glob such as "resnet*"."""
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def catalog():
    """{name: its family, default input shape, paper and outputs} for every model, sorted."""
    return {name: {"family": entry.family, "default_input_shape": list(entry.default_input_shape),
                   "paper": entry.paper, "outputs": entry.outputs}
            for name, entry in sorted(_REGISTRY.items())}


def write_catalog(path=CATALOG_PATH):
    """Writes `catalog()` as JSON to `path` (after registering a model: `python -c "import
    kerascnn.models as m; m.registry.write_catalog()"`)."""
    lines = [f"  {json.dumps(name)}: {json.dumps(entry, ensure_ascii=False)}"
             for name, entry in catalog().items()]  # one model a line
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def get_model_entry(name):
    """Returns the ModelEntry for `name`, or raises ValueError suggesting close names."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(list_models())}."
        )
    return _REGISTRY[name]


def build_model(name, *, input_shape=None, num_classes=None, **options):
    """Builds a registry model by name.

    Args:
        name: a name from `list_models()`.
        input_shape: channels-last shape of one example; its rank chooses 1D, 2D or 3D
            convolutions. Defaults to the paper's input (with the top) or to any size with
            the paper's channels (`include_top=False`), as keras.applications.
        num_classes: size of the classifier output; defaults to the paper's. `classes`, the
            builders' name for it, is accepted as an alias.
        **options: the builder's other arguments (include_top, pooling, norm, activation,
            dropout, ...).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: unknown name or option, bad `num_classes`, or an input too small.
    """
    entry = get_model_entry(name)
    if "classes" in options:
        classes = options.pop("classes")
        if num_classes is not None and num_classes != classes:
            raise InputError(
                f"{name}: num_classes={num_classes!r} and classes={classes!r} name the same "
                "count; give one."
            )
        num_classes = classes
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = [o for o in entry.options if o not in ("input_shape", "classes")]
        raise InputError(f"{name} has no option {', '.join(unknown)}; its options: {valid}.")
    if num_classes is not None:
        options["classes"] = num_classes
    return entry.builder(input_shape=input_shape, **options)
