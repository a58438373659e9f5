"""What every architecture shares: inputs, argument checks, the classifier head, the Model."""

import os

import keras

from kerascnn.layers import factories
from kerascnn.layers.convolution import global_pool
from kerascnn.layers.regularization import DropConnectDense

POOLINGS = (None, "avg", "max")


def check_common(*, classes, pooling, classifier_activation, weights, input_shape, name):
    """Validates the keras.applications arguments before anything is built."""
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"{name}: classes (num_classes) must be a positive int; got {classes!r}.")
    factories.check_choice(pooling, POOLINGS, "pooling")
    if classifier_activation is not None:
        factories.check_activation(classifier_activation)
    if weights is not None and not (isinstance(weights, str) and os.path.isfile(weights)):
        raise ValueError(
            f"{name}: weights={weights!r} is neither None nor an existing weights file. "
            "kerascnn downloads nothing: train one, or fine-tune from saved_models/."
        )
    if input_shape is not None:
        shape = tuple(input_shape)
        if not 2 <= len(shape) <= 4 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(
                f"{name}: input_shape={input_shape!r} must be positive ints, channels last: "
                "(length, channels), (height, width, channels) or (depth, height, width, channels)."
            )


def model_input(input_tensor, input_shape, default_input_shape):
    """Returns (the tensor the network starts from, the Model inputs)."""
    shape = tuple(input_shape or default_input_shape)
    if input_tensor is None:
        x = keras.Input(shape=shape)
        return x, x
    if not keras.backend.is_keras_tensor(input_tensor):
        x = keras.Input(tensor=input_tensor, shape=shape)
        return x, x
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def hidden_units(units, default, width_multiplier, name):
    """The widths of the hidden FC layers: `units` as given, or `default` scaled.

    Args:
        units: None (use `default` × `width_multiplier`), or a tuple of positive ints
            (() for no hidden layer).
        default: the paper's widths, e.g. (4096, 4096).
        width_multiplier: a positive number.
        name: the model name, for error messages.
    """
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)) \
            or width_multiplier <= 0:
        raise ValueError(
            f"{name}: width_multiplier must be a positive number; got {width_multiplier!r}."
        )
    if units is None:
        return tuple(max(1, round(u * width_multiplier)) for u in default)
    if not isinstance(units, (list, tuple)) or not all(
        isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in units
    ):
        raise ValueError(
            f"{name}: hidden_units={units!r} must be a tuple of positive ints, "
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
        x = _dense(units, activation, drop_connect, f"fc{i}")(x)
        x = factories.dropout(x, dropout, f"fc{i}_dropout")
    if not hidden_units:
        x = factories.dropout(x, dropout, "predictions_dropout")
    return _dense(classes, classifier_activation, drop_connect, "predictions")(x)


def _dense(units, activation, drop_connect, name):
    if drop_connect:
        return DropConnectDense(units, rate=drop_connect, activation=activation, name=name)
    return keras.layers.Dense(units, activation=activation, name=name)


def finish(inputs, outputs, name, weights):
    """Creates the Model and loads `weights` (a file path) when given."""
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model
