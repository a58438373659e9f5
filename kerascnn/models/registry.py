"""The model registry: every architecture by name, timm-style."""

import dataclasses
import difflib
import fnmatch
import functools
import inspect

from kerascnn.layers.convolution import SpatialSizeError

_REGISTRY = {}
_MAX_SIDE = 4096


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one architecture.

    Attributes:
        name: registry name, also the builder's name in `kerascnn.models`.
        family: the module that builds it (e.g. "resnet").
        builder: the public builder function.
        default_input_shape: the paper's input shape, channels last.
        paper: the reference (authors, year, and the table the configuration comes from).
        options: the keyword arguments the builder accepts.
    """

    name: str
    family: str
    builder: object
    default_input_shape: tuple
    paper: str

    options: tuple


def register_model(*, default_input_shape, paper, family_builder):
    """Registers a builder under its function name.

    Args:
        default_input_shape: the paper's input shape.
        paper: the reference and the table the configuration comes from.
        family_builder: the family's generic builder; its keyword-only parameters are the
            options users may pass (its positional-only ones describe the architecture).

    The wrapped builder turns a map that vanishes inside the network into a ValueError that
    names the model, the input size, the layer and the smallest input accepted.
    """
    options = tuple(
        p.name
        for p in inspect.signature(family_builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    )

    def decorator(fn):
        @functools.wraps(fn)
        def builder(**kwargs):
            try:
                return fn(**kwargs)
            except SpatialSizeError as error:
                raise _too_small(fn, kwargs, default_input_shape, error) from None

        family = fn.__module__.rsplit(".", 1)[-1]
        _REGISTRY[fn.__name__] = ModelEntry(
            fn.__name__, family, builder, tuple(default_input_shape), paper, options
        )
        return builder

    return decorator


def _smallest_side(fn, kwargs, rank, channels, start):
    """Bisects for the smallest side (equal on every axis) the trunk of `fn` accepts."""
    probe = {**kwargs, "include_top": False, "pooling": None, "input_tensor": None, "weights": None}

    def fits(side):
        try:
            fn(**{**probe, "input_shape": (side,) * rank + (channels,)})
            return True
        except SpatialSizeError:
            return False

    low, high = 0, max(1, start)
    while not fits(high):
        low, high = high, high * 2
        if high > _MAX_SIDE:
            raise ValueError(f"{fn.__name__}: no input side up to {_MAX_SIDE} fits.")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def _too_small(fn, kwargs, default_input_shape, error):
    shape = tuple(kwargs.get("input_shape") or default_input_shape)
    rank = len(shape) - 1
    side = _smallest_side(fn, kwargs, rank, shape[-1], max(shape[:-1]))
    size = "×".join(str(n) for n in shape[:-1])
    least = "×".join([str(side)] * rank)
    return ValueError(
        f"{fn.__name__} needs inputs of at least {least}; got {size}: the map vanishes at "
        f"{error}. Resize the inputs to {least} or more, or choose a model that downsamples less "
        f"(kerascnn.list_models())."
    )


def minimum_input_size(name, *, rank=2, channels=None, **options):
    """Returns the smallest spatial side (equal on every axis) that model `name` accepts.

    Args:
        name: a registry name.
        rank: number of spatial axes (1, 2 or 3).
        channels: input channels; defaults to the paper's.
        **options: builder options that change the size (e.g. first_padding).
    """
    entry = get_model_entry(name)
    channels = channels or entry.default_input_shape[-1]
    fn = entry.builder.__wrapped__
    return _smallest_side(fn, options, rank, channels, max(entry.default_input_shape[:-1]))


def list_models(pattern=None):
    """Returns the sorted registry names, optionally filtered by a glob such as "resnet*"."""
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def get_model_entry(name):
    """Returns the ModelEntry for `name`, or raises ValueError suggesting close names."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(list_models())}."
        )
    return _REGISTRY[name]


def build_model(name, *, input_shape=None, num_classes=None, **options):
    """Builds a registry model by name.

    Args:
        name: a name from `list_models()`.
        input_shape: channels-last shape of one example; its rank chooses 1D, 2D or 3D
            convolutions. Defaults to the paper's input.
        num_classes: size of the classifier output; defaults to the paper's.
        **options: the builder's other keyword arguments (norm, activation, dropout, ...).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: unknown name or option, bad `num_classes`, or an input too small.
    """
    entry = get_model_entry(name)
    unknown = sorted(set(options) - set(entry.options) | ({"classes"} & set(options)))
    if unknown:
        valid = [o for o in entry.options if o not in ("input_shape", "classes")]
        raise ValueError(f"{name} has no option {', '.join(unknown)}; its options: {valid}.")
    if num_classes is not None:
        options["classes"] = num_classes
    return entry.builder(input_shape=input_shape, **options)
