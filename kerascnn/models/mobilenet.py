"""MobileNet v1 (Howard et al., 2017).

Follows keras.applications.MobileNet (itself a port of TF-slim's mobilenet_v1), so parameter
counts, layer names and, with copied weights, outputs are the same:
- ReLU6 instead of the paper's ReLU (TF-slim's choice, kept by every released checkpoint);
- BatchNorm with epsilon 1e-3 and momentum 0.99 (Keras' defaults; TF-slim trained with 1e-3);
- stride-2 depthwise convolutions pad the bottom/right only (TF-slim), which equals "same" on
  even sides;
- filters = int(filters × width_multiplier) (keras' rounding), at least 1;
- dropout 1e-3 before the classifier (TF-slim's keep probability 0.999); the classifier is a
  Dense layer where keras uses an equivalent 1×1 convolution.
"""

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.blocks import keras_conv_norm_act
from kerascnn.layers.convolution import Window
from kerascnn.layers.squeeze_excite import squeeze_excite
from kerascnn.models import base
from kerascnn.models.registry import register_model

# Howard et al. 2017, Table 1: (pointwise filters, stride) of the 13 depthwise-separable blocks.
MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)

# "depthwise_separable" is the paper's block; the others replace it by one convolution of that
# kind ("standard" is the "Conv MobileNet" of Table 4). "flattened" is left out: its two stacked
# depthwise convolutions under Glorot initialisation shrink the signal below BatchNorm's epsilon.
CONV_KINDS = ("depthwise_separable", "standard", "spatially_separable")


def windows(blocks, *, padding_mode):
    """The windows of a MobileNet along one axis: the 3×3/2 stem, then each block's 3×3.

    Strided 3×3 convolutions pad the bottom/right by one (TF-slim), so their maps need 2.
    """
    table = [Window("conv1", 3, 2, "same", padding_mode)]
    for block_id, (_, strides) in enumerate(blocks, start=1):
        padding = "same" if strides == 1 else (0, 1)
        table.append(Window(f"conv_dw_{block_id}", 3, strides, padding, padding_mode))
    return table


def depthwise_separable_block(x, filters, strides, *, block_id, depth_multiplier=1,
                              conv_kind="depthwise_separable", se_ratio=0.0, spatial_dropout=0.0,
                              norm="batch", activation="relu6", padding_mode="zeros"):
    """One row pair of Table 1: 3×3 depthwise conv + BN + act, then 1×1 conv + BN + act.

    Args:
        x: input tensor.
        filters: pointwise (output) filters.
        strides: stride of the depthwise convolution.
        block_id: number of the block (layers conv_dw_<id>, conv_pw_<id>, as in keras).
        depth_multiplier: depthwise outputs per input channel.
        conv_kind: one of CONV_KINDS; other kinds than "depthwise_separable" replace the pair
            by one 3×3 convolution of that kind (named conv_<id>).
        se_ratio: squeeze-and-excitation after the depthwise stage when > 0 (as MobileNet v3).
        spatial_dropout: rate of whole maps dropped after the block.
        norm, activation, padding_mode: as in `MobileNet`.

    Returns:
        The output tensor.
    """
    options = {"norm": norm, "activation": activation, "padding_mode": padding_mode}
    # TF-slim pads stride-2 convolutions bottom/right only; keras.applications copies it.
    padding = "same" if strides == 1 else ((0, 1),) * (len(x.shape) - 2)
    if conv_kind == "depthwise_separable":
        x = keras_conv_norm_act(
            x, x.shape[-1] * depth_multiplier, 3, name=f"conv_dw_{block_id}", strides=strides,
            padding=padding, kind="depthwise", **options,
        )
        if se_ratio:
            x = squeeze_excite(x, se_ratio, f"conv_dw_{block_id}_se")
        x = keras_conv_norm_act(x, filters, 1, name=f"conv_pw_{block_id}", **options)
    else:
        x = keras_conv_norm_act(
            x, filters, 3, name=f"conv_{block_id}", strides=strides, padding=padding,
            kind=conv_kind, **options,
        )
        if se_ratio:
            x = squeeze_excite(x, se_ratio, f"conv_{block_id}_se")
    return factories.spatial_dropout(x, spatial_dropout, f"block_{block_id}_spatial_dropout")


def _check_options(name, conv_kind, depth_multiplier):
    """Validates the MobileNet-only options before any layer is built."""
    factories.check_choice(conv_kind, CONV_KINDS, "conv_kind")
    if isinstance(depth_multiplier, bool) or not (
        isinstance(depth_multiplier, int) and depth_multiplier >= 1
    ):
        raise InputError(
            f"{name}: depth_multiplier must be a positive int (depthwise outputs per channel); "
            f"got {depth_multiplier!r}."
        )


def MobileNet(
    stem_filters,
    blocks,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    width_multiplier=1.0,
    depth_multiplier=1,
    activation="relu6",
    norm="batch",
    padding_mode="zeros",
    conv_kind="depthwise_separable",
    se_ratio=0.0,
    dropout=1e-3,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a MobileNet: a 3×3/2 convolution, depthwise-separable blocks, a classifier.

    Args:
        stem_filters: filters of the first (full) convolution.
        blocks: (pointwise filters, stride) of each depthwise-separable block.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        width_multiplier, depth_multiplier, activation, norm, padding_mode, conv_kind,
            se_ratio, dropout, spatial_dropout, drop_connect: as in `mobilenet`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option value, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(blocks, padding_mode=padding_mode),
        check=lambda: _check_options(name, conv_kind, depth_multiplier),
        width_multiplier=width_multiplier, norm=norm, activation=activation,
        padding_mode=padding_mode, se_ratio=se_ratio, dropout=dropout,
        spatial_dropout=spatial_dropout, drop_connect=drop_connect,
    )
    options = {"norm": norm, "activation": activation, "padding_mode": padding_mode}
    x = keras_conv_norm_act(
        x, base.scaled(stem_filters, width_multiplier, "down"), 3, name="conv1", strides=2,
        **options,
    )
    for block_id, (filters, strides) in enumerate(blocks, start=1):
        x = depthwise_separable_block(
            x, base.scaled(filters, width_multiplier, "down"), strides, block_id=block_id,
            depth_multiplier=depth_multiplier, conv_kind=conv_kind, se_ratio=se_ratio,
            spatial_dropout=spatial_dropout, **options,
        )
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(224, 224, 3),
    paper="Howard et al., 'MobileNets: Efficient convolutional neural networks for mobile "
    "vision applications', 2017, Table 1",
)
@base.variant(MobileNet)
def mobilenet(**arguments):
    """MobileNet v1 (1.0 MobileNet-224): Table 1, 4,253,864 parameters as keras.applications.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        width_multiplier: the paper's width multiplier α (keras' `alpha`): every layer has
            int(filters × α) filters.
        depth_multiplier: depthwise outputs per input channel (keras' `depth_multiplier`;
            not the paper's resolution multiplier, which is the input size).
        activation: activation after every convolution ("relu6" as keras; the paper: "relu").
        norm: normalisation after every convolution.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: "depthwise_separable" (the paper), or "standard" or "spatially_separable"
            to replace each block by one convolution of that kind.
        se_ratio: squeeze-and-excitation after each depthwise convolution when > 0.
        dropout: dropout before the classifier (1e-3 as keras and TF-slim).
        spatial_dropout: rate of whole maps dropped after each block.
        drop_connect: DropConnect rate on the classifier weights.

    Returns:
        A `keras.Model`.
    """
    return MobileNet(32, MOBILENET_V1_BLOCKS, (224, 224, 3), **arguments)
