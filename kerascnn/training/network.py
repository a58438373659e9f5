"""The trained network: the data's raw examples in, through Preprocessing, into a backbone."""

import keras

from kerascnn.data.preprocessing import Preprocessing
from kerascnn.models.registry import accepts_input, get_model_entry


def network_input_shape(name, data_shape, options):
    """The input the backbone is built for: the data's own size when the model accepts it,
    else the paper's size (the Preprocessing layer resizes), with the data's channels."""
    if accepts_input(name, tuple(data_shape), **options):
        return tuple(data_shape)
    side = max(get_model_entry(name).default_input_shape[:-1])
    return (side,) * (len(data_shape) - 1) + (data_shape[-1],)


def model_options(name, recipe, options):
    """The builder options: the recipe's dropout / drop_path_rate where the model has them."""
    accepted = get_model_entry(name).options
    merged = {k: getattr(recipe, k) for k in ("dropout", "drop_path_rate")
              if getattr(recipe, k) is not None and k in accepted}
    return {**merged, **(options or {})}


def has_preprocessing(model):
    """True when `model` already starts with a kerascnn Preprocessing layer."""
    return any(isinstance(layer, Preprocessing) for layer in model.layers[:3])


def wrap(backbone, data, normalization, mixed_precision=False):
    """Puts a Preprocessing layer, adapted on the training split only, before `backbone`.

    Args:
        backbone: a keras.Model taking normalised inputs.
        data: the kerascnn.data.Data it will be trained on.
        normalization: the Preprocessing mode.
        mixed_precision: end with a float32 cast so losses stay in float32.
    """
    inputs = keras.Input(tuple(data.input_shape), name="inputs")
    target = tuple(backbone.inputs[0].shape[1:])
    preprocessing = Preprocessing(
        target_shape=target, mode=normalization,
        value_range=data.value_range if normalization == "scale" else None, name="preprocessing",
    )
    preprocessing.adapt(data.x_train)
    outputs = backbone(preprocessing(inputs))
    if mixed_precision:  # softmax and loss in float32 (Keras' mixed-precision guide)
        outputs = keras.tree.map_structure(
            lambda t: keras.layers.Activation("linear", dtype="float32")(t), outputs)
    return keras.Model(inputs, outputs, name=backbone.name)
