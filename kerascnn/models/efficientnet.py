"""EfficientNet-B0 to B7 (Tan & Le, 'EfficientNet: Rethinking model scaling for convolutional
neural networks', ICML 2019).

The baseline network of Table 1: a 3×3/2 stem, seven stages of mobile inverted bottlenecks
(MBConv: a 1×1 expansion, a depthwise k×k, squeeze-and-excitation, a linear 1×1 projection,
the identity added when shapes allow) and a 1×1 convolution to 1280 channels before pooling.
Details follow keras.applications.EfficientNetB0 (a port of the authors' TensorFlow release),
whose layer names, order and parameter count these equal (5,330,564: Keras' 5,330,571 less the
7 statistics of the Normalization layer it puts in front of the network; kerascnn models take
their inputs preprocessed):
- swish activations, BatchNorm with Keras' defaults (epsilon 1e-3, momentum 0.99), no
  convolution biases before it, and the authors' He-style fan-out initialisation;
- the squeeze-and-excitation bottleneck has max(1, round(block input filters × 0.25))
  channels (of the block's input, not of its expansion);
- strided depthwise convolutions pad as TensorFlow's "same" (the bottom/right pixel more on
  even maps), which is what Keras' explicit `correct_pad` paddings amount to;
- stochastic depth on the residual branches ("drop_connect_rate" in the release) rises from 0
  to 0.2 × 15/16 over the 16 blocks; dropout 0.2 before the classifier.
Widths scale with the release's rule: a multiple of 8, never more than 10% under the exact
product. B1-B7 scale B0 by the release's compound coefficients (section 3.3): every width by
`width_multiplier`, every stage's block count by the depth coefficient (rounded up), the input
side to the paper's resolution, and the classifier's dropout; their counts equal
keras.applications' EfficientNetB1-B7 less the same 7 statistics. Every window pads "same", so with zero padding any input size works (keras'
32×32 minimum is a generic check); reflect padding needs maps wider than the padding.
"""

import math

from kerascnn.layers import factories
from kerascnn.layers.blocks import KERAS_BATCH_NORM, conv_norm_act, residual_add
from kerascnn.layers.convolution import Window
from kerascnn.layers.squeeze_excite import squeeze_excite
from kerascnn.models import base
from kerascnn.models.registry import register_model

# Table 1, stages 2-8: (expansion, kernel, stride, output filters, blocks). Stage 1 is the
# 3×3/2 stem of 32 filters, stage 9 the 1×1 convolution to 1280 channels.
EFFICIENTNET_B0 = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_FILTERS, TOP_FILTERS = 32, 1280
# The release's compound scaling of B0: variant -> (width, depth, input side, dropout).
COMPOUND_SCALING = {
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# The release's initialisation of every convolution (He et al. 2015 on the fan-out).
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}


def deeper(table, depth):
    """`table` with every stage's block count × `depth`, rounded up as the release does."""
    return tuple((*stage[:4], math.ceil(depth * stage[4])) for stage in table)


def _scaled(variant):
    """(table, default input shape) of EfficientNet-`variant` ("b1" .. "b7")."""
    _, depth, side, _ = COMPOUND_SCALING[variant]
    return deeper(EFFICIENTNET_B0, depth), (side, side, 3)


def round_filters(filters, width_multiplier, divisor=8):
    """Returns `filters` × `width_multiplier` as the release rounds it: to a multiple of
    `divisor` (at least `divisor`), adding one more when rounding lost over 10%."""
    exact = filters * width_multiplier
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * exact else rounded


def _blocks(table, width_multiplier):
    """(name, filters in, filters out, expansion, kernel, stride) of every MBConv block;
    named block1a, block2a, block2b, ... as keras.applications."""
    blocks, filters_in = [], round_filters(STEM_FILTERS, width_multiplier)
    for stage, (expansion, kernel, stride, filters, count) in enumerate(table, start=1):
        filters_out = round_filters(filters, width_multiplier)
        for i in range(count):
            blocks.append((f"block{stage}{chr(ord('a') + i)}", filters_in, filters_out,
                           expansion, kernel, stride if i == 0 else 1))
            filters_in = filters_out
    return blocks


def windows(table, *, padding_mode):
    """The windows of an EfficientNet along one axis: the 3×3/2 stem and each block's
    depthwise convolution, all padded "same"."""
    return [Window("stem_conv", 3, 2, "same", padding_mode)] + [
        Window(f"{name}_dwconv", kernel, stride, "same", padding_mode)
        for name, _, _, _, kernel, stride in _blocks(table, 1.0)
    ]


def _conv_bn(x, filters, kernel_size, prefix, *, conv_name=None, norm, activation, **conv_options):
    """A convolution `<prefix>conv`, `<prefix>bn` and `<prefix>activation`, named as Keras."""
    return conv_norm_act(
        x, filters, kernel_size, name=conv_name or f"{prefix}conv", norm=norm,
        activation=activation, norm_name=f"{prefix}bn", activation_name=f"{prefix}activation",
        norm_options=KERAS_BATCH_NORM, kernel_initializer=CONV_INITIALIZER, **conv_options,
    )


def mbconv_block(x, filters_in, filters_out, *, name, expansion, kernel_size, stride,
                 se_ratio=0.25, drop_path=0.0, norm="batch", activation="swish",
                 padding_mode="zeros"):
    """A mobile inverted bottleneck (MBConv, Sandler et al. 2018, with Hu et al.'s SE).

    Args:
        x: channels-last input with `filters_in` channels (1D, 2D or 3D).
        filters_in, filters_out: the block's input and output widths.
        name: base name (e.g. "block2a"); layers are named as keras.applications'.
        expansion: the 1×1 expansion ratio (none when 1).
        kernel_size, stride: of the depthwise convolution.
        se_ratio: SE bottleneck width as a fraction of `filters_in`; 0 or None for none.
        drop_path: stochastic-depth rate of the residual branch.
        norm, activation, padding_mode: as in `efficientnet_b0`.

    Returns:
        The block output: the projection, plus the input when stride is 1 and widths match.
    """
    options = dict(norm=norm, padding_mode=padding_mode)
    y = x
    if expansion != 1:
        y = _conv_bn(y, filters_in * expansion, 1, f"{name}_expand_", activation=activation,
                     **options)
    y = _conv_bn(y, y.shape[-1], kernel_size, f"{name}_", conv_name=f"{name}_dwconv",
                 activation=activation, strides=stride, kind="depthwise", **options)
    if se_ratio:
        # A choice built as its own layer (PReLU, Maxout, a leaky slope) cannot sit inside
        # the SE's convolutions: there the bottleneck keeps the paper's swish.
        gate_activation = "swish" if factories.is_layer_activation(activation) else activation
        y = squeeze_excite(y, max(1, round(filters_in * se_ratio)) / y.shape[-1], f"{name}_se",
                           activation=gate_activation)
    y = _conv_bn(y, filters_out, 1, f"{name}_project_", activation=None, **options)
    if stride == 1 and filters_in == filters_out:
        return residual_add(y, x, name=name, drop_path=drop_path)
    return y


def EfficientNet(
    table,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="swish",
    norm="batch",
    padding_mode="zeros",
    width_multiplier=1.0,
    se_ratio=0.25,
    dropout=0.2,
    drop_connect=0.0,
    drop_path_rate=0.2,
):
    """Builds an EfficientNet: a 3×3/2 stem, MBConv stages, a 1×1 convolution, a classifier.

    Args:
        table: (expansion, kernel, stride, filters, blocks) of each MBConv stage.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, padding_mode, width_multiplier, se_ratio, dropout, drop_connect,
            drop_path_rate: as in `efficientnet_b0`.

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
        activation=activation, norm=norm, padding_mode=padding_mode,
        width_multiplier=width_multiplier, se_ratio=se_ratio, dropout=dropout,
        drop_connect=drop_connect, drop_path_rate=drop_path_rate,
    )
    options = dict(norm=norm, activation=activation, padding_mode=padding_mode)
    x = _conv_bn(x, round_filters(STEM_FILTERS, width_multiplier), 3, "stem_", strides=2,
                 **options)
    blocks = _blocks(table, width_multiplier)
    for index, (block, filters_in, filters_out, expansion, kernel, stride) in enumerate(blocks):
        x = mbconv_block(
            x, filters_in, filters_out, name=block, expansion=expansion,
            kernel_size=kernel, stride=stride, se_ratio=se_ratio,
            drop_path=drop_path_rate * index / len(blocks), **options,
        )
    x = _conv_bn(x, round_filters(TOP_FILTERS, width_multiplier), 1, "top_", **options)
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


_PAPER = ("Tan & Le, 'EfficientNet: Rethinking model scaling for convolutional neural networks', "
          "ICML 2019")


def _compound_variant(variant):
    """Registers EfficientNet-`variant` ("b1" .. "b7") with its input side, and gives it its
    width and dropout as defaults (COMPOUND_SCALING)."""
    width, _, side, dropout = COMPOUND_SCALING[variant]
    register = register_model(default_input_shape=(side, side, 3),
                              paper=f"{_PAPER}, Table 2 (EfficientNet-{variant.upper()})")
    defaults = base.variant(EfficientNet, width_multiplier=width, dropout=dropout)
    return lambda fn: register(defaults(fn))


@register_model(default_input_shape=(224, 224, 3), paper=f"{_PAPER}, Table 1 (EfficientNet-B0)")
@base.variant(EfficientNet)
def efficientnet_b0(**arguments):
    """EfficientNet-B0: Table 1's MBConv stages; 5,330,564 parameters (5.3M in the paper).

    Keras' EfficientNetB0 counts 7 more: the statistics of its input Normalization layer.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        activation: activation after every convolution but the projections, and in the SE
            bottleneck ("swish", the paper's SiLU; "prelu", "maxout:k" and "leaky_relu:a",
            which need a layer of their own, leave the SE bottleneck on swish).
        norm: normalisation after every convolution ("batch").
        padding_mode: padding of the stem and the depthwise convolutions: "zeros",
            "reflect" or "replicate".
        width_multiplier: scales every width, rounded to a multiple of 8 as the release
            does (the compound-scaling width coefficient).
        se_ratio: squeeze-and-excitation bottleneck as a fraction of each block's input
            filters (0.25); 0 or None for none.
        dropout: dropout before the classifier (0.2).
        drop_connect: DropConnect rate on the classifier's weights.
        drop_path_rate: stochastic depth of the residual branches, block i of n dropped with
            rate × i / n (0.2, the release's "drop_connect_rate").

    Returns:
        A `keras.Model`.
    """
    return EfficientNet(EFFICIENTNET_B0, (224, 224, 3), **arguments)


@_compound_variant("b1")
def efficientnet_b1(**arguments):
    """EfficientNet-B1: B0 1.1× deeper, 240×240 inputs; 7,856,232 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B1's width coefficient).
    """
    return EfficientNet(*_scaled("b1"), **arguments)


@_compound_variant("b2")
def efficientnet_b2(**arguments):
    """EfficientNet-B2: B0 1.1× wider and 1.2× deeper, 260×260 inputs; 9,177,562 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B2's width coefficient).
    """
    return EfficientNet(*_scaled("b2"), **arguments)


@_compound_variant("b3")
def efficientnet_b3(**arguments):
    """EfficientNet-B3: B0 1.2× wider and 1.4× deeper, 300×300 inputs; 12,320,528 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B3's width coefficient).
    """
    return EfficientNet(*_scaled("b3"), **arguments)


@_compound_variant("b4")
def efficientnet_b4(**arguments):
    """EfficientNet-B4: B0 1.4× wider and 1.8× deeper, 380×380 inputs; 19,466,816 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B4's width coefficient).
    """
    return EfficientNet(*_scaled("b4"), **arguments)


@_compound_variant("b5")
def efficientnet_b5(**arguments):
    """EfficientNet-B5: B0 1.6× wider and 2.2× deeper, 456×456 inputs; 30,562,520 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B5's width coefficient).
    """
    return EfficientNet(*_scaled("b5"), **arguments)


@_compound_variant("b6")
def efficientnet_b6(**arguments):
    """EfficientNet-B6: B0 1.8× wider and 2.6× deeper, 528×528 inputs; 43,265,136 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B6's width coefficient).
    """
    return EfficientNet(*_scaled("b6"), **arguments)


@_compound_variant("b7")
def efficientnet_b7(**arguments):
    """EfficientNet-B7: B0 2.0× wider and 3.1× deeper, 600×600 inputs; 66,658,680 parameters.

    Args: as `efficientnet_b0` (`width_multiplier` defaults to B7's width coefficient).
    """
    return EfficientNet(*_scaled("b7"), **arguments)
