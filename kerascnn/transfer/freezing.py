"""Layer groups (stem, stages, head) and the phases of a fine-tune: what is trainable when.

kerascnn models are grouped by their architecture's own layer names (ResNet's conv2_* ...
conv5_*, VGG's block1_* ... , GoogLeNet's inception_3* ...); any other network by layer
order, a new stage starting where the spatial size of the maps changes. The head is every
layer that does not feed the features its classifier pools (see `surgery.head_path`).
"""

import dataclasses
import re

import keras

from kerascnn.data.preprocessing import split_network
from kerascnn.models.registry import list_models, get_model_entry
from kerascnn.transfer import batchnorm, surgery
from kerascnn.transfer.source import TransferError

HEAD = "head"
FREEZE_MODES = ("base", "none", "gradual", "all")
# family -> [(name pattern, group)]; "{}" takes the pattern's group. Unmatched layers join the
# group of the layer before them.
STAGE_PATTERNS = {
    "lenet": [(r"^(?:conv|pool)(\d+)", "conv{}")],
    "alexnet": [(r"^(?:conv|lrn|pool)(\d+)", "conv{}")],
    "vgg": [(r"^block(\d+)_", "block{}")],
    "resnet": [(r"^(?:conv|pool)1(?:_|$)", "stem"), (r"^conv(\d+)_", "conv{}")],
    "densenet": [(r"^(?:conv|pool)1(?:_|$)", "stem"), (r"^(?:conv|pool)(\d+)_", "conv{}")],
    "googlenet": [(r"^(?:conv|pool)[12](?:_|$)", "stem"), (r"^inception_(\d)", "inception_{}")],
    "xception": [(r"^block(\d+)_", "block{}")],
    "mobilenet": [(r"^conv1(?:_|$)", "stem"), (r"^conv_(?:dw|pw|pad)_(\d+)", "block{}")],
    "convnext": [(r"^stem", "stem"), (r"^stage(\d+)", "stage{}")],
    "resnet_v2": [(r"^(?:conv|pool)1(?:_|$)", "stem"), (r"^conv(\d+)_", "conv{}"),
                  (r"^post_", "conv5")],
    "squeezenet": [(r"^(?:conv|pool)1(?:_|$)", "stem"), (r"^(?:fire|pool)(\d+)", "fire{}")],
    "efficientnet": [(r"^stem_", "stem"), (r"^block(\d+)[a-z]_", "block{}"), (r"^top_", "top")],
    "inception_v3": [(r"^(?:conv|pool)\d", "stem"), (r"^mixed(\d+)", "mixed{}")],
}


def layer_groups(model):
    """Returns {group: [layer names]} of the backbone, base groups in order, then "head".

    Args:
        model: a keras.Model with a classification head (Preprocessing wrapper allowed).
    """
    _, backbone = split_network(model)
    _, head = surgery.head_path(model)
    head = set(head)
    patterns = _patterns(backbone.name)
    groups, current = {}, None
    last_size = None
    for layer in backbone.layers:
        if layer.name in head or not layer.weights and type(layer).__name__ == "InputLayer":
            continue
        if patterns is not None:
            current = _match(layer.name, patterns) or current
        elif layer.weights:  # padding and pooling join the stage of the layer before
            size = _spatial_size(layer)
            if current is None or (None not in (size, last_size) and size != last_size):
                current = f"stage{len(groups) + 1}"
            last_size = size if size is not None else last_size
        current = current or _first_group(patterns)
        groups.setdefault(current, []).append(layer.name)
    groups[HEAD] = [l.name for l in backbone.layers if l.name in head]
    return groups


def _patterns(name):
    if name in list_models():
        family = get_model_entry(name).family
        return [(re.compile(p), g) for p, g in STAGE_PATTERNS.get(family, [])] or None
    return None


def _match(name, patterns):
    for pattern, group in patterns:
        found = pattern.match(name)
        if found:
            return group.format(*found.groups())
    return None


def _first_group(patterns):
    return "stage1" if patterns is None else patterns[0][1].format(1)


def _spatial_size(layer):
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return None
    return tuple(shape[1:-1]) if len(shape) > 2 else None


@dataclasses.dataclass
class Phase:
    """One training phase: the groups that learn, for how many epochs, at which rate."""

    number: int
    trainable: list
    epochs: int
    learning_rate: float


def plan_phases(freeze, groups, *, head_epochs, epochs, learning_rate, unfreeze_factor):
    """Returns the list of Phases a `freeze` setting asks for.

    Args:
        freeze: "base" (head only), "none" (head, then everything), an int N (head, then the
            top N base groups too), a group name (head, then that group and every one above
            it), or "gradual" (head, then one group more per phase, fastai style).
        groups: `layer_groups` output.
        head_epochs: epochs of the head-only phase.
        epochs: epochs of each later phase.
        learning_rate: the head phase's rate; later phases use it × `unfreeze_factor`.

    Raises:
        TransferError: an N out of range or a group that does not exist.
    """
    base = [g for g in groups if g != HEAD]
    names = ", ".join(base)
    if isinstance(freeze, bool) or not isinstance(freeze, (int, str)):
        raise TransferError(f"freeze must be one of {FREEZE_MODES}, a number of stages or a stage "
                            f"name ({names}); got {freeze!r}.")
    if isinstance(freeze, str) and freeze.isdigit():
        freeze = int(freeze)
    if isinstance(freeze, int):
        if not 1 <= freeze <= len(base):
            raise TransferError(f"freeze={freeze} must count 1 to {len(base)} stages of this "
                                f"network ({names}).")
        tops = [freeze]
    elif freeze == "base":
        return [Phase(1, [HEAD], head_epochs, learning_rate)]
    elif freeze == "none":
        tops = [len(base)]
    elif freeze == "gradual":
        tops = list(range(1, len(base) + 1))
    elif freeze in base:
        tops = [len(base) - base.index(freeze)]
    else:
        raise TransferError(f"freeze={freeze!r} names no stage of this network: use one of "
                            f"{FREEZE_MODES}, a number of stages, or a stage ({names}).")
    phases = [Phase(1, [HEAD], head_epochs, learning_rate)] if head_epochs else []
    for top in tops:
        phases.append(Phase(len(phases) + 1, base[len(base) - top:] + [HEAD], epochs,
                            learning_rate * unfreeze_factor))
    return phases


def set_trainable(model, groups, trainable_groups, bn):
    """Sets every layer's `trainable` flag for a phase; returns the frozen layer names.

    BatchNorm layers follow their group, except under bn="frozen" where they never learn, at
    any depth: a base model nested in the backbone (Keras' transfer-learning guide's
    `Sequential([Input, base, pooling, Dense])`) that unfreezes keeps its BatchNorm layers
    frozen, in inference mode. Nested layers are named "base/layer".
    """
    _, backbone = split_network(model)
    model.trainable = True
    backbone.trainable = True
    learning = {name for g in trainable_groups for name in groups[g]}
    frozen = []
    for layer in backbone.layers:
        _set_trainable(layer, layer.name in learning, bn, layer.name, frozen)
    return frozen


def _set_trainable(layer, learns, bn, name, frozen):
    """Sets `layer` (and, for a nested model that learns, each of its layers) trainable or
    not; appends the names of frozen layers with weights to `frozen`."""
    if learns and isinstance(layer, keras.Model):
        layer.trainable = True
        for inner in layer.layers:
            _set_trainable(inner, True, bn, f"{name}/{inner.name}", frozen)
        return
    layer.trainable = learns and not (bn == "frozen" and batchnorm.is_batchnorm(layer))
    if layer.weights and not layer.trainable:
        frozen.append(name)
