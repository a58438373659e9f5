"""Search spaces: plain dicts of ranges and choices, per-family defaults, KerasTuner's form.

A space maps a hyperparameter name to
- a range `{"min": 1e-4, "max": 1e-2, "sampling": "log"}` (optional "step"; integers when
  min, max and step are all integers),
- a list of choices `["adam", "sgd"]`,
- or one value, which fixes it.
Names are Recipe fields (learning_rate, optimizer, schedule, batch_size, weight_decay,
label_smoothing, augment, ...) or options of the model's builder (dropout, width_multiplier,
norm, activation, ...). For a `build(hp)` callable, other names are passed to the builder.
"""

import dataclasses

import keras_tuner

from kerascnn.data.augment import parse_spec
from kerascnn.errors import InputError
from kerascnn.models.registry import get_model_entry, minimum_input_size
from kerascnn.training.recipes import Recipe

RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name not in ("name", "epochs"))
# Options that describe the network's interface, not its training: never tuned.
FIXED_OPTIONS = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                 "classifier_activation", "name")
# "augment" choices: off, mild, strong (rotation in degrees, translation as a fraction).
AUGMENT_CHOICES = ["none", "rotate=5,translate=0.05", "rotate=10,translate=0.1"]

COMMON_SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
    "optimizer": ["adam", "adamw", "sgd"],
    "schedule": ["cosine", "constant", "one_cycle"],
    "batch_size": [32, 64, 128],
    "weight_decay": [0.0, 1e-5, 1e-4],
    "label_smoothing": [0.0, 0.1],
    "augment": AUGMENT_CHOICES,
}
# Recipe fields that only classification has (they act on class targets): left out of a
# regression task's default space.
CLASSIFICATION_FIELDS = ("label_smoothing",)
# Per-family model options, kept where the family's builder accepts them.
FAMILY_SPACES = {
    "lenet": {"dropout": {"min": 0.0, "max": 0.5, "step": 0.1}, "width_multiplier": [1, 2, 3],
              "norm": ["none", "batch"], "activation": ["tanh", "relu"]},
    "resnet": {"dropout": {"min": 0.0, "max": 0.3, "step": 0.1}, "width_multiplier": [0.5, 1.0],
               "norm": ["batch", "group"], "activation": ["relu", "swish"]},
}
# Losses whose outputs are class scores, not probabilities: a log-loss of them means nothing.
SCORE_LOSSES = ("hinge", "squared_hinge")
GENERIC_FAMILY_SPACE = {"dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
                        "width_multiplier": [0.5, 1.0], "norm": ["batch", "none"],
                        "activation": ["relu", "swish"]}


class SpaceError(InputError):
    """A search space that names an unknown hyperparameter or holds an empty range."""


def default_space(model, task="classification"):
    """Returns the default search space (a dict) of a registry model's family.

    Args:
        model: a registry name, or None for a `build(hp)` callable (recipe fields only).
        task: "classification", or "regression" (without CLASSIFICATION_FIELDS).
    """
    common = {k: v for k, v in COMMON_SPACE.items()
              if task == "classification" or k not in CLASSIFICATION_FIELDS}
    if model is None:
        return common
    entry = get_model_entry(model)
    family = FAMILY_SPACES.get(entry.family, GENERIC_FAMILY_SPACE)
    return {**common, **{k: v for k, v in family.items() if k in entry.options}}


def tunable_names(model):
    """The hyperparameter names a registry model accepts (None: any name, for a callable)."""
    if model is None:
        return None
    options = [o for o in get_model_entry(model).options if o not in FIXED_OPTIONS]
    return RECIPE_FIELDS + tuple(options)


def hyperparameters(space, model=None, task="classification"):
    """Converts a space (dict, HyperParameters or None) to `keras_tuner.HyperParameters`.

    Args:
        space: a dict as described in this module, a `keras_tuner.HyperParameters`, or None
            for `default_space(model, task)`.
        model: the registry name the space is for (its names are checked), or None.
        task: the task of the default space.

    Returns:
        A `keras_tuner.HyperParameters`.

    Raises:
        SpaceError: an unknown name, an empty or inverted range, a step <= 0, an empty list
            of choices.
    """
    if space is None:
        space = default_space(model, task)
    if isinstance(space, keras_tuner.HyperParameters):
        _check_names([p.name for p in space.space], model)
        return space
    if not isinstance(space, dict):
        raise SpaceError(f"space must be a dict, a keras_tuner.HyperParameters or None; got {space!r}.")
    _check_names(space, model)
    hp = keras_tuner.HyperParameters()
    for name, spec in space.items():
        _declare(hp, name, spec)
    return hp


def check_space(hp, model, recipe, objective):
    """Checks every value a search could draw before any training: one line per mistake.

    Each recipe field's values (each choice, a range's ends, a fixed value) must build a
    Recipe, each "augment" value must parse, each builder option's values must pass the
    registry model's own checks (run alone, up to its input-size check: nothing is built),
    and the losses must give what the objective scores.

    Args:
        hp: the space as `keras_tuner.HyperParameters`.
        model: the registry name, or None for a `build(hp)` callable.
        recipe: the base Recipe.
        objective: the objective's name ("val_loss" scores probabilities by log-loss).

    Raises:
        SpaceError: naming the hyperparameter, the bad value and the reason.
    """
    accepted = tunable_names(model)
    for param in hp.space:
        name = param.name
        for value in _drawable(param):
            try:
                if name == "augment":
                    parse_spec(None if value in ("none", None) else value)
                elif name in RECIPE_FIELDS:
                    recipe.replace(**{name: value})
                elif accepted is not None:
                    minimum_input_size(model, **{name: value})
            except (TypeError, ValueError) as error:
                raise SpaceError(f"hyperparameter {name!r}: {name}={value!r} is refused: "
                                 f"{error}") from None
    losses = _drawable(_find(hp, "loss")) or [recipe.loss]
    if objective == "val_loss" and any(loss in SCORE_LOSSES for loss in losses):
        bad = next(loss for loss in losses if loss in SCORE_LOSSES)
        raise SpaceError(
            f"loss={bad!r} gives class scores, not probabilities, so objective='val_loss' "
            "(log-loss on the held-out folds) would rank trials meaninglessly; use "
            f"objective='val_accuracy', or leave {bad!r} out of the losses searched.")


def shared_validation_split(hp, recipe):
    """The held-out fraction that one-split searches (folds=1) and early stopping draw once
    for every trial: the space's fixed validation_split, else the recipe's.

    Raises:
        SpaceError: the space searches validation_split (more than one value).
    """
    values = set(_drawable(_find(hp, "validation_split"))) or {recipe.validation_split}
    if len(values) > 1:
        raise SpaceError(
            f"hyperparameter 'validation_split' takes {sorted(values)} here, but the part it "
            "holds out (folds=1's, early stopping's) is drawn once for the whole search; fix "
            "it (validation_split = 0.2 in the space) or leave it out of the space.")
    return values.pop()


def _find(hp, name):
    return next((p for p in hp.space if p.name == name), None)


def _drawable(param):
    """The values of `param` to check: each choice, a range's two ends, or its fixed value."""
    if param is None:
        return []
    config = param.get_config()
    if "values" in config:
        return list(config["values"])
    if "value" in config:
        return [config["value"]]
    return [config["min_value"], config["max_value"]]


def split_values(values, model):
    """Splits a trial's values into (recipe overrides, registry builder options).

    KerasTuner's own "tuner/..." values are left out ("augment": "none" is train's "off").
    For a `build(hp)` callable (model None) the other values stay with the builder's `hp`.
    """
    recipe, options = {}, {}
    accepted = tunable_names(model)
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name in RECIPE_FIELDS:
            recipe[name] = value
        elif accepted is not None:
            options[name] = value
    return recipe, options


def _check_names(names, model):
    accepted = tunable_names(model)
    if accepted is None:
        return
    unknown = sorted(n for n in names if n not in accepted)
    if unknown:
        raise SpaceError(
            f"Unknown hyperparameter {', '.join(map(repr, unknown))} for {model}; tunable names: "
            f"recipe fields {list(RECIPE_FIELDS)} and {model} options "
            f"{[n for n in accepted if n not in RECIPE_FIELDS]}."
        )


def _declare(hp, name, spec):
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"min", "max", "step", "sampling"})
        if unknown or not {"min", "max"} <= set(spec):
            raise SpaceError(
                f"range {name!r} takes keys min, max and optionally step, sampling; got {spec!r}."
            )
        low, high = spec["min"], spec["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SpaceError(f"range {name!r} needs numbers for min and max; got {spec!r}.")
        if low >= high:
            kind = "inverted" if low > high else "empty"
            raise SpaceError(
                f"range {name!r} is {kind}: min={low!r}, max={high!r}; use min < max, or a single "
                f"value to fix {name}."
            )
        step, sampling = spec.get("step"), spec.get("sampling", "linear")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                                 or not step > 0):
            raise SpaceError(
                f"range {name!r} has step={step!r}; use a step > 0 (e.g. {(high - low) / 4:g}), "
                "or leave step out for a continuous range.")
        if sampling == "log" and low <= 0:
            raise SpaceError(f"range {name!r} has log sampling and min={low!r}; use min > 0.")
        if all(isinstance(v, int) for v in (low, high)) and isinstance(step, (int, type(None))):
            hp.Int(name, low, high, step=step, sampling=sampling)
        else:
            hp.Float(name, float(low), float(high), step=step, sampling=sampling)
    elif isinstance(spec, (list, tuple)):
        if not spec:
            raise SpaceError(f"{name!r} has an empty list of choices; give at least one value.")
        if len(spec) == 1:
            hp.Fixed(name, spec[0])
        else:
            hp.Choice(name, list(spec))
    else:
        hp.Fixed(name, spec)
