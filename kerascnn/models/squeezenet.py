"""SqueezeNet 1.0 and 1.1 (Iandola et al., 'SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size', 2016).

SqueezeNet 1.0 is Table 1 of the paper; 1.1 is the revision published with the released
model (github.com/forresti/SqueezeNet, SqueezeNet_v1.1): a 3×3/2 first convolution of 64
filters and the pools moved earlier, 2.4× less computation for the same accuracy. As in that
release and torchvision, the max-pools are 3×3/2 in ceil mode, convolutions keep their biases
(no normalisation), the classifier is dropout 0.5, a 1×1 convolution to the classes with ReLU,
then global average pooling. Parameter counts: 1,248,424 (1.0) and 1,235,496 (1.1), as
torchvision's squeezenet1_0 and squeezenet1_1.
"""

import keras

from kerascnn.layers import factories
from kerascnn.layers.blocks import PLAIN_CONV_KINDS, conv_norm_act
from kerascnn.layers.convolution import Window, ceil_max_pool, global_pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

# Rows: ("conv", filters, kernel, stride), ("pool",) or ("fire", squeeze, expand 1×1,
# expand 3×3); fire modules are numbered from 2 as in the paper.
SQUEEZENET_1_0 = (
    ("conv", 96, 7, 2), ("pool",),
    ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("fire", 32, 128, 128), ("pool",),
    ("fire", 32, 128, 128), ("fire", 48, 192, 192), ("fire", 48, 192, 192),
    ("fire", 64, 256, 256), ("pool",),
    ("fire", 64, 256, 256),
)
SQUEEZENET_1_1 = (
    ("conv", 64, 3, 2), ("pool",),
    ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("pool",),
    ("fire", 32, 128, 128), ("fire", 32, 128, 128), ("pool",),
    ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256),
    ("fire", 64, 256, 256),
)
POOL_SIZE, POOL_STRIDES = 3, 2


def _names(table):
    """The layer name of each row: conv1, pool1.., fire2.. (the paper's numbering)."""
    names, fire, pool = [], 1, 0
    for row in table:
        if row[0] == "conv":
            names.append("conv1")
        elif row[0] == "pool":
            pool += 1
            names.append(f"pool{fire}")
        else:
            fire += 1
            names.append(f"fire{fire}")
    return names


def fire_module(x, squeeze, expand1x1, expand3x3, *, name, conv_kind="standard", **options):
    """A fire module (Fig. 1): a 1×1 squeeze, then 1×1 and 3×3 expands, concatenated.

    Args:
        x: channels-last input (1D, 2D or 3D).
        squeeze, expand1x1, expand3x3: the filters of the three convolutions.
        name: base name (e.g. "fire2").
        conv_kind: kind of the 3×3 expand (one of PLAIN_CONV_KINDS).
        **options: norm, activation and padding_mode of every convolution.

    Returns:
        The expands concatenated: expand1x1 + expand3x3 channels.
    """
    x = conv_norm_act(x, squeeze, 1, name=f"{name}_squeeze1x1", **options)
    left = conv_norm_act(x, expand1x1, 1, name=f"{name}_expand1x1", **options)
    right = conv_norm_act(x, expand3x3, 3, name=f"{name}_expand3x3", kind=conv_kind, **options)
    return keras.layers.Concatenate(name=f"{name}_concat")([left, right])


def windows(table, *, padding_mode):
    """The windows of a SqueezeNet along one axis: the 'valid' first convolution, the
    ceil-mode pools and the fire modules' 3×3 expands."""
    out = []
    for name, row in zip(_names(table), table):
        if row[0] == "conv":
            out.append(Window(name, row[2], row[3]))
        elif row[0] == "pool":
            out.append(Window(name, POOL_SIZE, POOL_STRIDES, "ceil"))
        else:
            out.append(Window(f"{name}_expand3x3", 3, 1, "same", padding_mode))
    return out


def SqueezeNet(
    table,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="relu",
    norm="none",
    padding_mode="zeros",
    conv_kind="standard",
    width_multiplier=1.0,
    dropout=0.5,
    spatial_dropout=0.0,
):
    """Builds a SqueezeNet: a convolution, fire modules and ceil-mode pools, a convolutional classifier.

    Args:
        table: the rows of the network (see SQUEEZENET_1_0).
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, padding_mode, conv_kind, width_multiplier, dropout,
            spatial_dropout: as in `squeezenet1_0`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(table, padding_mode=padding_mode),
        check=lambda: factories.check_choice(conv_kind, PLAIN_CONV_KINDS, "conv_kind"),
        activation=activation, norm=norm, padding_mode=padding_mode,
        width_multiplier=width_multiplier, dropout=dropout, spatial_dropout=spatial_dropout,
    )
    options = dict(norm=norm, activation=activation, padding_mode=padding_mode)
    for layer_name, row in zip(_names(table), table):
        if row[0] == "conv":
            x = conv_norm_act(x, base.scaled(row[1], width_multiplier), row[2], name=layer_name,
                              strides=row[3], padding="valid", **options)
        elif row[0] == "pool":
            x = ceil_max_pool(x, POOL_SIZE, POOL_STRIDES, name=layer_name)
        else:
            x = fire_module(x, *(base.scaled(n, width_multiplier) for n in row[1:]),
                            name=layer_name, conv_kind=conv_kind, **options)
            x = factories.spatial_dropout(x, spatial_dropout, f"{layer_name}_spatial_dropout")
    if include_top:
        x = factories.dropout(x, dropout, "drop9")
        x = conv_norm_act(x, classes, 1, name="conv10", norm="none", activation=activation)
        x = global_pool(x, "avg", "avg_pool")
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling:
        x = global_pool(x, pooling, "pool")
    return base.finish(inputs, x, name, weights)


def _register(version):
    return register_model(
        default_input_shape=(224, 224, 3),
        paper="Iandola et al., 'SqueezeNet: AlexNet-level accuracy with 50x fewer parameters "
        "and <0.5MB model size', 2016, " + (
            "Table 1" if version == "1.0" else "SqueezeNet v1.1 of the authors' release"),
    )


@_register("1.0")
@base.variant(SqueezeNet)
def squeezenet1_0(**arguments):
    """SqueezeNet 1.0: a 96 7×7/2 convolution and eight fire modules (Table 1); 1,248,424 parameters.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        activation: activation after every convolution, the classifier's included (ReLU).
        norm: normalisation after every convolution but the classifier ("none" in the paper).
        padding_mode: padding of the 3×3 expands: "zeros", "reflect" or "replicate".
        conv_kind: kind of the 3×3 expands, one of PLAIN_CONV_KINDS.
        width_multiplier: scales every convolution but the classifier.
        dropout: dropout before the classifier convolution (0.5 in the paper).
        spatial_dropout: rate of whole maps dropped after each fire module.

    Returns:
        A `keras.Model`.
    """
    return SqueezeNet(SQUEEZENET_1_0, (224, 224, 3), **arguments)


@_register("1.1")
@base.variant(SqueezeNet)
def squeezenet1_1(**arguments):
    """SqueezeNet 1.1: a 64 3×3/2 convolution, earlier pools (the authors' v1.1); 1,235,496 parameters.

    Args: as `squeezenet1_0`.
    """
    return SqueezeNet(SQUEEZENET_1_1, (224, 224, 3), **arguments)
