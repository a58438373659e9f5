"""The trained network: the data's raw examples in, through Preprocessing, into a backbone."""

import keras

from kerascnn.data.preprocessing import Preprocessing, split_network
from kerascnn.errors import InputError
from kerascnn.layers import whitening
from kerascnn.layers.whitening import PatchWhitening
from kerascnn.models.registry import accepts_input, get_model_entry
from kerascnn.training.precision import every_layer


def network_input_shape(name, data_shape, options):
    """The input the backbone is built for: the data's own size when the model accepts it,
    else the paper's size (the Preprocessing layer resizes), with the data's channels."""
    if accepts_input(name, tuple(data_shape), **options):
        return tuple(data_shape)
    side = max(get_model_entry(name).default_input_shape[:-1])
    return (side,) * (len(data_shape) - 1) + (data_shape[-1],)


def model_options(name, recipe, options=None):
    """The builder options of model `name`, merged: the one place the recipe's meet the caller's.

    In increasing priority: the recipe's dropout / drop_path_rate (where the builder has
    them), the recipe's `model_options`, then `options`.

    Args:
        name: a registry name.
        recipe: the Recipe.
        options: the caller's builder options (`train(model_options=...)`, `--option`).

    Returns:
        A dict of builder options.

    Raises:
        ValueError: an option the builder does not take, from the recipe or the caller,
            named with the builder and its options, before anything is loaded or built.
    """
    entry = get_model_entry(name)
    accepted = [o for o in entry.options if o not in ("input_shape", "classes")]
    merged = {k: getattr(recipe, k) for k in ("dropout", "drop_path_rate")
              if getattr(recipe, k) is not None and k in accepted}
    options = dict(options or {})
    lacking = sorted(set(options) - set(accepted))
    if lacking:
        raise InputError(f"{name} has no option {', '.join(lacking)}; its options: {accepted}.")
    lacking = [k for k, _ in recipe.model_options if k not in accepted]
    if lacking:
        raise InputError(
            f"recipe {recipe.name!r} sets the model option(s) {', '.join(lacking)}, which {name} "
            f"does not take (its options: {accepted}). Use another recipe (e.g. 'quick') with "
            f"--option / model_options for {name}, or get_recipe({recipe.name!r}, "
            "model_options={}).")
    return {**merged, **dict(recipe.model_options), **options}


def has_preprocessing(model):
    """True when `model` already starts with a kerascnn Preprocessing layer."""
    return split_network(model)[0] is not None


def wrap(backbone, data, normalization):
    """Puts a Preprocessing layer, adapted on the training split only, before `backbone`.

    Args:
        backbone: a keras.Model taking normalised inputs.
        data: the kerascnn.data.Data it will be trained on.
        normalization: the Preprocessing mode.
    """
    inputs = keras.Input(tuple(data.input_shape), name="inputs")
    target = tuple(backbone.inputs[0].shape[1:])
    preprocessing = Preprocessing(
        target_shape=target, mode=normalization,
        value_range=data.value_range if normalization == "scale" else None, name="preprocessing",
    )
    preprocessing.adapt(data.x_train)
    _adapt_whitening(backbone, preprocessing, data)
    outputs = backbone(preprocessing(inputs))
    return keras.Model(inputs, outputs, name=backbone.name)


def _adapt_whitening(backbone, preprocessing, data):
    """Sets the backbone's PatchWhitening layers from training images as they reach them
    (after the preprocessing); one must take the backbone's input directly."""
    for layer in backbone.layers:
        if not isinstance(layer, PatchWhitening):
            continue
        if layer.input is not backbone.inputs[0]:
            raise InputError(f"{layer.name}: a PatchWhitening layer must take the network's "
                             "input directly to be set from the training images.")
        images = whitening.sample(data.x_train)
        layer.adapt(keras.ops.convert_to_numpy(preprocessing(images)))


def bias_paths(net):
    """The paths of the BatchNorm shifts (beta) anywhere in `net`: what a recipe's
    `bias_lr_scale` speeds up. A whitening layer's bias keeps the plain rate, as in airbench's
    ablation the recipe follows (airbench94 itself speeds it up for 3 epochs, then freezes it)."""
    return [layer.beta.path for layer in every_layer(net)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.center]
