"""Head surgery: find a network's classifier, rebuild it for new classes, carry every other weight.

The network is edited as its Keras config (so nested models, kerascnn's Preprocessing wrapper,
GoogLeNet's auxiliary heads and keras.applications-style heads are all plain data), rebuilt
with `from_config`, and the source's weights are copied layer by layer. Every weighted layer
ends in the report as "kept" (copied), "replaced" (a classifier, freshly initialised),
"adapted" (first convolution or input statistics converted to another channel count) or
"skipped" (shapes differ: freshly initialised).
"""

import copy

import keras
import numpy as np

from kerascnn.compat import safe_mode_scope
from kerascnn.data.preprocessing import Preprocessing, split_network
from kerascnn.errors import InputError
from kerascnn.transfer import channels
from kerascnn.transfer.source import TransferError

# Layers a classifier's output may pass through on its way out (no weights, one input).
_PASS_THROUGH = ("Activation", "Softmax", "Reshape", "Flatten", "Dropout", "ReLU",
                 "InputLayer")
_FEATURE_ENDS = ("Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                 "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
                 "GlobalMaxPooling3D")


def _producers(backbone):
    """Maps id(output tensor) -> the layer that produced it."""
    found = {}
    for layer in backbone.layers:
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a shared layer has no single output
            continue
        for tensor in keras.tree.flatten(outputs):
            found[id(tensor)] = layer
    return found


def _inputs_of(layer):
    try:
        return keras.tree.flatten(layer.input)
    except (AttributeError, ValueError):
        return []


def _back_from(layer, producers):
    """Yields `layer` and the layers before it, back along single inputs (a layer with none
    or several ends the walk)."""
    while layer is not None:
        yield layer
        inputs = _inputs_of(layer)
        layer = producers.get(id(inputs[0])) if len(inputs) == 1 else None


def _back_from_outputs(model):
    """Per output of the backbone, its layers from the output back (`_back_from`)."""
    _, backbone = split_network(model)
    producers = _producers(backbone)
    return [_back_from(producers.get(id(output)), producers) for output in backbone.outputs]


def find_classifiers(model):
    """Returns the names of the classifier layers of a model's backbone, one per output.

    The classifier of an output is the last layer with weights on its way (a Dense or a 1×1
    convolution as in keras.applications' MobileNet), reached through weightless layers only.

    Raises:
        TransferError: an output with no such layer (features, not classes).
    """
    _, backbone = split_network(model)
    producers = _producers(backbone)
    names = []
    for output in backbone.outputs:
        layer = _classifier_of(producers.get(id(output)), producers)
        if layer is None or len(output.shape) != 2:
            raise TransferError(
                f"{model.name!r} has no classification head: its output "
                f"{tuple(output.shape)} comes from no Dense or 1×1 convolution layer. Build it "
                "with include_top=True, or use kerascnn.extract_features for its features.")
        names.append(layer.name)
    return names


def _classifier_of(layer, producers):
    """The first layer with weights back from `layer` through weightless pass-through layers,
    or the 1×1 convolution behind a global average pooling; None when there is none."""
    for layer in _back_from(layer, producers):
        if layer.weights:
            return layer
        kind = type(layer).__name__
        if kind.startswith("GlobalAveragePooling"):
            # A convolutional classifier averaged over positions (SqueezeNet's conv10).
            return _conv_classifier(producers.get(id(_inputs_of(layer)[0])), producers)
        if kind not in _PASS_THROUGH:
            return None
    return None


def _conv_classifier(layer, producers):
    """The 1×1 convolution behind weightless layers (activations, dropout), or None."""
    layer = next((l for l in _back_from(layer, producers)
                  if l.weights or type(l).__name__ not in _PASS_THROUGH), None)
    kernel = getattr(layer, "kernel_size", None)
    return layer if kernel is not None and set(kernel) == {1} else None


def head_path(model):
    """Returns (feature tensor, head layer names) of the backbone's main output.

    The feature tensor is what the main classifier's head starts from: the input of its
    global pooling or Flatten layer, else the classifier's input. Head layers are the
    backbone's layers that do not feed that tensor (the classifier, its pooling and hidden
    layers, and auxiliary heads).
    """
    _, backbone = split_network(model)
    producers = _producers(backbone)
    classifier = backbone.get_layer(find_classifiers(model)[0])
    tensor = _inputs_of(classifier)[0]
    for layer in _back_from(producers.get(id(tensor)), producers):
        inputs = _inputs_of(layer)
        if type(layer).__name__ in _FEATURE_ENDS and len(inputs) == 1:
            tensor = inputs[0]
            break
    base = {layer.name for layer in keras.Model(backbone.inputs, tensor).layers}
    head = [l.name for l in backbone.layers if l.name not in base]
    return tensor, head


def _layer_configs(config):
    """Yields every layer config dict (with "class_name" and "config") in a model config."""
    for layer in config.get("layers", []):
        yield layer
        if "layers" in layer.get("config", {}):
            yield from _layer_configs(layer["config"])


def _strip_build_configs(config):
    for layer in _layer_configs(config):
        layer.pop("build_config", None)


def rebuild(model, *, classes=None, input_shape=None, input_channels=None, layer_classes=None,
            linear_head=False, softmax_head=False, safe_mode=True):
    """Returns a fresh copy of `model` with a new head, input or layer classes (no weights).

    Args:
        model: a functional or Sequential keras.Model.
        classes: new number of classes for every classifier (None keeps them), or of
            regression targets with `linear_head`.
        linear_head: end every output in its classifier's linear map, a regressor's head:
            the classifiers' own activation and the activation layers (Softmax, Activation)
            between them and the outputs become linear.
        softmax_head: end every output in class probabilities, a classifier's head: an
            output that ends linear (a regressor's head, a linear Activation after its
            classifier) gets a softmax. Outputs that already end in a softmax are unchanged.
        input_shape: per-example shape of the raw inputs of a model with Preprocessing.
        input_channels: channels the backbone takes (None keeps them).
        layer_classes: {(module, class_name): layer class} to swap layer types, e.g.
            BatchNormalization for kerascnn's fixed-statistics variant.
        safe_mode: Keras' safe mode for rebuilding: False lets a Lambda layer (whose code
            the caller trusts) be rebuilt.

    Raises:
        TransferError: a subclassed model, whose structure is code rather than config.
    """
    if linear_head and softmax_head:
        raise InputError("a head is linear or a softmax, not both.")
    if not hasattr(model, "get_config") or "layers" not in (model.get_config() or {}):
        raise TransferError(
            f"{model.name!r} is a subclassed keras.Model; head surgery needs a functional or "
            "Sequential model (its layers as config).")
    config = copy.deepcopy(model.get_config())
    _strip_build_configs(config)
    head = _HeadEdit(model, classes, linear_head, softmax_head)
    inputs = _InputEdit(split_network(model)[0], input_shape, input_channels)
    for layer in _layer_configs(config):
        if not head.edit(layer) and not inputs.edit(layer):
            _swap_class(layer, layer_classes or {})
    with safe_mode_scope(safe_mode):
        return model.__class__.from_config(config)


class _HeadEdit:
    """`rebuild`'s edits of the head: the classifiers' units and activation, the Reshape
    layers after them, and the activation layers on the way to the outputs."""

    def __init__(self, model, classes, linear, softmax):
        self.classes, self.linear = classes, linear
        self.classifiers = set(find_classifiers(model)) if classes or linear else set()
        self.reshapes = _head_reshapes(model) if classes else set()
        self.activations = _output_activations(model) if linear else set()
        self.to_softmax = _linear_ends(model) if softmax else set()

    def edit(self, layer):
        """Edits a layer config in place; True when it replaced the layer whole (an output's
        activation layer made linear), which nothing else then edits."""
        inner = layer["config"]
        name = inner.get("name")
        if name in self.activations:
            _replace(layer, keras.layers.Activation("linear", name=name))
            # A Softmax's call takes a mask argument, an Activation's does not.
            for node in layer.get("inbound_nodes", []):
                if isinstance(node, dict):
                    node.get("kwargs", {}).pop("mask", None)
            return True
        if name in self.classifiers and self.linear:
            inner["activation"] = "linear"
        if name in self.to_softmax:
            inner["activation"] = "softmax"
        if name in self.classifiers and self.classes:
            inner["units" if "units" in inner else "filters"] = self.classes
        elif name in self.reshapes:
            inner["target_shape"] = list(inner["target_shape"][:-1]) + [self.classes]
        return False


class _InputEdit:
    """`rebuild`'s edits of the inputs: the raw inputs' shape of a model with Preprocessing,
    and the channel count the backbone takes."""

    def __init__(self, preprocessing, input_shape, input_channels):
        self.preprocessing = preprocessing
        self.input_shape, self.channels = input_shape, input_channels
        self.first = True  # the next InputLayer is the model's own (the raw inputs)

    def edit(self, layer):
        """Edits a layer config in place; True when it gave the raw inputs their shape (the
        first InputLayer of a model with Preprocessing), which nothing else then edits."""
        inner, kind = layer["config"], layer["class_name"]
        if kind == "InputLayer" and self.first and self.preprocessing is not None \
                and self.input_shape:
            inner["batch_shape"] = [None, *self.input_shape]
            self.first = False
            return True
        if self.channels and kind == "InputLayer":
            inner["batch_shape"] = list(inner["batch_shape"][:-1]) + [self.channels]
        if self.channels and isinstance(self.preprocessing, Preprocessing) and \
                inner.get("name") == self.preprocessing.name and inner.get("target_shape"):
            inner["target_shape"] = list(inner["target_shape"][:-1]) + [self.channels]
        return False


def _swap_class(layer, layer_classes):
    """Makes a layer config the class `layer_classes` maps its class to, if any."""
    for (module, class_name), new in layer_classes.items():
        if layer["class_name"] == class_name and layer.get("module") in (module, None):
            _replace(layer, new.from_config(layer["config"]))
            return


def _replace(layer, new):
    """Makes a layer config describe the Keras layer `new`: its class and config."""
    serialized = keras.saving.serialize_keras_object(new)
    layer.update({k: serialized[k] for k in ("module", "class_name", "registered_name",
                                             "config")})


def _linear_ends(model):
    """Names of the layers to give a softmax so that every output ends in one: per output,
    its linear Activation layer nearest the output, else its classifier when it is linear;
    nothing for an output that already ends in a softmax (or another activation)."""
    classifiers = set(find_classifiers(model))
    names = set()
    for path in _back_from_outputs(model):
        for layer in path:
            kind = type(layer).__name__
            activation = getattr(layer, "activation", None)
            activation = getattr(activation, "__name__", activation)
            if kind in ("Softmax", "ReLU") or (
                    kind == "Activation" and activation != "linear"):
                break  # the output already ends in an activation of its own
            if kind == "Activation" or layer.name in classifiers:
                if activation in ("linear", None):
                    names.add(layer.name)
                break
    return names


def _output_activations(model):
    """Names of the activation layers between the classifiers and the outputs."""
    classifiers = set(find_classifiers(model))
    names = set()
    for path in _back_from_outputs(model):
        for layer in path:
            if layer.name in classifiers:
                break
            if type(layer).__name__ in ("Activation", "Softmax", "ReLU"):
                names.add(layer.name)
    return names


def _head_reshapes(model):
    """Reshape layers after a classifier whose target ends with the class count."""
    _, backbone = split_network(model)
    classifiers = set(find_classifiers(model))
    return {l.name for l in backbone.layers if type(l).__name__ == "Reshape"
            and any(c in {x.name for x in _upstream(backbone, l)} for c in classifiers)}


def _upstream(backbone, layer):
    producers = _producers(backbone)
    seen, stack = [], [layer]
    while stack:
        current = stack.pop()
        for tensor in _inputs_of(current):
            parent = producers.get(id(tensor))
            if parent is not None and parent not in seen:
                seen.append(parent)
                stack.append(parent)
    return seen


def flat_layers(model, prefix=""):
    """Yields (qualified name, layer) for every layer, nested models expanded."""
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from flat_layers(layer, f"{name}/")
        else:
            yield name, layer


def transfer_weights(source, target, *, replaced=(), first_conv=None):
    """Copies the source's weights into the rebuilt target and reports what happened.

    Args:
        source, target: the original and the rebuilt model (same layer structure).
        replaced: names of the classifier layers, which keep their fresh initialisation.
        first_conv: name of the first convolution, whose kernel is adapted when the input
            channels changed.

    Returns:
        A list of report rows: {"layer", "status", "weights", "parameters", "note"}, one per
        layer with weights.
    """
    rows = []
    for (name, old), (_, new) in zip(flat_layers(source), flat_layers(target)):
        if not new.weights:
            continue
        shapes = [f"{w.name} {tuple(w.shape)}" for w in new.weights]
        parameters = int(sum(np.prod(w.shape) for w in new.weights))
        old_values = [np.asarray(w) for w in old.weights]
        if old.name in replaced:
            old_shapes = ", ".join(str(v.shape) for v in old_values)
            rows.append(_row(name, "replaced", shapes, parameters,
                             f"new classifier (was {old_shapes})"))
            continue
        if len(old_values) != len(new.weights):
            rows.append(_row(name, "skipped", shapes, parameters,
                             f"{len(old_values)} weights in the source, {len(new.weights)} here"))
            continue
        notes, status = [], "kept"
        values = []
        for value, variable in zip(old_values, new.weights):
            if value.shape == tuple(variable.shape):
                values.append(value)
            elif old.name == first_conv and variable.name == "kernel":
                values.append(channels.adapt_kernel(value, variable.shape[-2]))
                status = "adapted"
                notes.append(f"kernel {value.shape} -> {tuple(variable.shape)}")
            elif isinstance(new, Preprocessing):
                values.append(channels.adapt_statistics(value, tuple(variable.shape)))
                status = "adapted"
                notes.append(f"{variable.name} {value.shape} -> {tuple(variable.shape)}")
            else:
                values = None
                break
        if values is None:
            rows.append(_row(name, "skipped", shapes, parameters, "shapes differ"))
            continue
        for value, variable in zip(values, new.weights):
            variable.assign(value)
        if isinstance(new, Preprocessing):
            new.is_adapted = True
        rows.append(_row(name, status, shapes, parameters, "; ".join(notes)))
    return rows


def _row(layer, status, weights, parameters, note=""):
    return {"layer": layer, "status": status, "weights": weights, "parameters": parameters,
            "note": note}


def report_table(rows):
    """The weight report as a text table (one line per weighted layer) and a total line."""
    width = max([len(r["layer"]) for r in rows] + [5])
    lines = [f"{'layer':{width}s}  {'status':8s}  {'params':>9s}  note"]
    lines += [f"{r['layer']:{width}s}  {r['status']:8s}  {r['parameters']:9,d}  {r['note']}"
              for r in rows]
    totals = {}
    for r in rows:
        count, params = totals.get(r["status"], (0, 0))
        totals[r["status"]] = (count + 1, params + r["parameters"])
    lines.append("total: " + ", ".join(f"{s} {c} layers ({p:,} weights)"
                                        for s, (c, p) in totals.items()))
    return "\n".join(lines)


def first_convolution(model):
    """Name of the backbone's first layer with a convolution kernel (channels on axis -2)."""
    _, backbone = split_network(model)
    for layer in backbone.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) >= 3:
            return layer.name
    return None
