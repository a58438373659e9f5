"""Per-group learning rates (discriminative fine-tuning) for Keras 3, which has no parameter
groups (keras#21741).

Each of the recipe's optimizers gets a registered subclass whose update step multiplies the
learning rate by the variable's group multiplier (a multiplier of 0 skips the variable), and
whose decoupled weight decay is scaled the same way. The multipliers are part of the
optimizer's config (variable path -> multiplier), so a checkpoint of a fine-tune resumes with
them. This module is kerascnn's only use of Keras' optimizer internals (`_get_variable_index`,
`_apply_weight_decay`, `_use_weight_decay`): a Keras release that changes them breaks here.
"""

import math

import keras

from kerascnn.data.preprocessing import split_network
from kerascnn.training.optimizers import build_optimizer
from kerascnn.transfer.source import TransferError


class _GroupRates:
    """Mixin: scales the learning rate of each variable by its group's multiplier."""

    def __init__(self, *args, multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.multipliers = {str(k): float(v) for k, v in (multipliers or {}).items()}
        self._scales = []

    def build(self, variables):
        super().build(variables)
        self._scales = [self.multipliers.get(v.path, 1.0) for v in variables]

    def scale_of(self, variable):
        """The learning-rate multiplier of a trainable variable."""
        return self._scales[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        scale = self.scale_of(variable)
        if scale == 0.0:
            return
        if scale != 1.0:
            learning_rate = learning_rate * scale
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                factor = self.scale_of(variable) * self.weight_decay
                if factor:
                    rate = keras.ops.cast(self.learning_rate, variable.dtype) * factor
                    variable.assign(variable - variable * rate)

    def get_config(self):
        return {**super().get_config(), "multipliers": dict(self.multipliers)}


_CLASSES = {}


def group_rates_class(base):
    """The registered subclass of optimizer class `base` with per-variable multipliers."""
    if base not in _CLASSES:
        cls = type(f"{base.__name__}WithGroupRates", (_GroupRates, base), {
            "__doc__": f"{base.__name__} with a learning-rate multiplier per variable "
                       "(kerascnn fine-tuning's parameter groups).",
            "__module__": __name__,
        })
        _CLASSES[base] = keras.saving.register_keras_serializable(package="kerascnn")(cls)
    return _CLASSES[base]


# Keras' own optimizers are registered on import, so checkpoints holding them load anywhere
# kerascnn.transfer is imported; `register_recipe` covers kerascnn's recipe optimizers.
for _base in (keras.optimizers.SGD, keras.optimizers.Adam, keras.optimizers.AdamW,
              keras.optimizers.RMSprop):
    group_rates_class(_base)


def register_recipe(recipe):
    """Registers the group-rates class of a recipe's optimizer (before a checkpoint loads)."""
    return group_rates_class(type(build_optimizer(recipe, recipe.learning_rate, 1)))


def group_multipliers(lr_mult, group_names):
    """Returns {group: multiplier} for every group.

    Args:
        lr_mult: None (all 1), a dict {group: multiplier} (others 1), a list with one
            multiplier per group in order, or "low..high": multipliers spread geometrically
            from the first group (stem) to the head, as fastai's slice(low, high). Text as
            "stem=0,conv5=0.1" or "0,0.1,1" reads as the dict or the list.
        group_names: the groups in order, the head last.

    Raises:
        TransferError: an unknown group, a wrong count, a negative, infinite, NaN or
            malformed multiplier.
    """
    names = list(group_names)
    if lr_mult is None:
        return {g: 1.0 for g in names}
    if isinstance(lr_mult, str) and ".." not in lr_mult:  # the command line's forms
        lr_mult = _parse(lr_mult)
    if isinstance(lr_mult, str):
        try:
            low, high = (float(v) for v in lr_mult.split(".."))
        except ValueError:
            raise TransferError(f"lr_mult={lr_mult!r} must read 'low..high', e.g. '0.01..1'.") \
                from None
        if not (0 < low < math.inf and 0 < high < math.inf):
            raise TransferError(f"lr_mult={lr_mult!r}: both ends must be positive, finite "
                                "numbers.")
        steps = max(len(names) - 1, 1)
        values = [low * (high / low) ** (i / steps) for i in range(len(names))]
    elif isinstance(lr_mult, dict):
        unknown = sorted(set(lr_mult) - set(names))
        if unknown:
            raise TransferError(f"lr_mult names no group {', '.join(map(repr, unknown))}; the "
                                f"groups are {', '.join(names)}.")
        values = [lr_mult.get(g, 1.0) for g in names]
    elif isinstance(lr_mult, (list, tuple)):
        if len(lr_mult) != len(names):
            raise TransferError(f"lr_mult has {len(lr_mult)} multipliers for {len(names)} groups "
                                f"({', '.join(names)}).")
        values = list(lr_mult)
    else:
        raise TransferError(
            f"lr_mult must be None, 'low..high', a dict or a list; got {lr_mult!r}.")
    for name, value in zip(names, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value < math.inf:  # NaN fails every comparison
            raise TransferError(f"lr_mult for {name} must be a finite number >= 0; got "
                                f"{value!r}.")
    return {g: float(v) for g, v in zip(names, values)}


def _parse(text):
    """"stem=0,conv5=0.1" -> dict, "0,0.1,1" -> list."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        if all("=" in item for item in items):
            return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in items)}
        return [float(item) for item in items]
    except ValueError:
        raise TransferError(f"lr_mult={text!r} must read 'low..high', 'stem=0,conv5=0.1' or "
                            "one number per group ('0,0.1,1').") from None


def variable_multipliers(model, groups, multipliers):
    """Returns {variable path: multiplier} for the variables whose multiplier is not 1."""
    _, backbone = split_network(model)
    found = {}
    for group, layer_names in groups.items():
        if multipliers[group] == 1.0:
            continue
        for name in layer_names:
            for variable in backbone.get_layer(name).weights:
                found[variable.path] = multipliers[group]
    return found


def optimizer_factory(variable_scales):
    """An `optimizer=` factory for `kerascnn.train`: the recipe's optimizer, per-group rates."""
    def make(recipe, learning_rate, steps_per_epoch):
        base = build_optimizer(recipe, learning_rate, steps_per_epoch)
        config = {**base.get_config(), "learning_rate": learning_rate,
                  "multipliers": variable_scales}
        return group_rates_class(type(base))(**config)

    return make
