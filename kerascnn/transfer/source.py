"""Where a fine-tune starts: a `.keras` file, a `saved_models/` name, a run folder, a Model or
a keras.applications network ("keras.applications.MobileNetV2", see `applications`)."""

import hashlib
import json
import os
import re
import zipfile

import keras
import numpy as np

import kerascnn.data  # noqa: F401  (registers Preprocessing for loading)
import kerascnn.models  # noqa: F401  (registers kerascnn's layers for loading)
from kerascnn.errors import InputError
from kerascnn.files import config_objects, sha256_file
from kerascnn.transfer import applications

# The small trained models kerascnn ships as package data (a wheel carries them).
SAVED_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "saved_models")
_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")


class TransferError(InputError):
    """A fine-tuning source or option that cannot be used; the message says why and the fix."""


def resolve_source(source):
    """Returns the `.keras` path a source names, or None for a keras.Model.

    Args:
        source: a keras.Model, a `.keras` path, a name from `saved_models/`
            (e.g. "resnet18_mnist"), or a run folder holding `model.keras`.

    Raises:
        TransferError: the source does not exist.
    """
    if isinstance(source, keras.Model):
        return None
    if not isinstance(source, (str, os.PathLike)):
        raise TransferError(
            f"source must be a .keras file, a saved_models/ name, a run folder or a keras.Model; "
            f"got {type(source).__name__}.")
    text = os.fspath(source)
    if os.path.isdir(text):
        path = os.path.join(text, "model.keras")
        if not os.path.isfile(path):
            raise TransferError(f"source folder {text!r} holds no model.keras: it is not a "
                                "finished run folder of `kerascnn train` or `kerascnn finetune`.")
        return path
    if os.path.isfile(text):
        return text
    shipped = os.path.join(SAVED_MODELS, f"{text}.keras")
    if os.sep not in text and os.path.isfile(shipped):
        return shipped
    names = sorted(f[:-6] for f in os.listdir(SAVED_MODELS) if f.endswith(".keras")) \
        if os.path.isdir(SAVED_MODELS) else []
    network = applications.qualified(text)
    hint = (f" For keras.applications' network, name it {network!r}." if network else "")
    raise TransferError(f"source {text!r} does not exist: give a .keras file, a run folder, "
                        f"keras.applications.NAME or one of saved_models/: "
                        f"{', '.join(names) or 'none found'}.{hint}")


def load_source(source, *, safe_mode=True, weights=None):
    """Loads a fine-tuning source and describes where it came from.

    Files load with `safe_mode=True` unless told otherwise: a Lambda layer would run code
    stored in the file.

    Args:
        source: see `resolve_source`, or a keras.applications network,
            "keras.applications.NAME" or "keras.applications.NAME(key=value, ...)".
        safe_mode: Keras' safe mode; False only for files from a trusted source.
        weights: a keras.applications source's weights: "imagenet" (None: the default) or a
            weights file path; other sources bring their own.

    Returns:
        (model, provenance): the keras.Model (uncompiled) and a JSON-ready dict (path,
        SHA-256, size, and the manifest shipped beside a saved_models/ file or a run folder;
        for keras.applications the network, its weights' origin and its preprocessing).

    Raises:
        TransferError: a missing, truncated or corrupt file, a Lambda layer in safe mode, a
            custom layer whose module is not imported; a keras.applications name, argument or
            weights that cannot be used (ImageNet weights that cannot be downloaded: the
            file, its URL, Keras' cache and `weights=PATH`), found before anything is built
            where they can be.
    """
    if applications.is_application(source):
        try:
            return applications.load(source, weights)
        except InputError as error:
            raise TransferError(str(error)) from None
    if weights is not None:
        raise TransferError(
            f"weights={weights!r} is for keras.applications sources (e.g. "
            "'keras.applications.MobileNetV2'); a file, saved model, run folder or keras.Model "
            "brings its own weights.")
    path = resolve_source(source)
    if path is None:
        _check_built(source)
        return source, {"kind": "keras.Model", "name": source.name,
                        "parameters": int(source.count_params()),
                        "weights_sha256": weights_digest(source)}
    config = _read_config(path)
    if safe_mode:
        _refuse_lambda(config, path)
    try:
        model = keras.models.load_model(path, safe_mode=safe_mode, compile=False)
    except (TypeError, ValueError) as error:
        missing = _MISSING_CLASS.search(str(error))
        if missing:
            raise TransferError(_missing_class_message(path, missing.group(1), config)) from None
        raise TransferError(f"{path} could not be loaded: {str(error).splitlines()[0]}") from None
    return model, _provenance(path)


def _check_built(model):
    """Refuses a model with no inputs yet (a keras.Sequential made without keras.Input)."""
    try:
        model.inputs  # noqa: B018  (raises on a Sequential that was never built)
    except (AttributeError, ValueError):
        raise TransferError(
            f"{model.name!r} is not built: it has no input shape yet, so its layers cannot be "
            "rebuilt for new data. Start it with keras.Input(shape) (or pass input_shape to "
            "its first layer), or call model.build((None, *shape)) before fine-tuning.") \
            from None


def weights_digest(model):
    """The SHA-256 of a model's weights (names, shapes and values): what a keras.Model source
    is, for a fine-tune's fingerprint."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{variable.path} {value.shape} {value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _read_config(path):
    """The model config stored in a `.keras` zip, after checking the archive is whole."""
    problem = f"{path} is not a readable .keras file (truncated or corrupt)"
    if not zipfile.is_zipfile(path):
        raise TransferError(f"{problem}: it is not a zip archive. Save it again with model.save().")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise TransferError(f"{problem}: member {bad} fails its checksum.")
            if "config.json" not in archive.namelist():
                raise TransferError(f"{problem}: it holds no config.json.")
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError) as error:
        raise TransferError(f"{problem}: {error}.") from None


def _refuse_lambda(config, path):
    lambdas = [c.get("config", {}).get("name", "?") for c in config_objects(config)
               if c["class_name"] == "Lambda"]
    if lambdas:
        raise TransferError(
            f"{path} holds Lambda layer(s) {', '.join(lambdas)}: loading one runs Python code "
            "stored in the file, which could do anything on this machine. Only if you trust "
            "its origin, pass safe_mode=False (kerascnn finetune --no-safe-mode).")


def _missing_class_message(path, name, config):
    entries = [c for c in config_objects(config)
               if c["class_name"] == name or c.get("registered_name") == name]
    module = next((c.get("module") for c in entries
                   if c.get("module") and not c["module"].startswith("keras")), None)
    registered = next((c["registered_name"] for c in entries if c.get("registered_name")
                       and c["registered_name"] != name), None)
    fix = (f"add `import {module}` before fine-tuning" if module
           else "import the module that defines it (registered with "
                "keras.saving.register_keras_serializable)")
    known = f" (registered as {registered!r})" if registered else ""
    return f"{path} uses the custom layer {name!r}{known}, which is not registered: {fix}."


def _provenance(path):
    path = os.path.abspath(path)
    info = {"kind": ".keras file", "path": path, "sha256": sha256_file(path),
            "bytes": os.path.getsize(path)}
    folder = os.path.dirname(path)
    for manifest in (path[:-len(".keras")] + ".json", os.path.join(folder, "run.json"),
                     os.path.join(folder, "finetune.json")):
        if os.path.isfile(manifest):
            with open(manifest) as f:
                info["manifest"] = {"file": os.path.basename(manifest), **json.load(f)}
            break
    return info
