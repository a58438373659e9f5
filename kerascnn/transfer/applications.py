"""keras.applications networks as fine-tuning sources: "keras.applications.MobileNetV2".

A source names the network as Python does, optionally called with keras.applications' own
keyword arguments: "keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))".
It is built with its top (finetune's head surgery replaces the 1000-class classifier) and
weights "imagenet" (the default, as in keras.applications; Keras downloads them once into its
cache) or a local weights file: the one keras.applications would download, or a
`.weights.h5` the network saved.

Before the network sits a Preprocessing layer doing what its `preprocess_input` does to
0-255 RGB images ("tf": to [-1, 1]; "torch": ImageNet's mean and standard deviation;
"caffe": BGR minus the channel means, the channel order folded into the first convolution's
kernel; nothing for EfficientNet, ConvNeXt and others that normalise inside): images on
0-255 reach the network as it was trained. The statistics come from calling the network's
own `preprocess_input`, and finetune's normalisation check (renormalize="auto") sees them:
data on another scale (digits' 0-16) is re-adapted on its training split.

The bare class name ("MobileNetV2") is not a source: a source string may also be a file, a
saved_models/ name or a run folder, and "vgg16" or "xception" would read as kerascnn's own
builders; the prefix says which library builds the network and whose preprocessing applies.
A bare name is refused with the qualified one to use.
"""

import ast
import difflib
import inspect
import os
import sys

import keras
import numpy as np

from kerascnn.data.preprocessing import Preprocessing
from kerascnn.errors import InputError
from kerascnn.models import pretrained

PREFIX = "keras.applications."
NETWORKS = tuple(sorted(n for n in dir(keras.applications)
                        if n[:1].isupper() and callable(getattr(keras.applications, n))))
# keras.applications' arguments a source cannot set, and why.
_FIXED = {
    "include_top": "the top is kept (finetune replaces its classifier)",
    "weights": "the weights are finetune's `weights` (--weights)",
    "input_tensor": "a Preprocessing layer feeds the network",
    "pooling": "with the top, the network pools itself",
    "include_preprocessing": "the input preprocessing is the network's own",
}
# Layers that may come before the first convolution when the channel order is folded into it.
_CHANNELWISE = ("InputLayer", "ZeroPadding2D")


def is_application(source):
    """True when `source` names a keras.applications network ("keras.applications.NAME...")."""
    return isinstance(source, str) and source.strip().startswith(PREFIX)


def qualified(text):
    """"keras.applications.NAME" when `text` is a network's bare name (any case), else None."""
    found = [n for n in NETWORKS if n.lower() == str(text).strip().lower()]
    return PREFIX + found[0] if found else None


def parse(text):
    """Returns (the network's name, its keyword arguments) of a source string.

    Raises:
        InputError: not "keras.applications.NAME" or "keras.applications.NAME(key=value,
            ...)" with literal values; an unknown network (with the closest names); an
            argument the network does not take, or one finetune sets itself.
    """
    form = ("write keras.applications.NAME or keras.applications.NAME(keyword=value, ...), "
            "e.g. keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise InputError(f"source {text!r} cannot be read: {form}.") from None
    call = node if isinstance(node, ast.Call) else None
    dotted = _dotted(call.func if call else node)
    if dotted is None or not dotted.startswith(PREFIX) or (call and call.args):
        raise InputError(f"source {text!r} cannot be read: {form}.")
    name = dotted[len(PREFIX):]
    if name not in NETWORKS:
        close = difflib.get_close_matches(name, NETWORKS, n=3, cutoff=0.5) or \
            [n for n in NETWORKS if n.lower() == name.lower()]
        hint = f" Did you mean {', '.join(PREFIX + n for n in close)}?" if close else ""
        raise InputError(f"keras.applications has no network {name!r}.{hint} Its networks: "
                         f"{', '.join(NETWORKS)}.")
    options = {}
    for keyword in call.keywords if call else ():
        try:
            if keyword.arg is None:
                raise ValueError
            options[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise InputError(f"source {text!r}: arguments are keyword=value with literal "
                             "values (numbers, strings, tuples, True, False, None).") from None
    _check_arguments(name, options)
    return name, options


def _dotted(node):
    """"a.b.c" for an attribute chain of names, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def _check_arguments(name, options):
    fixed = [k for k in options if k in _FIXED]
    if fixed:
        raise InputError(f"keras.applications.{name}: {fixed[0]} is not a source's argument: "
                         f"{_FIXED[fixed[0]]}.")
    parameters = [p for p in inspect.signature(getattr(keras.applications, name)).parameters
                  if p not in _FIXED]
    unknown = [k for k in options if k not in parameters]
    if unknown:
        raise InputError(f"keras.applications.{name} takes no argument {unknown[0]!r}; its "
                         f"arguments: {', '.join(parameters)}.")


def _source_text(name, options):
    """The source string of a network and its arguments, in one form (the fingerprint's)."""
    arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return f"{PREFIX}{name}({arguments})" if options else f"{PREFIX}{name}"


def load(text, weights=None):
    """Builds a keras.applications source behind its input preprocessing.

    Args:
        text: "keras.applications.NAME" or "keras.applications.NAME(key=value, ...)".
        weights: "imagenet" (None: the default, as keras.applications) or a weights file.

    Returns:
        (the model: inputs -> Preprocessing -> the network; its provenance, JSON-ready: the
        source string, the weights' origin with the file's URL or path and SHA-256, and the
        input preprocessing).

    Raises:
        InputError: a bad name, argument or weights (see `parse`,
            `pretrained.build_application`), before anything is built where it can be.
    """
    name, options = parse(text)
    weights = pretrained.IMAGENET if weights is None else weights
    if weights != pretrained.IMAGENET:
        if not (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)):
            raise InputError(f"weights={weights!r} is neither 'imagenet' nor an existing "
                             "weights file.")
        weights = os.fspath(weights)
    fn = getattr(keras.applications, name)
    net, record = pretrained.build_application(fn, weights, include_top=True, **options)
    preprocess = sys.modules[fn.__module__].preprocess_input
    statistics = input_statistics(preprocess)
    folded = _fold_channel_order(net, statistics["order"])
    model = _behind_preprocessing(net, statistics)
    channels = ("RGB" if folded is None else
                f"RGB; the network was trained on channel order {statistics['order']} of "
                f"them, folded into {folded}'s kernel")
    return model, {
        "kind": "keras.applications",
        "name": _source_text(name, options),
        "weights": record,
        "sha256": record["sha256"],
        "parameters": int(net.count_params()),
        "input": {"preprocess_input": f"{preprocess.__module__}.preprocess_input",
                  "value_range": [0, 255], "channels": channels,
                  "mean": statistics["mean"], "std": statistics["std"]},
    }


def input_statistics(preprocess):
    """What a keras.applications `preprocess_input` does to 0-255 RGB pixels, measured.

    Returns:
        {"mean", "std": per input channel (RGB), so that the network's channel i takes
        (x[order[i]] - mean[order[i]]) / std[order[i]]; "order": the input channel each
        network channel reads ([2, 1, 0]: BGR)}.

    Raises:
        InputError: a preprocessing that is not a per-channel affine map.
    """
    pixels = np.zeros((4, 1, 1, 3), "float32")
    pixels[1:, 0, 0] = 255 * np.eye(3)
    out = np.asarray(keras.ops.convert_to_numpy(preprocess(pixels.copy())), np.float64)[:, 0, 0]
    offset = out[0]
    gain = (out[1:] - offset).T / 255  # gain[i, c]: network channel i per unit of channel c
    order = np.argmax(np.abs(gain), axis=1)
    scale = gain[np.arange(3), order]
    mapped = np.zeros_like(gain)
    mapped[np.arange(3), order] = scale
    if sorted(order) != [0, 1, 2] or not np.all(scale) or not np.allclose(gain, mapped):
        raise InputError(f"{preprocess.__module__}.preprocess_input is not a per-channel "
                         "scale and shift: kerascnn cannot do it in a Preprocessing layer.")
    std, mean = np.empty(3), np.empty(3)
    std[order] = 1 / scale
    mean[order] = -offset * std[order]
    return {"mean": mean.tolist(), "std": std.tolist(), "order": order.tolist()}


def _fold_channel_order(net, order):
    """Makes the first convolution take the channels in input order (RGB) instead of `order`;
    returns its name, or None when the order is the input's."""
    if order == [0, 1, 2]:
        return None
    index, layer = next((i, l) for i, l in enumerate(net.layers)
                        if len(getattr(getattr(l, "kernel", None), "shape", ())) == 4)
    before = {type(l).__name__ for l in net.layers[:index]}
    if not before <= set(_CHANNELWISE):
        raise InputError(f"{net.name} takes its channels in the order {order}, and layers "
                         f"{sorted(before - set(_CHANNELWISE))} come before its first "
                         "convolution: the order cannot be folded into it.")
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    layer.kernel.assign(kernel[..., np.argsort(order), :])
    return layer.name


def _behind_preprocessing(net, statistics):
    """inputs -> Preprocessing (the network's statistics, or none) -> net."""
    shape = tuple(net.inputs[0].shape[1:])
    identity = statistics["order"] == [0, 1, 2] and np.allclose(statistics["mean"], 0) and \
        np.allclose(statistics["std"], 1)
    preprocessing = Preprocessing(target_shape=shape, mode=None if identity else "standardize",
                                  name="preprocessing")
    inputs = keras.Input(shape, name="inputs")
    outputs = net(preprocessing(inputs))
    if not identity:
        preprocessing.mean.assign(statistics["mean"])
        preprocessing.std.assign(statistics["std"])
    preprocessing.is_adapted = True
    return keras.Model(inputs, outputs, name=net.name)
