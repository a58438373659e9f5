"""DenseNet-BC 121, 169 and 201 (Huang et al., 'Densely connected convolutional networks', 2017).

The ImageNet networks of Table 1: a 7×7/2 stem of 2k filters and 3×3/2 max pooling, four dense
blocks of BN-ReLU-Conv(1×1, 4k)-BN-ReLU-Conv(3×3, k) layers whose k new maps are concatenated to
their input, transitions BN-ReLU-Conv(1×1)-AvgPool(2×2/2) that keep a fraction θ = 0.5 of the
channels, then BN-ReLU, global average pooling and the classifier. Parameter counts equal
keras.applications' and torchvision's (no convolution biases, as in both).

Regularisation is off by default, as in keras.applications and torchvision. `block_dropout`
is the paper's dropout after each convolution but the first (0.2 when training without data
augmentation, Sec. 4.2); `spatial_dropout` drops whole maps after each transition.
"""

import keras

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.convolution import Window, conv, pad, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model


def composite(x, filters, kernel_size, *, name, conv_name, norm, activation, padding_mode,
              dropout):
    """The pre-activation composite function H: norm, activation, convolution (Sec. 3).

    Args:
        x: input tensor.
        filters, kernel_size: of the convolution.
        name: base name of the norm and activation layers.
        conv_name: name of the convolution.
        norm, activation, padding_mode: as in `DenseNet`.
        dropout: rate of the dropout after the convolution.

    Returns:
        Output tensor.
    """
    x = factories.normalization(x, norm, f"{name}_norm")
    x = factories.activation(x, activation, f"{name}_{activation}")
    x = conv(x, filters, kernel_size, name=conv_name, padding_mode=padding_mode,
             use_bias=norm == "none")
    return factories.dropout(x, dropout, f"{conv_name}_dropout")


def dense_layer(x, growth_rate, *, bottleneck, name, **options):
    """Computes k new maps from every map before it and concatenates them to its input.

    Args:
        x: input tensor.
        growth_rate: k, the number of maps the layer adds.
        bottleneck: put a 1×1 convolution to 4k maps before the 3×3 (DenseNet-B).
        name: base name, e.g. "conv2_block1".
        **options: norm, activation, padding_mode and dropout of `composite`.

    Returns:
        `x` with k more channels.
    """
    convs = ((4 * growth_rate, 1),) if bottleneck else ()
    y = x
    for i, (filters, kernel_size) in enumerate(convs + ((growth_rate, 3),), start=1):
        y = composite(y, filters, kernel_size, name=f"{name}_{i - 1}",
                      conv_name=f"{name}_{i}_conv", **options)
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([x, y])


def dense_block(x, layers, growth_rate, *, bottleneck, name, **options):
    """Stacks `layers` dense layers: the block's output has input + layers × k channels."""
    for i in range(1, layers + 1):
        x = dense_layer(x, growth_rate, bottleneck=bottleneck, name=f"{name}_block{i}", **options)
    return x


def transition(x, compression, *, name, **options):
    """Keeps a fraction `compression` (θ) of the channels and halves the map (Sec. 3)."""
    filters = max(1, int(x.shape[-1] * compression))
    x = composite(x, filters, 1, name=name, conv_name=f"{name}_conv", **options)
    return pool(x, "avg", 2, strides=2, name=f"{name}_pool")


def windows(blocks, *, padding_mode):
    """The windows of a DenseNet along one axis: the 7×7/2 stem, the 3×3/2 pool, then each
    dense block's 3×3 convolutions and the 2×2/2 average pool of each transition."""
    table = [Window("conv1_conv", 7, 2, 3, padding_mode), Window("pool1", 3, 2, 1, padding_mode)]
    for stage in range(2, len(blocks) + 2):
        if stage > 2:
            table.append(Window(f"pool{stage - 1}_pool", 2, 2))
        table.append(Window(f"conv{stage}_block1_2_conv", 3, 1, "same", padding_mode))
    return table


def _check_options(name, growth_rate, compression):
    """Validates the DenseNet-only options before any layer is built."""
    if isinstance(growth_rate, bool) or not isinstance(growth_rate, int) or growth_rate < 1:
        raise InputError(f"{name}: growth_rate must be a positive int such as 32; got "
                         f"{growth_rate!r}.")
    if not 0 < compression <= 1:
        raise InputError(f"{name}: compression must be in (0, 1], e.g. 0.5 (DenseNet-BC) or 1 "
                         f"(no compression); got {compression!r}.")


def DenseNet(
    blocks,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    growth_rate=32,
    compression=0.5,
    bottleneck=True,
    norm="batch",
    activation="relu",
    padding_mode="zeros",
    width_multiplier=1.0,
    dropout=0.0,
    spatial_dropout=0.0,
    block_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a DenseNet (Huang et al., 2017, Table 1).

    Args:
        blocks: dense layers in each of the four dense blocks.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        growth_rate, compression, bottleneck, norm, activation, padding_mode,
            width_multiplier, dropout, spatial_dropout, block_dropout, drop_connect: as in
            `densenet121`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: an invalid option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(blocks, padding_mode=padding_mode),
        check=lambda: _check_options(name, growth_rate, compression),
        bottleneck=bottleneck, norm=norm, activation=activation, padding_mode=padding_mode,
        width_multiplier=width_multiplier, dropout=dropout, spatial_dropout=spatial_dropout,
        block_dropout=block_dropout, drop_connect=drop_connect,
    )
    norm = factories.check_norm(norm)
    growth_rate = base.scaled(growth_rate, width_multiplier)
    options = dict(norm=norm, activation=activation, padding_mode=padding_mode,
                   dropout=block_dropout)
    rank = factories.spatial_rank(x)
    x = conv(x, 2 * growth_rate, 7, name="conv1_conv", strides=2, padding=3,
             padding_mode=padding_mode, use_bias=norm == "none")
    x = factories.normalization(x, norm, "conv1_norm")
    x = factories.activation(x, activation, f"conv1_{activation}")
    x, _ = pad(x, 1, (3,) * rank, (2,) * rank, padding_mode, "pool1")
    x = pool(x, "max", 3, strides=2, name="pool1")
    for stage, layers in enumerate(blocks, start=2):
        if stage > 2:
            x = transition(x, compression, name=f"pool{stage - 1}", **options)
            x = factories.spatial_dropout(x, spatial_dropout, f"pool{stage - 1}_spatial_dropout")
        x = dense_block(x, layers, growth_rate, bottleneck=bottleneck, name=f"conv{stage}",
                        **options)
    x = factories.normalization(x, norm, "norm")
    x = factories.activation(x, activation, activation)
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


_PAPER = "Huang et al., 'Densely connected convolutional networks', CVPR 2017, Table 1"


@register_model(default_input_shape=(224, 224, 3), paper=_PAPER)
@base.variant(DenseNet)
def densenet121(**arguments):
    """DenseNet-121: dense blocks of 6, 12, 24 and 16 layers, k = 32.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        growth_rate: k, the maps each dense layer adds (32 in Table 1); the stem has 2k.
        compression: θ, the fraction of channels a transition keeps, in (0, 1]
            (0.5 for DenseNet-BC, 1 for no compression).
        bottleneck: 1×1 convolutions to 4k maps before each 3×3 (the "B" of DenseNet-BC).
        norm: normalisation of the pre-activations ("batch" in the paper).
        activation: activation of the pre-activations.
        padding_mode: "zeros", "reflect" or "replicate".
        width_multiplier: scales the growth rate, hence the stem and every layer.
        dropout: dropout rate before the classifier.
        spatial_dropout: rate of whole-map dropout after each transition.
        block_dropout: dropout rate after each convolution but the stem (the paper's 0.2
            without data augmentation).
        drop_connect: DropConnect rate on the classifier's weights.

    Returns:
        A `keras.Model`.
    """
    return DenseNet((6, 12, 24, 16), (224, 224, 3), **arguments)


@register_model(default_input_shape=(224, 224, 3), paper=_PAPER)
@base.variant(DenseNet)
def densenet169(**arguments):
    """DenseNet-169: dense blocks of 6, 12, 32 and 32 layers, k = 32.

    Args: as `densenet121`.
    """
    return DenseNet((6, 12, 32, 32), (224, 224, 3), **arguments)


@register_model(default_input_shape=(224, 224, 3), paper=_PAPER)
@base.variant(DenseNet)
def densenet201(**arguments):
    """DenseNet-201: dense blocks of 6, 12, 48 and 32 layers, k = 32.

    Args: as `densenet121`.
    """
    return DenseNet((6, 12, 48, 32), (224, 224, 3), **arguments)
