"""Inception-v3 (Szegedy et al., 'Rethinking the Inception architecture for computer vision',
CVPR 2016).

The network of Table 1: a stem of plain convolutions, three 35×35 modules (Fig. 5: the 5×5
kept, the 3×3 doubled), a grid reduction to 17×17 (Fig. 10), four 17×17 modules whose 7×7
convolutions are factorised into 1×7 and 7×1 (Fig. 6), a second reduction, and two 8×8
modules with the expanded filter bank of Fig. 7 (1×3 and 3×1 side by side). Filter counts,
branch order and paddings follow the authors' release (TF-slim's inception_v3), as
keras.applications.InceptionV3 does, whose parameter count these equal (23,851,784 at
299×299, 21,802,784 without the top) and whose weights, copied in order, give the same
outputs:
- every convolution is followed by BatchNorm without a scale (epsilon 1e-3, momentum 0.99)
  and ReLU, and has no bias;
- "valid" stem convolutions and reductions, so inputs need at least 75×75 (Keras' minimum);
- dropout 0.2 before the classifier as TF-slim (keep probability 0.8);
- the auxiliary classifier of section 8 only with `aux_logits=True` (keras.applications has
  none): on the last 17×17 module (mixed7), 5×5/3 average pooling, a 1×1 convolution to 128,
  a 5×5 "valid" convolution to 768 (smaller maps: one over the whole map, as TF-slim's
  `_reduced_kernel_size_for_small_input`), global average pooling and a linear classifier,
  torchvision's InceptionAux (3,327,592 parameters at 1,000 classes: torchvision's 3,326,696
  with BatchNorm's moving statistics instead of its scales). The model then has two outputs,
  "predictions" and "aux_predictions"; `train` weights the auxiliary loss by 0.4 (LOSS_WEIGHTS,
  TF-slim's training script).
In 1D and 3D a factorised n×n convolution becomes one n-tap convolution per spatial axis
(one in 1D, three in 3D; the last one gives the branch its width), and the expanded filter
bank one n-tap convolution per axis side by side, so a 3D 8×8 module is wider than a 2D one.
"""

import keras

from kerascnn.layers import factories
from kerascnn.layers.blocks import KERAS_BATCH_NORM
from kerascnn.layers.convolution import Window, conv, global_pool, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

# TF-slim's train_image_classifier weights the auxiliary loss by 0.4.
LOSS_WEIGHTS = {"predictions": 1.0, "aux_predictions": 0.4}
AUX_AFTER = 7  # the auxiliary classifier reads mixed7, the last 17×17 module

# Table 1 with the release's filters: (module, arguments) for mixed0 ... mixed10. "a" (Fig. 5)
# takes its pool projection's width, "c" (Fig. 6) the width inside its factorised branches.
INCEPTION_V3 = (
    ("a", 32), ("a", 64), ("a", 64),
    ("b",),
    ("c", 128), ("c", 160), ("c", 160), ("c", 192),
    ("d",),
    ("e",), ("e",),
)


def conv_bn(x, filters, kernel_size, *, name, strides=1, padding="same", norm="batch",
            activation="relu", padding_mode="zeros", width_multiplier=1.0):
    """A convolution without bias, BatchNorm without scale (TF-slim's), and the activation.

    Args:
        x: channels-last input (1D, 2D or 3D).
        filters: output channels at width 1 (the paper's), scaled by `width_multiplier`.
        kernel_size: int, or one int per spatial axis.
        name: the convolution's name; "<name>_bn" and "<name>_<activation>" follow.
        strides, padding: of the convolution ("same" or "valid").
        norm, activation, padding_mode, width_multiplier: as in `inception_v3`.
    """
    use_bias = factories.check_norm(norm) == "none"
    x = conv(x, base.scaled(filters, width_multiplier), kernel_size, name=name, strides=strides,
             padding=padding, padding_mode=padding_mode, use_bias=use_bias)
    if norm == "batch":
        # No scale γ: before a ReLU the next convolution absorbs it (TF-slim, keras.applications).
        x = keras.layers.BatchNormalization(scale=False, name=f"{name}_bn", **KERAS_BATCH_NORM)(x)
    else:
        x = factories.normalization(x, norm, f"{name}_bn", **KERAS_BATCH_NORM)
    return factories.activation(x, activation, f"{name}_{activation}")


def _axis_kernel(size, axis, rank):
    return tuple(size if a == axis else 1 for a in range(rank))


def chain(x, steps, *, name, **options):
    """Convolutions one after the other, named "<name>_1", "<name>_2", ...

    Args:
        steps: (filters, kernel) or (filters, kernel, strides, padding) per convolution.
        **options: norm, activation, padding_mode and width_multiplier of `conv_bn`.
    """
    for index, (filters, kernel, *rest) in enumerate(steps, start=1):
        strides, padding = rest or (1, "same")
        x = conv_bn(x, filters, kernel, name=f"{name}_{index}", strides=strides,
                    padding=padding, **options)
    return x


def factorized(inner_filters, filters, size, rank, *, last_axis_first):
    """The steps of an n×n convolution factorised into n-tap convolutions along each axis
    (Fig. 6): all but the last give `inner_filters`, the last `filters`.

    In 2D, `last_axis_first` gives 1×n then n×1 (the release's order in the 7×7 branch),
    otherwise n×1 then 1×n (its double 7×7 branch).
    """
    axes = range(rank - 1, -1, -1) if last_axis_first else range(rank)
    return [(filters if i == rank - 1 else inner_filters, _axis_kernel(size, axis, rank))
            for i, axis in enumerate(axes)]


def expanded_bank(x, filters, size, *, name, **options):
    """Fig. 7's expanded filter bank: an n-tap convolution along each axis, side by side,
    last axis first (1×3 then 3×1 in 2D), concatenated."""
    rank = factories.spatial_rank(x)
    outputs = [conv_bn(x, filters, _axis_kernel(size, axis, rank), name=f"{name}_axis{axis}",
                       **options) for axis in range(rank - 1, -1, -1)]
    if len(outputs) == 1:
        return outputs[0]
    return keras.layers.Concatenate(name=f"{name}_concat")(outputs)


def _pool_branch(x, kind, filters, *, name, **options):
    """A pooling branch: 3×3/1 average pooling and a 1×1 projection, or the 3×3/2 max pool of
    a grid reduction (`filters` None)."""
    if kind == "max":
        return pool(x, "max", 3, strides=2, name=f"{name}_pool")
    x = pool(x, "avg", 3, strides=1, padding="same", name=f"{name}_pool")
    return conv_bn(x, filters, 1, name=f"{name}_pool_proj", **options)


def inception_a(x, pool_filters, *, name, **options):
    """The 35×35 module (Fig. 5, with the release's 5×5 branch): 1×1; 1×1, 5×5; 1×1, 3×3,
    3×3; 3×3 average pool, 1×1 to `pool_filters`."""
    return keras.layers.Concatenate(name=name)([
        conv_bn(x, 64, 1, name=f"{name}_1x1", **options),
        chain(x, [(48, 1), (64, 5)], name=f"{name}_5x5", **options),
        chain(x, [(64, 1), (96, 3), (96, 3)], name=f"{name}_3x3dbl", **options),
        _pool_branch(x, "avg", pool_filters, name=name, **options),
    ])


def inception_b(x, *, name, **options):
    """The grid reduction 35×35 → 17×17 (Fig. 10): 3×3/2; 1×1, 3×3, 3×3/2; 3×3/2 max pool."""
    return keras.layers.Concatenate(name=name)([
        chain(x, [(384, 3, 2, "valid")], name=f"{name}_3x3", **options),
        chain(x, [(64, 1), (96, 3), (96, 3, 2, "valid")], name=f"{name}_3x3dbl",
              **options),
        _pool_branch(x, "max", None, name=name),
    ])


def inception_c(x, inner_filters, *, name, **options):
    """The 17×17 module (Fig. 6, n = 7): 1×1; 1×1, a factorised 7×7; 1×1, two factorised
    7×7; 3×3 average pool, 1×1. `inner_filters` is the width inside the factorised branches."""
    rank, inner = factories.spatial_rank(x), inner_filters
    return keras.layers.Concatenate(name=name)([
        conv_bn(x, 192, 1, name=f"{name}_1x1", **options),
        chain(x, [(inner, 1), *factorized(inner, 192, 7, rank, last_axis_first=True)],
              name=f"{name}_7x7", **options),
        chain(x, [(inner, 1), *factorized(inner, inner, 7, rank, last_axis_first=False),
                  *factorized(inner, 192, 7, rank, last_axis_first=False)],
              name=f"{name}_7x7dbl", **options),
        _pool_branch(x, "avg", 192, name=name, **options),
    ])


def inception_d(x, *, name, **options):
    """The grid reduction 17×17 → 8×8: 1×1, 3×3/2; 1×1, factorised 7×7, 3×3/2; 3×3/2 max pool."""
    rank = factories.spatial_rank(x)
    return keras.layers.Concatenate(name=name)([
        chain(x, [(192, 1), (320, 3, 2, "valid")], name=f"{name}_3x3", **options),
        chain(x, [(192, 1), *factorized(192, 192, 7, rank, last_axis_first=True),
                  (192, 3, 2, "valid")], name=f"{name}_7x7x3", **options),
        _pool_branch(x, "max", None, name=name),
    ])


def inception_e(x, *, name, **options):
    """The 8×8 module with expanded filter banks (Fig. 7): 1×1; 1×1 then 1×3 | 3×1; 1×1, 3×3
    then 1×3 | 3×1; 3×3 average pool, 1×1."""
    branch3x3 = conv_bn(x, 384, 1, name=f"{name}_3x3_1", **options)
    branch3x3dbl = chain(x, [(448, 1), (384, 3)], name=f"{name}_3x3dbl", **options)
    return keras.layers.Concatenate(name=name)([
        conv_bn(x, 320, 1, name=f"{name}_1x1", **options),
        expanded_bank(branch3x3, 384, 3, name=f"{name}_3x3_2", **options),
        expanded_bank(branch3x3dbl, 384, 3, name=f"{name}_3x3dbl_3", **options),
        _pool_branch(x, "avg", 192, name=name, **options),
    ])


MODULES = {"a": inception_a, "b": inception_b, "c": inception_c, "d": inception_d,
           "e": inception_e}
# Per module kind, the windows that can make a map vanish: a grid reduction's 3×3/2, and the
# largest "same" window (only a reflection can be wider than a map).
_MODULE_WINDOWS = {
    "a": (("5x5_2", 5, 1, "same"),),
    "b": (("3x3dbl_2", 3, 1, "same"), ("3x3_1", 3, 2, "valid")),
    "c": (("7x7_2", 7, 1, "same"),),
    "d": (("7x7x3_2", 7, 1, "same"), ("3x3_2", 3, 2, "valid")),
    "e": (("3x3dbl_2", 3, 1, "same"),),
}


def auxiliary_classifier(x, classes, *, classifier_activation, drop_connect, **options):
    """Section 8's auxiliary classifier on mixed7 (torchvision's InceptionAux); see the module
    docstring. Maps under 5 wide are pooled whole instead of 5×5/3."""
    sides = x.shape[1:-1]
    if None not in sides and min(sides) >= 5:
        x = pool(x, "avg", 5, strides=3, name="aux_pool")
    else:
        x = global_pool(x, "avg", "aux_pool", keepdims=True)
    x = conv_bn(x, 128, 1, name="aux_conv0", **options)
    kernel = tuple(5 if side is None else min(5, side) for side in x.shape[1:-1])
    x = conv_bn(x, 768, kernel, name="aux_conv1", padding="valid", **options)
    x = global_pool(x, "avg", "aux_gap")
    return base.dense(classes, classifier_activation, drop_connect, "aux_predictions")(x)


def windows(table, *, padding_mode):
    """The windows of an Inception-v3 along one axis: the stem, then each module's."""
    out = [Window("conv1a", 3, 2), Window("conv2a", 3),
           Window("conv2b", 3, 1, "same", padding_mode), Window("pool1", 3, 2),
           Window("conv4a", 3), Window("pool2", 3, 2)]
    for index, (kind, *_) in enumerate(table):
        out += [Window(f"mixed{index}_{part}", kernel, stride, padding,
                       padding_mode if padding == "same" else "zeros")
                for part, kernel, stride, padding in _MODULE_WINDOWS[kind]]
    return out


def InceptionV3(
    table,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="relu",
    norm="batch",
    padding_mode="zeros",
    width_multiplier=1.0,
    dropout=0.2,
    drop_connect=0.0,
    aux_logits=False,
):
    """Builds an Inception-v3: the stem, the modules of `table`, a classifier.

    Args:
        table: (module kind, argument) of each module, see INCEPTION_V3.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, padding_mode, width_multiplier, dropout, drop_connect, aux_logits:
            as in `inception_v3`.

    Returns:
        A `keras.Model`: one output, or [main, auxiliary] with aux_logits.

    Raises:
        ValueError: a bad option, or an input too small for the network.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(table, padding_mode=padding_mode),
        activation=activation, norm=norm, padding_mode=padding_mode,
        width_multiplier=width_multiplier, dropout=dropout, drop_connect=drop_connect,
        aux_logits=aux_logits,
    )
    options = dict(norm=norm, activation=activation, padding_mode=padding_mode,
                   width_multiplier=width_multiplier)
    # Table 1's stem: 299 → 149 → 147 → 147 → 73 → 73 → 71 → 35.
    x = conv_bn(x, 32, 3, name="conv1a", strides=2, padding="valid", **options)
    x = conv_bn(x, 32, 3, name="conv2a", padding="valid", **options)
    x = conv_bn(x, 64, 3, name="conv2b", **options)
    x = pool(x, "max", 3, strides=2, name="pool1")
    x = conv_bn(x, 80, 1, name="conv3b", padding="valid", **options)
    x = conv_bn(x, 192, 3, name="conv4a", padding="valid", **options)
    x = pool(x, "max", 3, strides=2, name="pool2")
    auxiliary = None
    for index, (kind, *arguments) in enumerate(table):
        x = MODULES[kind](x, *arguments, name=f"mixed{index}", **options)
        if index == AUX_AFTER and include_top and aux_logits:
            auxiliary = auxiliary_classifier(
                x, classes, classifier_activation=classifier_activation,
                drop_connect=drop_connect, **options)
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x if auxiliary is None else [x, auxiliary], name, weights)


@register_model(
    default_input_shape=(299, 299, 3),
    paper="Szegedy et al., 'Rethinking the Inception architecture for computer vision', "
    "CVPR 2016, Table 1 and Figs. 5-7 and 10 (filters of the authors' release)",
    loss_weights=LOSS_WEIGHTS,
)
@base.variant(InceptionV3)
def inception_v3(**arguments):
    """Inception-v3 at 299×299: Table 1; 23,851,784 parameters as keras.applications' InceptionV3.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size from 75 up).
        activation: activation after every convolution ("relu").
        norm: normalisation after every convolution: "batch" is BatchNorm without a scale,
            as the release; the others are `kerascnn.layers.factories.normalization`'s.
        padding_mode: padding of the "same" convolutions: "zeros", "reflect" or "replicate".
        width_multiplier: scales every width (rounded to the nearest int, at least 1).
        dropout: dropout before the classifier (0.2, TF-slim's keep probability 0.8).
        drop_connect: DropConnect rate on the classifier's weights.
        aux_logits: add section 8's auxiliary classifier on mixed7 (with include_top): the
            model then outputs [predictions, aux_predictions]. Off by default, as in
            keras.applications.

    Returns:
        A `keras.Model`.
    """
    return InceptionV3(INCEPTION_V3, (299, 299, 3), **arguments)
