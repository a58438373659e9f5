"""ImageNet weights for kerascnn's builders that equal a keras.applications network.

A builder named in `FAMILIES` takes `weights="imagenet"` or a weights file as
keras.applications does: its keras.applications twin is built with those weights (Keras
downloads "imagenet" once into its cache, ~/.keras/models or $KERAS_HOME/models), then the
twin's weights are copied into the kerascnn model by the family's mapping, which
tests/models/test_pretrained.py proves: the copy computes what the twin computes. They are
mobilenet (keras' MobileNet; width_multiplier is its alpha), xception, densenet121/169/201,
convnext_tiny, vgg16, vgg19, efficientnet_b0 to _b7, inception_v3, resnet50v2 and resnet101v2.
Every other builder (kerascnn's ResNets put no bias on their convolutions, keras' do; the
others have no keras twin) takes a weights file of its own only (`model.save_weights`).

A pretrained model takes what its twin's first convolution takes: keras.applications'
`preprocess_input` of 0-255 RGB images ("tf", [-1, 1]: mobilenet, xception, inception_v3,
resnet50v2/101v2; "torch": densenet; "caffe", BGR minus the channel means: vgg), and for
efficientnet and convnext_tiny also what the twin's own input layers (Rescaling,
Normalization) make of them, which a kerascnn model leaves to its Preprocessing layer.
"""

import contextlib
import dataclasses
import os
import warnings

import keras
from keras.src.utils import file_utils  # where keras.applications fetches its weights

from kerascnn.errors import InputError
from kerascnn.files import sha256_file

IMAGENET = "imagenet"


@dataclasses.dataclass(frozen=True)
class Family:
    """How a kerascnn builder's weights come from its keras.applications twin.

    Attributes:
        twin: the keras.applications function, by name (e.g. "MobileNet").
        pairs: (twin, model) -> [(where, the twin's arrays, the model's variables)]: which
            of the twin's weights each of the model's variables takes.
        options: the builder's arguments -> the twin's own (e.g. alpha for mobilenet).
    """

    twin: str
    pairs: object
    options: object = lambda arguments: {}


class _Misfit(Exception):
    """A model whose layers do not take a twin's weights (the detail for `copy_weights`)."""


def _layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        raise _Misfit(f"it has no layer {name!r}") from None


def _by_name(renames=None, skip=()):
    """Pairs every weighted layer of the twin with the model's layer of the same name
    (`renames` maps a twin name to the model's), leaving out the twin's `skip` layer types."""
    renames = renames or {}

    def pairs(twin, model):
        return [(layer.name, layer.get_weights(),
                 _layer(model, renames.get(layer.name, layer.name)).weights)
                for layer in twin.layers if layer.weights and not isinstance(layer, skip)]

    return pairs


def _in_order(twin, model):
    """Pairs the twin's weights with the model's, in order (the same network, layer by layer)."""
    return [("the weights in order", twin.get_weights(), model.weights)]


def _xception(twin, model):
    """Keras' separable convolutions are our depthwise + pointwise pairs (`NAME_dw`,
    `NAME_pw`); its unnamed shortcut projections are our block{2,3,4,13}_residual_*."""
    shortcuts = iter(f"block{b}_residual_{part}" for b in (2, 3, 4, 13) for part in ("conv", "bn"))
    found = []
    for layer in twin.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.SeparableConv2D):
            depthwise, pointwise = layer.get_weights()
            found += [(layer.name, [depthwise], _layer(model, f"{layer.name}_dw").weights),
                      (layer.name, [pointwise], _layer(model, f"{layer.name}_pw").weights)]
            continue
        named = layer.name.startswith(("block", "predictions"))
        name = layer.name if named else next(shortcuts, None)
        if name is None:
            raise _Misfit(f"the twin's layer {layer.name!r} has no counterpart")
        found.append((layer.name, layer.get_weights(), _layer(model, name).weights))
    return found


def _mobilenet_options(arguments):
    return {"alpha": arguments["width_multiplier"],
            "depth_multiplier": arguments["depth_multiplier"]}


FAMILIES = {
    # keras' classifier is a 1×1 convolution (conv_preds), ours a Dense layer.
    "mobilenet": Family("MobileNet", _by_name({"conv_preds": "predictions"}),
                        _mobilenet_options),
    "xception": Family("Xception", _xception),
    **{f"densenet{n}": Family(f"DenseNet{n}", _in_order) for n in (121, 169, 201)},
    # keras' depthwise kernels are grouped Conv2D kernels (7, 7, 1, C).
    "convnext_tiny": Family("ConvNeXtTiny", _in_order),
    "vgg16": Family("VGG16", _by_name()),
    "vgg19": Family("VGG19", _by_name()),
    # keras' EfficientNet normalises its inputs in a Normalization layer of its own.
    **{f"efficientnet_b{n}": Family(f"EfficientNetB{n}", _by_name(skip=keras.layers.Normalization))
       for n in range(8)},
    "inception_v3": Family("InceptionV3", _in_order),
    "resnet50v2": Family("ResNet50V2", _in_order),
    "resnet101v2": Family("ResNet101V2", _in_order),
}


def check_weights(variant, name, weights, include_top, classes):
    """Refuses, before anything is built, weights a builder cannot take.

    Args:
        variant: the registry name of the builder (None: a family builder called directly).
        name: the model name, quoted in messages.
        weights, include_top, classes: the builder's arguments.

    Raises:
        InputError: weights neither None, "imagenet" nor an existing file; "imagenet" for a
            builder without a keras.applications twin; or "imagenet" with the top and
            `classes` other than ImageNet's 1000 (as keras.applications).
    """
    if weights is None or (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)):
        return
    accepted = ", ".join(FAMILIES)
    if weights != IMAGENET:
        raise InputError(
            f"{name}: weights={weights!r} is neither None, 'imagenet' nor an existing weights "
            f"file. 'imagenet' builds: {accepted}.")
    if variant not in FAMILIES:
        raise InputError(
            f"{name}: weights='imagenet' exist for the builders that equal a keras.applications "
            f"network: {accepted}; {variant or name} is not one of them. Train it, or fine-tune "
            "from saved_models/ or keras.applications (kerascnn.finetune).")
    if include_top and classes != 1000:
        raise InputError(
            f"{name}: weights='imagenet' with include_top=True has ImageNet's 1000 classes; got "
            f"classes={classes}. Build it with include_top=False for the features, or "
            "fine-tune it for your classes (kerascnn.finetune).")


def load(model, weights, variant, arguments):
    """Loads `weights` into a kerascnn model: a file of its own, or (for `FAMILIES`) the
    weights of its keras.applications twin, "imagenet" or a file the twin reads.

    Args:
        model: the built kerascnn model.
        weights: "imagenet" or a weights file path.
        variant: the registry name of its builder (None when unknown).
        arguments: the builder's arguments (the twin is built with the same).

    Raises:
        InputError: weights that fit neither the model nor its twin, or "imagenet" weights
            that cannot be downloaded (naming the file, its URL and the fix).
    """
    own = weights != IMAGENET
    if own:
        try:
            _quietly(model.load_weights, weights)
            return
        except (ValueError, OSError, KeyError) as error:
            if variant not in FAMILIES:
                raise InputError(f"{weights} does not fit {model.name}: {_one_line(error)}") \
                    from None
    family = FAMILIES[variant]
    shape = tuple(model.inputs[0].shape[1:])
    try:
        twin, _ = build_application(
            getattr(keras.applications, family.twin), weights,
            include_top=arguments["include_top"], input_shape=None if None in shape else shape,
            pooling=arguments["pooling"], classes=arguments["classes"],
            classifier_activation=None, **family.options(arguments))
    except InputError as error:
        if not own:
            raise
        raise InputError(f"{weights} fits neither kerascnn's {model.name} nor its twin: "
                         f"{error}") from None
    copy_weights(variant, twin, model)


def copy_weights(variant, twin, model):
    """Copies a keras.applications twin's weights into the kerascnn model, by the family's
    mapping; nothing is copied unless every one of the model's weights finds its own.

    Raises:
        InputError: the model's layers differ from the twin's (an option that changes the
            network), naming the first difference.
    """
    family = FAMILIES[variant]
    try:
        pairs = family.pairs(twin, model)
        covered = {id(v) for _, _, variables in pairs for v in variables}
        missing = [v.path for v in model.weights if id(v) not in covered]
        if missing:
            raise _Misfit(f"its weight {missing[0]} has no counterpart in the twin")
        for where, values, variables in pairs:
            if len(values) != len(variables):
                raise _Misfit(f"{where}: {len(values)} weights in the twin, "
                              f"{len(variables)} here")
            for value, variable in zip(values, variables):
                if _squeezed(value.shape) != _squeezed(variable.shape):
                    raise _Misfit(f"{variable.path} is {tuple(variable.shape)} here, "
                                  f"{value.shape} in the twin ({where})")
    except _Misfit as misfit:
        raise InputError(
            f"kerascnn's {model.name} does not take the weights of keras.applications."
            f"{family.twin}: {misfit}. Pretrained weights fit the network keras.applications "
            "builds: leave the options that change layers at their defaults.") from None
    for _, values, variables in pairs:
        for value, variable in zip(values, variables):
            variable.assign(value.reshape(variable.shape))


def _squeezed(shape):
    return tuple(int(n) for n in shape if n != 1)


def build_application(fn, weights, **arguments):
    """Builds a keras.applications network with weights; "imagenet" without a download
    when Keras' cache holds the file, and with one line naming the file, its URL, the cache
    and the fix when it does not and the download fails.

    Args:
        fn: a keras.applications function, e.g. keras.applications.MobileNetV2.
        weights: "imagenet" or a weights file path (Keras' download, or `save_weights`).
        **arguments: fn's other arguments.

    Returns:
        (the network, a JSON-ready record of its weights: "origin" "imagenet" with the file,
        URL, published hash, local path and SHA-256; or "file" with the path and SHA-256).

    Raises:
        InputError: arguments Keras refuses, a file that does not fit the network, or
            "imagenet" weights that cannot be had.
    """
    call = f"keras.applications.{fn.__name__}({_arguments_text(arguments)})"
    fetched = []
    try:
        with _fetching(call, fetched):
            net = _quietly(fn, weights=weights, **arguments)
    except InputError:
        raise
    except (ValueError, TypeError, OSError, KeyError) as error:
        what = "refuses weights='imagenet'" if weights == IMAGENET else f"cannot load {weights}"
        raise InputError(f"{call} {what}: {_one_line(error)}") from None
    if weights == IMAGENET:
        record = {"origin": IMAGENET, **fetched[-1]}
    else:
        path = os.path.abspath(weights)
        record = {"origin": "file", "path": path, "bytes": os.path.getsize(path)}
    return net, {**record, "sha256": sha256_file(record["path"])}


def _arguments_text(arguments):
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items() if v is not None)


def _one_line(error):
    """Keras' error as one line, without the values of the variable it names."""
    return " ".join(str(error).split()).split(" Target variable:")[0][:400]


def _quietly(fn, *args, **kwargs):
    """Calls fn, keeping back the warnings it raises unless it returns: Keras warns once per
    layer before it refuses a weights file that does not fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    return result


def keras_cache():
    """The folder Keras keeps downloads in: $KERAS_HOME or ~/.keras, read now (Keras reads
    it at import), /tmp/.keras when that is not writable, as keras.utils.get_file."""
    home = os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))
    return home if os.access(home, os.W_OK) else os.path.join("/tmp", ".keras")


@contextlib.contextmanager
def _fetching(call, fetched):
    """Routes keras.applications' weight downloads through Keras' cache (`keras_cache`),
    appends each file's record to `fetched`, and turns a failed download into one line."""
    real = file_utils.get_file

    def get_file(fname=None, origin=None, **kwargs):
        kwargs["cache_dir"] = keras_cache()
        folder = os.path.join(kwargs["cache_dir"], kwargs.get("cache_subdir", "datasets"))
        cached = os.path.exists(os.path.join(folder, fname))
        try:
            path = real(fname, origin, **kwargs)
        except Exception as error:  # Keras raises a bare Exception for a failed download
            damaged = "the copy there fails its published hash, and " if cached else ""
            raise InputError(
                f"weights='imagenet' of {call} are the file {fname}, which Keras downloads "
                f"from {origin} into {folder} (its cache: ~/.keras/models, or "
                f"$KERAS_HOME/models); {damaged}the download failed ({_one_line(error)}). Put "
                "a copy of the file there, or pass its path: weights=PATH (kerascnn finetune "
                "--weights PATH).") from None
        fetched.append({"file": fname, "url": origin, "file_hash": kwargs.get("file_hash"),
                        "path": os.path.abspath(path)})
        return path

    file_utils.get_file = get_file
    try:
        yield
    finally:
        file_utils.get_file = real

