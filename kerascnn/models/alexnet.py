"""AlexNet (Krizhevsky et al., 2012) and ZFNet (Zeiler & Fergus, 2013).

AlexNet is the single-tower ("one GPU") network of Fig. 2 and section 3.5: the two-GPU split
is dropped, so convolutions 2, 4 and 5 see every map of the layer below (62,378,344
parameters at 227×227×3 with 1000 classes). `groups=2` restores the split of those three
convolutions (60,965,224 parameters, as Caffe's bvlc_alexnet); as in Caffe, the LRN
windows still span both towers. The input is 227×227: the paper's 224
does not give its 55×55 first maps under an 11×11/4 unpadded convolution.

ZFNet is Fig. 3 of Zeiler & Fergus: a 7×7/2 first layer padded by 1 (110×110 maps), a
5×5/2 unpadded second layer, and dense layers 3-5. Its "contrast normalisation across
feature maps" is AlexNet's LRN with AlexNet's constants, which the paper does not restate.

Both networks pool 3×3/2 in ceil mode, as cuda-convnet and Caffe did: a last window that
runs past the map still counts. This turns ZFNet's 110 and 26 maps into the figure's 55 and
13; AlexNet's maps (55, 27, 13) are odd, so at 227×227 it changes nothing. Weights start
from Keras' default initialisers, not the papers' Gaussians and unit biases.
"""

import collections

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.blocks import PLAIN_CONV_KINDS, conv_norm_act
from kerascnn.layers.convolution import Window, ceil_max_pool
from kerascnn.layers.local_response_normalization import LocalResponseNormalization
from kerascnn.models import base
from kerascnn.models.registry import register_model

HIDDEN_UNITS = (4096, 4096)
POOL_SIZE, POOL_STRIDES = 3, 2

# One row per convolution. padding: "valid", "same" (stride 1: AlexNet's pads of 2 and 1)
# or explicit sizes. split: the two-GPU model splits it into `groups` towers. then: what
# follows the activation, in order.
Layer = collections.namedtuple("Layer", "filters kernel strides padding split then")

ALEXNET = (
    Layer(96, 11, 4, "valid", False, ("lrn", "pool")),
    Layer(256, 5, 1, "same", True, ("lrn", "pool")),
    Layer(384, 3, 1, "same", False, ()),
    Layer(384, 3, 1, "same", True, ()),
    Layer(256, 3, 1, "same", True, ("pool",)),
)

ZFNET = (
    Layer(96, 7, 2, 1, False, ("pool", "lrn")),
    Layer(256, 5, 2, "valid", True, ("pool", "lrn")),
    Layer(384, 3, 1, "same", False, ()),
    Layer(384, 3, 1, "same", True, ()),
    Layer(256, 3, 1, "same", True, ("pool",)),
)


def max_pool(x, name):
    """Overlapping 3×3/2 max-pooling in ceil mode (cuda-convnet, Caffe)."""
    return ceil_max_pool(x, POOL_SIZE, POOL_STRIDES, name=name)


def windows(layers, *, padding_mode):
    """The windows that shrink an AlexNet's maps: the convolutions and the ceil-mode pools."""
    table = []
    for i, layer in enumerate(layers, start=1):
        table.append(Window(f"conv{i}", layer.kernel, layer.strides, layer.padding, padding_mode))
        if "pool" in layer.then:
            table.append(Window(f"pool{i}", POOL_SIZE, POOL_STRIDES, "ceil"))
    return table


def _check_options(name, conv_kind, groups, hidden_units, width_multiplier):
    """Validates the AlexNet-only options and their combination before any layer is built."""
    factories.check_choice(conv_kind, PLAIN_CONV_KINDS, "conv_kind")
    if groups > 1 and conv_kind != "standard":
        raise InputError(
            f"{name}: groups={groups} splits standard convolutions into towers; it cannot be "
            f"combined with conv_kind={conv_kind!r}. Use groups=1 or conv_kind='standard'."
        )
    base.hidden_units(hidden_units, HIDDEN_UNITS, width_multiplier, name)


def AlexNet(
    layers,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="relu",
    norm="none",
    lrn=True,
    groups=1,
    padding_mode="zeros",
    conv_kind="standard",
    width_multiplier=1.0,
    se_ratio=None,
    hidden_units=None,
    dropout=0.5,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds an AlexNet-style network: five convolutions with LRN and max-pooling, then FC.

    Args:
        layers: the convolutions, as `Layer` rows.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, lrn, groups, padding_mode, conv_kind, width_multiplier, se_ratio,
            hidden_units, dropout, spatial_dropout, drop_connect: as in `alexnet`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: an invalid option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(layers, padding_mode=padding_mode),
        check=lambda: _check_options(name, conv_kind, groups, hidden_units, width_multiplier),
        activation=activation, norm=norm, lrn=lrn, groups=groups, padding_mode=padding_mode,
        width_multiplier=width_multiplier, se_ratio=se_ratio, dropout=dropout,
        spatial_dropout=spatial_dropout, drop_connect=drop_connect,
    )
    hidden_units = base.hidden_units(hidden_units, HIDDEN_UNITS, width_multiplier, name)
    for i, layer in enumerate(layers, start=1):
        x = conv_norm_act(
            x, base.scaled(layer.filters, width_multiplier), layer.kernel, name=f"conv{i}",
            strides=layer.strides, padding=layer.padding, padding_mode=padding_mode,
            kind="standard" if i == 1 else conv_kind, groups=groups if layer.split else 1,
            norm=norm, activation=activation, se_ratio=se_ratio,
        )
        for step in layer.then:
            if step == "pool":
                x = max_pool(x, f"pool{i}")
                x = factories.spatial_dropout(x, spatial_dropout, f"pool{i}_spatial_dropout")
            elif lrn:
                x = LocalResponseNormalization(name=f"lrn{i}")(x)
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, flatten=True, hidden_units=hidden_units,
        activation=activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(227, 227, 3),
    paper="Krizhevsky, Sutskever & Hinton, 'ImageNet classification with deep convolutional "
    "neural networks', NIPS 2012, Fig. 2 and section 3.5 (single tower)",
)
@base.variant(AlexNet)
def alexnet(**arguments):
    """AlexNet: 96 11×11/4, 256 5×5, 384-384-256 3×3 convolutions, LRN, FC 4096-4096.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        activation: activation of every hidden layer (ReLU in the papers).
        norm: normalisation between each convolution and its activation ("none" in the
            papers; independent of `lrn`).
        lrn: keep the papers' local response normalisation layers.
        groups: towers of the convolutions the two-GPU AlexNet splits (2, 4 and 5);
            2 reproduces that model.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: kind of convolutions 2-5, one of `PLAIN_CONV_KINDS` (the first stays
            standard, as in MobileNet).
        width_multiplier: scales the filters and the paper's hidden units.
        se_ratio: squeeze-and-excitation after every convolution, or None.
        hidden_units: widths of the hidden fully connected layers; None means the paper's
            4096-4096 scaled by `width_multiplier`; given values are used as they are.
        dropout: dropout rate of the classifier (0.5 in the papers).
        spatial_dropout: rate of whole-map dropout after each pooling.
        drop_connect: DropConnect rate of the fully connected layers.

    Returns:
        A `keras.Model`.
    """
    return AlexNet(ALEXNET, (227, 227, 3), **arguments)


@register_model(
    default_input_shape=(224, 224, 3),
    paper="Zeiler & Fergus, 'Visualizing and understanding convolutional networks', "
    "ECCV 2014 (arXiv 1311.2901), Fig. 3",
)
@base.variant(AlexNet)
def zfnet(**arguments):
    """ZFNet: AlexNet with a 96 7×7/2 first layer and a 5×5/2 second, dense layers 3-5.

    Args: as `alexnet`.
    """
    return AlexNet(ZFNET, (224, 224, 3), **arguments)
