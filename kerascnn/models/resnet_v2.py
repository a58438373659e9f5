"""Pre-activation ResNet (He et al., 'Identity mappings in deep residual networks', ECCV 2016).

Each block normalises and activates its input first (Fig. 4(e), "full pre-activation"), so
the shortcut carries the raw sum from block to block and one norm-activation closes the
network. The layout follows keras.applications' ResNet50V2/101V2/152V2, whose parameter
counts these equal (ResNet50V2: 25,613,800): the stride sits on the 3×3 convolution of the
LAST block of stages 2-4 (the identity shortcut there subsamples by a 1×1/2 max-pool), the
first block of each stage projects the pre-activated input with a 1×1 convolution, the stem
convolution, the projections and the last 1×1 of each block keep their biases, BatchNorm has
epsilon 1.001e-5 and Keras' momentum 0.99, and paddings are explicit (3 for the stem, 1 for
the 3×3 convolutions and the stem pool) as in Keras.
"""


from kerascnn.layers import factories
from kerascnn.layers.blocks import residual_add
from kerascnn.layers.convolution import Window, conv, pad, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
IMAGENET = (224, 224, 3)
# keras.applications' resnet_v2 BatchNorm.
NORM_OPTIONS = {"epsilon": 1.001e-5, "momentum": 0.99}


def _norm_act(x, norm, activation, name):
    x = factories.normalization(x, norm, f"{name}_bn", **NORM_OPTIONS)
    return factories.activation(x, activation, f"{name}_{activation}")


def preactivation_block(x, filters, *, name, stride=1, project=False, norm="batch",
                        activation="relu", padding_mode="zeros", drop_path=0.0):
    """A full pre-activation bottleneck (Fig. 4(e)): norm-act, 1×1, 3×3, 1×1 to 4 × filters.

    Args:
        x: the input (the previous block's raw sum).
        filters: the stage width; the block outputs 4 × `filters` channels.
        name: base name (e.g. "conv2_block1").
        stride: stride of the 3×3 convolution.
        project: shortcut through a 1×1 convolution of the pre-activated input (first block
            of a stage); otherwise the identity, subsampled when `stride` > 1.
        norm, activation, padding_mode: as in `resnet50v2`.
        drop_path: stochastic-depth rate of the residual branch.

    Returns:
        The sum of the shortcut and the residual branch (not activated).
    """
    use_bias = factories.check_norm(norm) == "none"
    preact = _norm_act(x, norm, activation, f"{name}_preact")
    if project:
        shortcut = conv(preact, EXPANSION * filters, 1, strides=stride, name=f"{name}_0_conv")
    elif stride > 1:
        shortcut = pool(x, "max", 1, strides=stride, name=f"{name}_0_pool")
    else:
        shortcut = x
    y = conv(preact, filters, 1, name=f"{name}_1_conv", use_bias=use_bias)
    y = _norm_act(y, norm, activation, f"{name}_1")
    y = conv(y, filters, 3, strides=stride, padding=1, padding_mode=padding_mode,
             name=f"{name}_2_conv", use_bias=use_bias)
    y = _norm_act(y, norm, activation, f"{name}_2")
    y = conv(y, EXPANSION * filters, 1, name=f"{name}_3_conv")
    return residual_add(y, shortcut, name=name, drop_path=drop_path)


def _strides(blocks_per_stage):
    """(stage, block, stride) of every block: stages 2-4 end with a stride-2 block."""
    last_stage = len(blocks_per_stage) + 1
    return [
        (stage, i, 2 if i == count and stage < last_stage else 1)
        for stage, count in enumerate(blocks_per_stage, start=2)
        for i in range(1, count + 1)
    ]


def windows(blocks_per_stage, *, padding_mode):
    """The windows of a ResNet v2 along one axis: the 7×7/2 stem, the 3×3/2 pool, each
    block's 3×3 convolution (padded by 1)."""
    table = [Window("conv1_conv", 7, 2, 3, padding_mode), Window("pool1_pool", 3, 2, 1)]
    table += [Window(f"conv{stage}_block{i}_2_conv", 3, stride, 1, padding_mode)
              for stage, i, stride in _strides(blocks_per_stage)]
    return table


def ResNetV2(
    blocks_per_stage,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    norm="batch",
    activation="relu",
    padding_mode="zeros",
    width_multiplier=1.0,
    dropout=0.0,
    drop_connect=0.0,
    drop_path_rate=0.0,
):
    """Builds a pre-activation ResNet: a stem, four stages of pre-activation bottlenecks.

    Args:
        blocks_per_stage: blocks in each of the four stages.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        norm, activation, padding_mode, width_multiplier, dropout, drop_connect,
            drop_path_rate: as in `resnet50v2`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(blocks_per_stage, padding_mode=padding_mode),
        norm=norm, activation=activation, padding_mode=padding_mode,
        width_multiplier=width_multiplier, dropout=dropout, drop_connect=drop_connect,
        drop_path_rate=drop_path_rate,
    )
    x = conv(x, base.scaled(64, width_multiplier), 7, strides=2, padding=3,
             padding_mode=padding_mode, name="conv1_conv")
    rank = factories.spatial_rank(x)
    x, _ = pad(x, 1, (3,) * rank, (2,) * rank, "zeros", "pool1")
    x = pool(x, "max", 3, strides=2, name="pool1_pool")
    strides = _strides(blocks_per_stage)
    for index, (stage, i, stride) in enumerate(strides):
        x = preactivation_block(
            x, base.scaled(STAGE_WIDTHS[stage - 2], width_multiplier), name=f"conv{stage}_block{i}",
            stride=stride, project=i == 1, norm=norm, activation=activation,
            padding_mode=padding_mode, drop_path=drop_path_rate * index / max(len(strides) - 1, 1),
        )
    x = factories.normalization(x, norm, "post_bn", **NORM_OPTIONS)
    x = factories.activation(x, activation, f"post_{activation}")
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


def _register(depth):
    return register_model(
        default_input_shape=IMAGENET,
        paper="He et al., 'Identity mappings in deep residual networks', ECCV 2016, Fig. 4(e) "
        f"(full pre-activation), depths of Table 1 of He et al. 2016 ({depth}-layer)",
    )


@_register(50)
@base.variant(ResNetV2)
def resnet50v2(**arguments):
    """ResNet-50 v2 (pre-activation): 3-4-6-3 bottlenecks; 25,613,800 parameters as Keras' ResNet50V2.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        norm: the normalisation of every pre-activation and of the last one ("batch").
        activation: the activation that follows each normalisation.
        padding_mode: padding of the stem and the 3×3 convolutions.
        width_multiplier: scales every width.
        dropout: dropout before the classifier.
        drop_connect: DropConnect rate on the classifier's weights.
        drop_path_rate: stochastic depth, rising linearly from 0 in the first block to this
            rate in the last.

    Returns:
        A `keras.Model`.
    """
    return ResNetV2((3, 4, 6, 3), IMAGENET, **arguments)


@_register(101)
@base.variant(ResNetV2)
def resnet101v2(**arguments):
    """ResNet-101 v2 (pre-activation): 3-4-23-3 bottlenecks; 44,675,560 parameters as Keras'.

    Args: as `resnet50v2`.
    """
    return ResNetV2((3, 4, 23, 3), IMAGENET, **arguments)
