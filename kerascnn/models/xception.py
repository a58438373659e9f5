"""Xception (Chollet, 2017).

Follows keras.applications.Xception, so parameter counts, layer names (a separable convolution
`blockN_sepconvM` is split into `blockN_sepconvM_dw` and `blockN_sepconvM_pw`) and, with copied
weights, outputs are the same: no convolution biases (BatchNorm follows every convolution),
BatchNorm with Keras' epsilon 1e-3 and momentum 0.99, 'valid' 3×3 convolutions in the stem,
3×3/2 'same' max pooling. The paper's dropout of 0.5 before the classifier (Sec. 4.3), which
keras.applications leaves out, is the default here; it changes training only.
"""

from kerascnn.layers import factories
from kerascnn.layers.blocks import KERAS_BATCH_NORM, keras_conv_norm_act, residual_add
from kerascnn.layers.convolution import Window, conv, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

# The paper's separable convolutions, or one convolution of another kind in their place.
CONV_KINDS = ("depthwise_separable", "standard", "spatially_separable")

# Chollet 2017, Fig. 5: (separable-conv filters, downsampling) of each residual block.
# Entry flow: blocks 2-4; middle flow: blocks 5-12; exit flow: block 13.
XCEPTION_BLOCKS = (
    ((128, 128), True),
    ((256, 256), True),
    ((728, 728), True),
    *(((728, 728, 728), False),) * 8,
    ((728, 1024), True),
)


def xception_block(x, filters, *, name, downsample, first_activation=True,
                   conv_kind="depthwise_separable", se_ratio=0.0, drop_path=0.0,
                   spatial_dropout=0.0, norm="batch", activation="relu", padding_mode="zeros"):
    """A residual block of Fig. 5: [act, 3×3 separable conv, BN] per filter count.

    Args:
        x: input tensor.
        filters: filters of each separable convolution.
        name: block name (e.g. "block5"), prefix of its layers.
        downsample: end with 3×3/2 max pooling and project the shortcut with a 1×1/2
            convolution + BN; otherwise the shortcut is the identity.
        first_activation: start with the activation (False in block2, which follows the
            stem's activation).
        conv_kind: "depthwise_separable" (the paper) or another kind of 3×3 convolution.
        se_ratio: squeeze-and-excitation on the residual branch when > 0.
        drop_path: stochastic-depth rate of the residual branch.
        spatial_dropout: rate of whole maps dropped after the block.
        norm, activation, padding_mode: as in `Xception`.

    Returns:
        The output tensor.
    """
    shortcut = x
    if downsample:
        shortcut = conv(
            x, filters[-1], 1, strides=2, name=f"{name}_residual_conv",
            use_bias=factories.check_norm(norm) == "none",
        )
        shortcut = factories.normalization(shortcut, norm, f"{name}_residual_bn", **KERAS_BATCH_NORM)
    for i, n in enumerate(filters, start=1):
        if i > 1 or first_activation:
            x = factories.activation(x, activation, f"{name}_sepconv{i}_act")
        x = conv(
            x, n, 3, name=f"{name}_sepconv{i}", kind=conv_kind, padding_mode=padding_mode,
            use_bias=factories.check_norm(norm) == "none",
        )
        x = factories.normalization(x, norm, f"{name}_sepconv{i}_bn", **KERAS_BATCH_NORM)
    if downsample:
        x = pool(x, "max", 3, strides=2, padding="same", name=f"{name}_pool")
    x = residual_add(x, shortcut, name=name, se_ratio=se_ratio, drop_path=drop_path)
    return factories.spatial_dropout(x, spatial_dropout, f"{name}_spatial_dropout")


def windows(stem_filters, blocks, exit_filters, *, padding_mode):
    """The windows of an Xception along one axis: two 'valid' 3×3 stem convolutions (the
    first strided), then 3×3 separable convolutions and 3×3/2 pools, all "same"."""
    table = [Window("block1_conv1", 3, 2), Window("block1_conv2", 3, 1)]
    for i, (_, downsample) in enumerate(blocks, start=2):
        table.append(Window(f"block{i}_sepconv1", 3, 1, "same", padding_mode))
        if downsample:
            table.append(Window(f"block{i}_pool", 3, 2, "same"))
    exit_name = f"block{len(blocks) + 2}"
    table += [Window(f"{exit_name}_sepconv{i}", 3, 1, "same", padding_mode)
              for i in range(1, len(exit_filters) + 1)]
    return table


def Xception(
    stem_filters,
    blocks,
    exit_filters,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    width_multiplier=1.0,
    activation="relu",
    norm="batch",
    padding_mode="zeros",
    conv_kind="depthwise_separable",
    se_ratio=0.0,
    dropout=0.5,
    spatial_dropout=0.0,
    drop_connect=0.0,
    drop_path_rate=0.0,
):
    """Builds an Xception: a convolutional stem, residual separable blocks, separable convs.

    Args:
        stem_filters: filters of the two 3×3 'valid' convolutions (the first has stride 2).
        blocks: (separable-conv filters, downsampling) of each residual block.
        exit_filters: filters of the separable convolutions after the last block, each
            followed by BN and the activation.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        width_multiplier, activation, norm, padding_mode, conv_kind, se_ratio, dropout,
            spatial_dropout, drop_connect, drop_path_rate: as in `xception`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option value, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(stem_filters, blocks, exit_filters,
                                      padding_mode=padding_mode),
        check=lambda: factories.check_choice(conv_kind, CONV_KINDS, "conv_kind"),
        width_multiplier=width_multiplier, norm=norm, activation=activation,
        padding_mode=padding_mode, se_ratio=se_ratio, dropout=dropout,
        spatial_dropout=spatial_dropout, drop_connect=drop_connect, drop_path_rate=drop_path_rate,
    )
    options = {"norm": norm, "activation": activation, "padding_mode": padding_mode}
    for i, filters in enumerate(stem_filters, start=1):
        x = keras_conv_norm_act(
            x, base.scaled(filters, width_multiplier, "down"), 3, name=f"block1_conv{i}",
            strides=2 if i == 1 else 1, padding="valid", **options,
        )
    for i, (filters, downsample) in enumerate(blocks):
        x = xception_block(
            x, [base.scaled(n, width_multiplier, "down") for n in filters], name=f"block{i + 2}",
            downsample=downsample, first_activation=i > 0, conv_kind=conv_kind,
            se_ratio=se_ratio, drop_path=drop_path_rate * i / max(1, len(blocks) - 1),
            spatial_dropout=spatial_dropout, **options,
        )
    exit_name = f"block{len(blocks) + 2}"
    for i, filters in enumerate(exit_filters, start=1):
        x = keras_conv_norm_act(
            x, base.scaled(filters, width_multiplier, "down"), 3, name=f"{exit_name}_sepconv{i}",
            kind=conv_kind, **options,
        )
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(299, 299, 3),
    paper="Chollet, 'Xception: Deep learning with depthwise separable convolutions', 2017, "
    "Fig. 5",
)
@base.variant(Xception)
def xception(**arguments):
    """Xception: entry, middle (8 blocks) and exit flows of Fig. 5; 22,910,480 parameters.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        width_multiplier: every layer has int(filters × width_multiplier) filters.
        activation: the activation ("relu" in the paper).
        norm: normalisation after every convolution.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: "depthwise_separable" (the paper), or "standard" or "spatially_separable"
            for every separable convolution.
        se_ratio: squeeze-and-excitation on each residual branch when > 0.
        dropout: dropout before the classifier (0.5 in the paper, Sec. 4.3).
        spatial_dropout: rate of whole maps dropped after each residual block.
        drop_connect: DropConnect rate on the classifier weights.
        drop_path_rate: stochastic depth of the residual branches, rising linearly from 0 in
            the first block to this rate in the last (timm's rule).

    Returns:
        A `keras.Model`.
    """
    return Xception((32, 64), XCEPTION_BLOCKS, (1536, 2048), (299, 299, 3), **arguments)
