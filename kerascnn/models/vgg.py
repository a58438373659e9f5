"""VGG (Simonyan & Zisserman, 2015): configurations A, B, D and E of Table 1.

As in the paper: 3×3/1 convolutions padded by 1, 2×2/2 max-pooling after each of the five
stages, FC 4096-4096 with dropout 0.5 and a softmax classifier. keras.applications' VGG has no
dropout in its head; the parameter counts are the same (vgg16 138,357,544, vgg19 143,667,240).
norm="batch" gives the vgg*_bn variants, without the convolution biases that torchvision's
keep before BatchNorm.
"""

from kerascnn.layers import factories
from kerascnn.layers.blocks import PLAIN_CONV_KINDS, conv_norm_act
from kerascnn.layers.convolution import Window, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

DEFAULT_INPUT_SHAPE = (224, 224, 3)
FILTERS = (64, 128, 256, 512, 512)
HIDDEN_UNITS = (4096, 4096)


def windows(depths, *, padding_mode):
    """The windows that shrink a VGG's maps: the 2×2/2 pool ending each stage.

    The 3×3 convolutions keep the size; reflected, their one-pixel padding needs maps of 2.
    """
    table = []
    for stage, depth in enumerate(depths, start=1):
        if padding_mode == "reflect":
            table.append(Window(f"block{stage}_conv{depth}", 3, 1, "same", padding_mode))
        table.append(Window(f"block{stage}_pool", 2, 2))
    return table


def _check_options(name, conv_kind, hidden_units, width_multiplier):
    """Validates the VGG-only options before any layer is built."""
    factories.check_choice(conv_kind, PLAIN_CONV_KINDS, "conv_kind")
    base.hidden_units(hidden_units, HIDDEN_UNITS, width_multiplier, name)


def VGG(
    depths,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="relu",
    norm="none",
    padding_mode="zeros",
    conv_kind="standard",
    width_multiplier=1.0,
    se_ratio=None,
    hidden_units=None,
    dropout=0.5,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a VGG network: five stages of 3×3 convolutions and max-pooling, then FC.

    Args:
        depths: convolutions in each of the five stages (64, 128, 256, 512, 512 filters).
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, padding_mode, conv_kind, width_multiplier, se_ratio, hidden_units,
            dropout, spatial_dropout, drop_connect: as in `vgg16`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: an invalid option, or an input smaller than 32 per side.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=DEFAULT_INPUT_SHAPE,
        windows=lambda shape: windows(depths, padding_mode=padding_mode),
        check=lambda: _check_options(name, conv_kind, hidden_units, width_multiplier),
        activation=activation, norm=norm, padding_mode=padding_mode,
        width_multiplier=width_multiplier, se_ratio=se_ratio, dropout=dropout,
        spatial_dropout=spatial_dropout, drop_connect=drop_connect,
    )
    hidden_units = base.hidden_units(hidden_units, HIDDEN_UNITS, width_multiplier, name)
    for stage, (filters, depth) in enumerate(zip(FILTERS, depths), start=1):
        for i in range(1, depth + 1):
            x = conv_norm_act(
                x, base.scaled(filters, width_multiplier), 3, name=f"block{stage}_conv{i}",
                padding_mode=padding_mode, kind="standard" if stage == i == 1 else conv_kind,
                norm=norm, activation=activation, se_ratio=se_ratio,
            )
        x = pool(x, "max", 2, name=f"block{stage}_pool")
        x = factories.spatial_dropout(x, spatial_dropout, f"block{stage}_spatial_dropout")
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, flatten=True, hidden_units=hidden_units,
        activation=activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


def _register(configuration):
    return register_model(
        default_input_shape=DEFAULT_INPUT_SHAPE,
        paper="Simonyan & Zisserman, 'Very deep convolutional networks for large-scale image "
        f"recognition', ICLR 2015, Table 1, configuration {configuration}",
    )

@_register("A")
@base.variant(VGG)
def vgg11(**arguments):
    """VGG-11 (configuration A): 1, 1, 2, 2, 2 convolutions per stage.

    Args: as `vgg16`.
    """
    return VGG((1, 1, 2, 2, 2), **arguments)


@_register("B")
@base.variant(VGG)
def vgg13(**arguments):
    """VGG-13 (configuration B): 2, 2, 2, 2, 2 convolutions per stage.

    Args: as `vgg16`.
    """
    return VGG((2, 2, 2, 2, 2), **arguments)


@_register("D")
@base.variant(VGG)
def vgg16(**arguments):
    """VGG-16 (configuration D): 2, 2, 3, 3, 3 convolutions per stage.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        activation: activation of every hidden layer (ReLU in the paper).
        norm: normalisation between each convolution and its activation; "batch" gives
            the vgg*_bn networks.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: kind of every convolution but the first, one of `PLAIN_CONV_KINDS`
            (the first stays standard, as in MobileNet).
        width_multiplier: scales the filters and the paper's hidden units.
        se_ratio: squeeze-and-excitation after every convolution, or None.
        hidden_units: widths of the hidden fully connected layers; None means the paper's
            4096-4096 scaled by `width_multiplier`; given values are used as they are
            (smaller heads suit small inputs).
        dropout: dropout rate of the classifier (0.5 in the paper).
        spatial_dropout: rate of whole-map dropout after each stage.
        drop_connect: DropConnect rate of the fully connected layers.

    Returns:
        A `keras.Model`.
    """
    return VGG((2, 2, 3, 3, 3), **arguments)


@_register("E")
@base.variant(VGG)
def vgg19(**arguments):
    """VGG-19 (configuration E): 2, 2, 4, 4, 4 convolutions per stage.

    Args: as `vgg16`.
    """
    return VGG((2, 2, 4, 4, 4), **arguments)
