"""ConvNeXt-T (Liu et al., 'A ConvNet for the 2020s', 2022).

The network of Table 9 and Fig. 4: a 4×4/4 "patchify" stem and LayerNorm; four stages of
(3, 3, 9, 3) blocks of widths (96, 192, 384, 768), separated by LayerNorm and a 2×2/2
convolution; each block is a 7×7 depthwise convolution, LayerNorm, a 1×1 expansion to 4× the
width, GELU, a 1×1 projection back, layer scale (1e-6) and stochastic depth on the residual
branch; the head is global average pooling, LayerNorm and the classifier. The 1×1 convolutions
are Dense layers on the channels, as in the official code and keras.applications. Weights are
initialised as in the official code (truncated normal, σ = 0.02; zero biases). The parameter
count equals keras.applications.ConvNeXtTiny's and timm's (28,589,128).

Choices:
- `drop_path_rate` defaults to 0, as in keras.applications and timm: the paper's 0.1 for
  ConvNeXt-T belongs to its ImageNet training recipe (like its weight decay), so pass
  `drop_path_rate=0.1` to reproduce it. The rate grows linearly from 0 to `drop_path_rate`
  over the blocks (official code). Inference is the same either way.
- With `include_top=False` the head's norm still follows the features (pooled or not), as in
  keras.applications, so features equal its `pooling=` outputs.
- Convolutions keep their biases before LayerNorm and GroupNorm (which normalise across
  channels and so do not cancel a per-channel bias) and drop them before BatchNorm and
  InstanceNorm (which do). For norm="instance" the head uses LayerNorm: normalising each
  pooled feature on its own would make it a constant.
"""

import keras
import numpy as np

from kerascnn.layers import factories
from kerascnn.layers.convolution import Window, conv, global_pool
from kerascnn.layers.layer_scale import LayerScale
from kerascnn.layers.regularization import StochasticDepth
from kerascnn.models import base
from kerascnn.models.registry import register_model

_EPSILON = 1e-6
_BIAS_CANCELLING_NORMS = ("batch", "instance")


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _dense(units, name, activation=None, drop_connect=0.0):
    return base.dense(units, activation, drop_connect, name, kernel_initializer=_initializer())


def block(x, *, drop_path, layer_scale, norm, activation, padding_mode, name):
    """The ConvNeXt block (Fig. 4): an inverted bottleneck on a 7×7 depthwise convolution.

    Args:
        x: input tensor.
        drop_path: stochastic depth rate of the residual branch.
        layer_scale: initial layer scale, or 0 / None for none.
        norm, activation, padding_mode: as in `ConvNeXt`.
        name: base name, e.g. "stage1_block1".

    Returns:
        Output tensor, of the input's shape.
    """
    channels = x.shape[-1]
    y = conv(x, channels, 7, name=f"{name}_depthwise_conv", kind="depthwise",
             padding_mode=padding_mode, use_bias=norm not in _BIAS_CANCELLING_NORMS,
             kernel_initializer=_initializer())
    y = factories.normalization(y, norm, f"{name}_norm", epsilon=_EPSILON)
    y = _dense(4 * channels, f"{name}_pointwise_conv_1")(y)
    y = factories.activation(y, activation, f"{name}_{activation}")
    y = _dense(channels, f"{name}_pointwise_conv_2")(y)
    if layer_scale:
        y = LayerScale(layer_scale, name=f"{name}_layer_scale")(y)
    if drop_path:
        y = StochasticDepth(drop_path, name=f"{name}_drop_path")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def windows(depths, *, padding_mode):
    """The windows of a ConvNeXt along one axis: the 4×4/4 stem, each stage's 7×7 depthwise
    convolution and the 2×2/2 downsampling between stages."""
    table = [Window("stem_conv", 4, 4)]
    for stage in range(1, len(depths) + 1):
        if stage > 1:
            table.append(Window(f"stage{stage}_downsample_conv", 2, 2))
        table.append(Window(f"stage{stage}_block1_depthwise_conv", 7, 1, "same", padding_mode))
    return table


def ConvNeXt(
    depths,
    widths,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    norm="layer",
    activation="gelu",
    padding_mode="zeros",
    width_multiplier=1.0,
    layer_scale_init_value=1e-6,
    drop_path_rate=0.0,
    dropout=0.0,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a ConvNeXt (Liu et al., 2022, Table 9).

    Args:
        depths: blocks in each of the four stages.
        widths: channels of each stage.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        norm, activation, padding_mode, width_multiplier, layer_scale_init_value,
            drop_path_rate, dropout, spatial_dropout, drop_connect: as in `convnext_tiny`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: an invalid option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(depths, padding_mode=padding_mode),
        norm=norm, activation=activation, padding_mode=padding_mode,
        width_multiplier=width_multiplier, drop_path_rate=drop_path_rate, dropout=dropout,
        spatial_dropout=spatial_dropout, drop_connect=drop_connect,
    )
    norm = factories.check_norm(norm)
    widths = [base.scaled(w, width_multiplier) for w in widths]
    drop_paths = iter(np.linspace(0.0, drop_path_rate, sum(depths)).tolist())
    use_bias = norm not in _BIAS_CANCELLING_NORMS
    x = conv(x, widths[0], 4, name="stem_conv", strides=4, padding="valid", use_bias=use_bias,
             kernel_initializer=_initializer())
    x = factories.normalization(x, norm, "stem_norm", epsilon=_EPSILON)
    for stage, (depth, width) in enumerate(zip(depths, widths), start=1):
        if stage > 1:
            x = factories.normalization(x, norm, f"stage{stage}_downsample_norm", epsilon=_EPSILON)
            x = conv(x, width, 2, name=f"stage{stage}_downsample_conv", strides=2,
                     padding="valid", kernel_initializer=_initializer())
        for i in range(1, depth + 1):
            x = block(x, drop_path=next(drop_paths), layer_scale=layer_scale_init_value,
                      norm=norm, activation=activation, padding_mode=padding_mode,
                      name=f"stage{stage}_block{i}")
        x = factories.spatial_dropout(x, spatial_dropout, f"stage{stage}_spatial_dropout")

    pool_kind = "avg" if include_top else pooling
    if pool_kind:
        x = global_pool(x, pool_kind, f"{pool_kind}_pool")
    x = factories.normalization(x, "layer" if norm == "instance" else norm, "head_norm",
                                epsilon=_EPSILON)
    if include_top:
        x = factories.dropout(x, dropout, "predictions_dropout")
        x = _dense(classes, "predictions", classifier_activation, drop_connect)(x)
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(224, 224, 3),
    paper="Liu et al., 'A ConvNet for the 2020s', CVPR 2022, Table 9 (ConvNeXt-T)",
)
@base.variant(ConvNeXt)
def convnext_tiny(**arguments):
    """ConvNeXt-T: stages of 3, 3, 9 and 3 blocks, 96 to 768 channels.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        norm: normalisation after the stem, in each block, before each downsampling and in
            the head ("layer" in the paper: LayerNorm over the channels).
        activation: activation of the blocks' expansion ("gelu").
        padding_mode: padding of the 7×7 depthwise convolutions.
        width_multiplier: scales the width of every stage.
        layer_scale_init_value: initial layer scale (1e-6); 0 or None for none.
        drop_path_rate: stochastic depth rate of the last block (0.1 in the paper's training
            of ConvNeXt-T); earlier blocks get linearly smaller rates.
        dropout: dropout rate before the classifier.
        spatial_dropout: rate of whole-map dropout at the end of each stage.
        drop_connect: DropConnect rate on the classifier's weights.

    Returns:
        A `keras.Model`.
    """
    return ConvNeXt((3, 3, 9, 3), (96, 192, 384, 768), (224, 224, 3), **arguments)
