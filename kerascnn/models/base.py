"""What every architecture shares: arguments and their checks, input sizes, widths, the head."""

import contextvars
import functools
import inspect
import numbers

import keras

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.convolution import global_pool, smallest_side, vanishing_window
from kerascnn.layers.padding import PADDING_MODES
from kerascnn.layers.regularization import DropConnectDense
from kerascnn.models import pretrained

# keras.applications' arguments, first and in this order in every public builder.
KERAS_ARGUMENTS = (
    "include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
    "classifier_activation", "name",
)
# Their defaults in a variant's signature (`variant`); `name` defaults to the variant's own.
KERAS_DEFAULTS = {"include_top": True, "weights": None, "input_tensor": None, "input_shape": None,
                  "pooling": None, "classes": 1000, "classifier_activation": "softmax"}
POOLINGS = (None, "avg", "max")
ROUNDINGS = ("nearest", "down")
# PyTorch's default draw for convolutions and linear layers (uniform in ±1/sqrt(fan_in)), which
# the networks ported from PyTorch recipes (resnet9, airbench94) were tuned with.
TORCH_INIT = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
# (registry name, arguments) of the variant being built, for its weights (`pretrained`).
_VARIANT = contextvars.ContextVar("variant", default=(None, {}))


class InputTooSmallError(InputError):
    """The input is smaller than the smallest one a network accepts (found before building).

    Attributes:
        minimum: the smallest side (equal on every axis) the network accepts.
    """

    def __init__(self, message, minimum):
        super().__init__(message)
        self.minimum = minimum


def variant(family, **defaults):
    """Makes `fn(**arguments)` a variant of the family builder `family`, with its own signature.

    `family` takes keras.applications' arguments (`KERAS_ARGUMENTS`), then its options, all
    keyword-only, the options with their defaults. The variant's signature is those arguments,
    positional or keyword, with `KERAS_DEFAULTS` (`name`: the variant's name), then the
    options, keyword-only, `defaults` overriding the family's (e.g. `variant(ResNet,
    groups=32, base_width=4)`). A call binds it as a `def` would (TypeError for an unknown
    keyword) and passes `fn` every argument by keyword.
    """

    def decorator(fn):
        values = {**KERAS_DEFAULTS, "name": fn.__name__, **defaults}
        parameters = [
            p.replace(kind=p.POSITIONAL_OR_KEYWORD if p.name in KERAS_ARGUMENTS else p.kind,
                      default=values.pop(p.name, p.default))
            for p in inspect.signature(family).parameters.values() if p.kind is p.KEYWORD_ONLY
        ]
        if values:
            raise TypeError(f"{fn.__name__}: {family.__name__} has no option {', '.join(values)}.")
        signature = inspect.Signature(parameters)

        @functools.wraps(fn)
        def builder(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{fn.__name__}(): {error}") from None
            bound.apply_defaults()
            token = _VARIANT.set((fn.__name__, bound.arguments))
            try:
                return fn(**bound.arguments)
            finally:
                _VARIANT.reset(token)

        builder.__signature__ = signature
        return builder

    return decorator


def check_common(*, include_top, weights, input_tensor, input_shape, pooling, classes,
                 classifier_activation, name):
    """Validates the keras.applications arguments before anything is built.

    Raises:
        ValueError: a bad value (quoted), a variable input size with the top, or
            channels-first as Keras' image data format.
    """
    if keras.config.image_data_format() != "channels_last":
        raise InputError(
            f"{name}: kerascnn builds channels-last networks, but "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}. Call "
            "keras.config.set_image_data_format('channels_last') and give inputs as "
            "(height, width, channels)."
        )
    if not isinstance(include_top, bool):
        raise InputError(f"{name}: include_top must be True or False; got {include_top!r}.")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise InputError(f"{name}: classes (num_classes) must be a positive int; got {classes!r}.")
    factories.check_choice(pooling, POOLINGS, "pooling")
    if classifier_activation is not None:
        factories.check_activation(classifier_activation)
        if factories.is_layer_activation(classifier_activation):
            raise InputError(
                f"{name}: classifier_activation={classifier_activation!r} is a hidden-layer "
                "choice; the classifier takes a Keras activation such as 'softmax' or None."
            )
    pretrained.check_weights(_VARIANT.get()[0], name, weights, include_top, classes)
    if input_shape is not None:
        shape = tuple(input_shape)
        if not 2 <= len(shape) <= 4 or not _positive_int(shape[-1]) or not all(
            n is None or _positive_int(n) for n in shape[:-1]
        ):
            raise InputError(
                f"{name}: input_shape={input_shape!r} must be positive ints, channels last "
                "(None for a variable size): (length, channels), (height, width, channels) or "
                "(depth, height, width, channels)."
            )
    if input_tensor is not None and not 3 <= len(input_tensor.shape) <= 5:
        raise InputError(
            f"{name}: input_tensor of shape {tuple(input_tensor.shape)} needs a batch axis, "
            "1 to 3 spatial axes and the channels."
        )


def _positive_int(n):
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_rate(name, option, value):
    if not _number(value) or not 0 <= value < 1:
        raise InputError(f"{name}: {option} must be in [0, 1); got {value!r}.")


def _check_flag(name, option, value):
    if not isinstance(value, bool):
        raise InputError(f"{name}: {option} must be True or False; got {value!r}.")


def _check_width_multiplier(name, option, value):
    if not _number(value) or not value > 0:
        raise InputError(
            f"{name}: {option} must be a positive number; got {value!r} (e.g. 0.25, 0.5 or 1.0)."
        )


def _check_se_ratio(name, option, value):
    if value is not None and (not _number(value) or not 0 <= value <= 1):
        raise InputError(
            f"{name}: {option}={value!r} must be in [0, 1] (0 or None for no SE, 1/16 for SENet, "
            "0.25 for ResNet-RS)."
        )


def _check_positive_int(name, option, value):
    if not _positive_int(value):
        raise InputError(f"{name}: {option} must be a positive int; got {value!r}.")


# The options several families share, each checked here and nowhere else.
_CHECKS = {
    "width_multiplier": _check_width_multiplier,
    "norm": lambda name, option, value: factories.check_norm(value),
    "activation": lambda name, option, value: factories.check_activation(value),
    "padding_mode": lambda name, option, value: factories.check_choice(
        value, PADDING_MODES, option),
    "se_ratio": _check_se_ratio,
    "groups": _check_positive_int,
    "kernel_size": _check_positive_int,
    **dict.fromkeys(("dropout", "aux_dropout", "block_dropout", "spatial_dropout",
                     "drop_connect", "drop_path_rate"), _check_rate),
    **dict.fromkeys(("lrn", "aux_logits", "bottleneck", "zero_init_residual"), _check_flag),
}


def check_options(name, **options):
    """Validates shared family options by their names (see `_CHECKS`) before building.

    Args:
        name: the model name, quoted in messages.
        **options: option values, e.g. `width_multiplier=0.5, dropout=0.2`.

    Raises:
        ValueError: naming the bad value and what is allowed.
    """
    for option, value in options.items():
        _CHECKS[option](name, option, value)


def scaled(filters, width_multiplier, rounding="nearest"):
    """Returns `filters` × `width_multiplier`, at least 1; None stays None.

    Args:
        filters: a width from a paper's table, or None.
        width_multiplier: a positive number.
        rounding: "nearest" (timm, torchvision) or "down" (keras.applications' MobileNet and
            Xception: int(filters × α)).
    """
    if filters is None:
        return None
    value = filters * width_multiplier
    return max(1, round(value) if rounding == "nearest" else int(value))


def input_shape_of(input_tensor, input_shape, default_input_shape, include_top, name):
    """The shape of one example: given, the tensor's, or the default (variable sizes without the top).

    As keras.applications: without the top, the default input takes any size (None) with
    the paper's channels; with the top every size must be known.

    Raises:
        ValueError: a variable size with `include_top=True`.
    """
    if input_shape is not None:
        shape = tuple(input_shape)
    elif input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
    elif include_top:
        shape = tuple(default_input_shape)
    else:
        shape = (None,) * (len(default_input_shape) - 1) + (default_input_shape[-1],)
    if include_top and None in shape[:-1]:
        raise InputError(
            f"{name}: with include_top=True every input size must be known; got {shape}. "
            "Give a static input_shape, or build with include_top=False."
        )
    return shape


# Set by `smallest_input_side`: builders then stop at their size check, before any layer.
_MEASURING = contextvars.ContextVar("measuring", default=False)


class _Measured(Exception):
    def __init__(self, minimum):
        super().__init__(minimum)
        self.minimum = minimum


def smallest_input_side(builder, **arguments):
    """Returns the smallest side `builder(**arguments)` accepts, computed from its windows.

    The builder runs only up to its `check_input_size` call: its arguments are validated,
    nothing is built.
    """
    token = _MEASURING.set(True)
    try:
        builder(**arguments)
    except _Measured as measured:
        return measured.minimum
    finally:
        _MEASURING.reset(token)
    raise TypeError(f"{builder.__name__} never calls base.check_input_size.")


def check_input_size(name, shape, windows):
    """Refuses, before any layer is built, an input whose map vanishes inside the network.

    Args:
        name: the model name.
        shape: one example's shape, channels last (None sizes are not checked).
        windows: the network's `kerascnn.layers.convolution.Window`s, in order.

    Raises:
        InputTooSmallError: naming the input size, the layer where the map vanishes and the
            smallest input accepted.
    """
    if _MEASURING.get():
        raise _Measured(smallest_side(windows))
    for size in shape[:-1]:
        if size is None:
            continue
        failure = vanishing_window(windows, size)
        if failure is None:
            continue
        window, there = failure
        least = smallest_side(windows)
        rank = len(shape) - 1
        sides = "×".join([str(least)] * rank)
        given = "×".join(str(n) for n in shape[:-1])
        raise InputTooSmallError(
            f"{name} needs inputs of at least {sides}; got {given}: the map vanishes at layer "
            f"{window.name!r} (a map of {there} under a window of {window.kernel}"
            f"{', reflect-padded' if window.padding_mode == 'reflect' else ''}). Resize the "
            f"inputs to {sides} or more, or choose a model that downsamples less "
            "(kerascnn.list_models()).",
            least,
        )


def model_input(input_tensor, shape):
    """Returns (the tensor the network starts from, the Model inputs)."""
    if input_tensor is None:
        x = keras.Input(shape=shape)
        return x, x
    if not keras.backend.is_keras_tensor(input_tensor):
        x = keras.Input(tensor=input_tensor, shape=shape)
        return x, x
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def begin(name, *, include_top, weights, input_tensor, input_shape, pooling, classes,
          classifier_activation, default_input_shape, windows, check=None, **options):
    """Starts a family builder: validates its arguments, sizes its input, makes the input.

    The checks run in one order for every family: the keras.applications arguments, the
    shared options, the family's own `check`, then the input shape and its size.

    Args:
        name: the model name, quoted in messages.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in keras.applications.
        default_input_shape: the paper's input.
        windows: a callable taking one example's shape (channels last) and returning the
            network's `kerascnn.layers.convolution.Window`s; called only after every check,
            as some families derive a window from the input size or from checked options.
        check: None, or a callable without arguments validating the family's own options.
        **options: the shared options, checked by `check_options`.

    Returns:
        (the tensor the network starts from, the Model inputs, one example's shape).

    Raises:
        ValueError: a bad argument or option (quoted), or a variable input size with the top.
        InputTooSmallError: an input whose map vanishes inside the network.
    """
    check_common(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )
    check_options(name, **options)
    if check is not None:
        check()
    shape = input_shape_of(input_tensor, input_shape, default_input_shape, include_top, name)
    check_input_size(name, shape, windows(shape))
    x, inputs = model_input(input_tensor, shape)
    return x, inputs, shape


def hidden_units(units, default, width_multiplier, name, option="hidden_units"):
    """The widths of the hidden FC layers (or of a family's convolutions): `units` as given,
    or `default` scaled.

    Args:
        units: None (use `default` × `width_multiplier`), or a tuple of positive ints
            (() for no hidden layer).
        default: the paper's widths, e.g. (4096, 4096).
        width_multiplier: a positive number.
        name: the model name, for error messages.
        option: the option's name, for error messages.
    """
    if units is None:
        return tuple(scaled(u, width_multiplier) for u in default)
    if not isinstance(units, (list, tuple)) or not all(_positive_int(u) for u in units):
        raise InputError(
            f"{name}: {option}={units!r} must be a tuple of positive ints, "
            "e.g. (256, 256), or () for none."
        )
    return tuple(units)


def classifier_head(
    x,
    *,
    include_top,
    pooling,
    classes,
    classifier_activation,
    flatten=False,
    hidden_units=(),
    activation="relu",
    dropout=0.0,
    drop_connect=0.0,
):
    """Ends the network: a classifier, or the features with optional global pooling.

    Args:
        flatten: flatten the maps (LeNet, AlexNet, VGG) instead of global average pooling.
        hidden_units: widths of the fully connected layers before the classifier.
        dropout: dropout on the output of every hidden fully connected layer (AlexNet, VGG:
            never on the flattened maps), or before the classifier when there is none.
        drop_connect: DropConnect rate on the weights of every fully connected layer.
    """
    if not include_top:
        return global_pool(x, pooling, "pool") if pooling else x
    x = keras.layers.Flatten(name="flatten")(x) if flatten else global_pool(x, "avg", "avg_pool")
    for i, units in enumerate(hidden_units, start=1):
        x = hidden_dense(x, units, activation, drop_connect, f"fc{i}")
        x = factories.dropout(x, dropout, f"fc{i}_dropout")
    if not hidden_units:
        x = factories.dropout(x, dropout, "predictions_dropout")
    return dense(classes, classifier_activation, drop_connect, "predictions")(x)


def hidden_dense(x, units, activation, drop_connect, name):
    """A hidden fully connected layer `name` and its activation (a layer of its own for the
    choices Dense cannot take, e.g. "prelu" or "maxout:2")."""
    if factories.is_layer_activation(activation):
        x = dense(units, None, drop_connect, name)(x)
        return factories.activation(x, activation, f"{name}_{activation}")
    return dense(units, activation, drop_connect, name)(x)


def dense(units, activation, drop_connect, name, **kwargs):
    """A Dense layer, or a DropConnectDense when `drop_connect` > 0."""
    if drop_connect:
        return DropConnectDense(units, rate=drop_connect, activation=activation, name=name,
                                **kwargs)
    return keras.layers.Dense(units, activation=activation, name=name, **kwargs)


def check_logit_scale(name, logit_scale, reference):
    """Refuses a logit scale that is no positive number; `reference` names the paper's."""
    if (not isinstance(logit_scale, numbers.Real) or isinstance(logit_scale, bool)
            or not logit_scale > 0):
        raise InputError(f"{name}: logit_scale must be a positive number; got {logit_scale!r} "
                         f"({reference}, or 1 for plain logits).")


def scaled_classifier(x, *, classes, classifier_activation, logit_scale):
    """The features times `logit_scale`, then a bias-free classifier: the logits scaled as
    Page's and airbench's (W·(s·f) = s·(W·f)), the classifier the last weighted layer, drawn
    as their PyTorch draws it (`TORCH_INIT`: about 2.4 times smaller than Glorot's at 256
    features and 10 classes)."""
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    return keras.layers.Dense(classes, use_bias=False, activation=classifier_activation,
                              kernel_initializer=TORCH_INIT, name="predictions")(x)


def finish(inputs, outputs, name, weights):
    """Creates the Model and loads `weights` when given: a file of its own, or "imagenet" or
    a file of its keras.applications twin for the variants `pretrained.FAMILIES` names."""
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        pretrained.load(model, weights, *_VARIANT.get())
    return model
