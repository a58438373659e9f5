"""ResNet (He et al. 2016), ResNeXt (Xie et al. 2017), SE-ResNet (Hu et al. 2018), ResNet-RS
(Bello et al. 2021).

One basic block and one bottleneck block serve every variant, as in timm: `groups` and
`base_width` give ResNeXt, `se_ratio` gives SE-ResNet, `shortcut="avg_down"` with the deep
stems gives ResNet-D / ResNet-RS, `drop_path_rate` adds stochastic depth.

Choices and deviations, none of which changes a parameter count:
- The stride of a downsampling bottleneck sits on its 3×3 convolution (torchvision's "v1.5",
  timm's default); `stride_on="1x1"` puts it on the first 1×1 as in the paper and
  keras.applications. v1.5 is more accurate and costs about 6% more multiply-adds (ResNet-50:
  4.09 G instead of 3.86 G at 224×224) and about as much step time.
- No convolution bias before normalisation (keras.applications' ResNets have one).
- "same" padding everywhere: the output sizes are PyTorch's (ceil(n / stride)); for even sizes
  TensorFlow pads one pixel less before than after.
- BatchNorm uses PyTorch's epsilon and momentum (kerascnn.layers.factories); the released
  ResNet-RS uses momentum 0.
- ResNet-RS: the released TensorFlow code (`replace_stem_max_pool`), keras' `ResNetRS50` and
  timm's `resnetrs50` replace the stem max-pool with a stride-2 3×3 convolution of 64 filters;
  we follow them (`stem="rs"`).
"""

import keras

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.blocks import conv_norm_act, residual_add
from kerascnn.layers.convolution import CONV_KINDS, Window, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}
# Convolutions (filters, kernel, stride), then whether a 3×3 stride-2 max-pool follows.
STEMS = {
    "standard": (((64, 7, 2),), True),  # He et al. 2016, Table 1.
    "deep": (((32, 3, 2), (32, 3, 1), (64, 3, 1)), True),  # ResNet-C (He et al. 2019).
    "rs": (((32, 3, 2), (32, 3, 1), (64, 3, 1), (64, 3, 2)), False),  # ResNet-RS, released code.
    "cifar": (((64, 3, 1),), False),  # 32×32 and 28×28 images keep their resolution.
}
SHORTCUTS = ("projection", "avg_down")
STRIDE_ON = ("3x3", "1x1")
IMAGENET = (224, 224, 3)


def _conv_norm_act(x, filters, kernel, name, *, stride=1, **options):
    """A convolution `name`_conv, its normalisation and (unless None) its activation."""
    return conv_norm_act(x, filters, kernel, name=f"{name}_conv", strides=stride,
                         norm_name=f"{name}_norm", **options)


def _shortcut(x, filters, stride, kind, norm, padding_mode, name):
    """The identity, or a projection when the shape changes (option B of He et al. 2016).

    "projection" is a 1×1 convolution of stride `stride`; "avg_down" (ResNet-D, He et al.
    2019) averages 2×2 windows with stride 2 first, so no activation is skipped.
    """
    if stride == 1 and x.shape[-1] == filters:
        return x
    if kind == "avg_down" and stride > 1:
        x = pool(x, "avg", 2, name=f"{name}_0_pool", strides=2, padding="same")
        stride = 1
    return _conv_norm_act(
        x, filters, 1, f"{name}_0", stride=stride, norm=norm, activation=None,
        padding_mode=padding_mode,
    )


def _merge(x, shortcut, se_ratio, drop_path, activation, name):
    """SE on the residual branch, stochastic depth, the addition and the final activation."""
    x = residual_add(x, shortcut, name=name, se_ratio=se_ratio, drop_path=drop_path)
    return factories.activation(x, activation, f"{name}_out")


def basic_block(
    x,
    filters,
    *,
    name,
    stride=1,
    groups=1,
    base_width=64,
    se_ratio=0.0,
    drop_path=0.0,
    norm="batch",
    activation="relu",
    shortcut="projection",
    stride_on="3x3",
    padding_mode="zeros",
    conv_kind="standard",
):
    """Two 3×3 convolutions and a shortcut (He et al. 2016, Fig. 2 and Table 1).

    Args:
        x: the input tensor.
        filters: output channels.
        name: base name of the layers (e.g. "conv2_block1").
        stride: stride of the first convolution and of the projection.
        groups, base_width: must stay 1 and 64 (ResNeXt widths need the bottleneck).
        se_ratio: squeeze-and-excitation width as a fraction of `filters` (0 for none).
        drop_path: stochastic-depth rate of the residual branch.
        norm, activation, padding_mode: as in `ResNet`.
        shortcut: "projection" or "avg_down".
        stride_on: ignored; both convolutions are 3×3.
        conv_kind: kind of the 3×3 convolutions (kerascnn.layers.CONV_KINDS).

    Returns:
        The output tensor.
    """
    del stride_on
    if groups != 1 or base_width != 64:
        raise InputError(
            f"{name}: the basic block supports only groups=1 and base_width=64; got "
            f"groups={groups}, base_width={base_width}. Use a bottleneck model (resnet50, "
            "resnext50_32x4d) for grouped widths."
        )
    common = dict(norm=norm, padding_mode=padding_mode, kind=conv_kind)
    residual = _conv_norm_act(x, filters, 3, f"{name}_1", stride=stride, activation=activation,
                              **common)
    residual = _conv_norm_act(residual, filters, 3, f"{name}_2", activation=None, **common)
    identity = _shortcut(x, filters, stride, shortcut, norm, padding_mode, name)
    return _merge(residual, identity, se_ratio, drop_path, activation, name)


def bottleneck_block(
    x,
    filters,
    *,
    name,
    stride=1,
    groups=1,
    base_width=64,
    se_ratio=0.0,
    drop_path=0.0,
    norm="batch",
    activation="relu",
    shortcut="projection",
    stride_on="3x3",
    padding_mode="zeros",
    conv_kind="standard",
):
    """1×1 reduce, 3×3 (grouped for ResNeXt), 1×1 expand to 4 × `filters`, and a shortcut.

    He et al. 2016, Fig. 5; the grouped form is Xie et al. 2017, Fig. 3(c), whose 3×3 has
    `groups` × (`filters` × `base_width` / 64) channels (timm's cardinality and base_width).

    Args:
        x: the input tensor.
        filters: the stage width; the block outputs 4 × `filters` channels.
        name: base name of the layers (e.g. "conv2_block1").
        stride: stride of the block (on the 3×3 or the first 1×1, see `stride_on`).
        groups: groups of the 3×3 convolution (ResNeXt's cardinality).
        base_width: width of each group for a 64-wide stage (64 for ResNet, 4 for 32x4d).
        se_ratio: squeeze-and-excitation width as a fraction of the output channels.
        drop_path: stochastic-depth rate of the residual branch.
        norm, activation, padding_mode: as in `ResNet`.
        shortcut: "projection" or "avg_down".
        stride_on: "3x3" (torchvision v1.5) or "1x1" (the paper, keras.applications).
        conv_kind: kind of the 3×3 convolution (kerascnn.layers.CONV_KINDS).

    Returns:
        The output tensor.
    """
    width = max(1, int(filters * base_width / 64)) * groups  # at least one channel a group
    outputs = filters * EXPANSION["bottleneck"]
    common = dict(norm=norm, padding_mode=padding_mode)
    residual = _conv_norm_act(x, width, 1, f"{name}_1", stride=stride if stride_on == "1x1" else 1,
                              activation=activation, **common)
    residual = _conv_norm_act(
        residual, width, 3, f"{name}_2", stride=stride if stride_on == "3x3" else 1,
        groups=groups, kind=conv_kind, activation=activation, **common,
    )
    residual = _conv_norm_act(residual, outputs, 1, f"{name}_3", activation=None, **common)
    identity = _shortcut(x, outputs, stride, shortcut, norm, padding_mode, name)
    return _merge(residual, identity, se_ratio, drop_path, activation, name)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}
# The normalisation whose gamma `zero_init_residual` zeroes, by block kind.
LAST_NORM = {"basic": "2_norm", "bottleneck": "3_norm"}


def resnet_stem(x, kind, *, width_multiplier, norm, activation, padding_mode):
    """The layers before the first stage: conv1 (and pool1), named as in keras.applications."""
    convs, max_pool = STEMS[kind]
    names = ["conv1"] if len(convs) == 1 else [f"conv1_{i}" for i in range(1, len(convs) + 1)]
    for name, (filters, kernel, stride) in zip(names, convs):
        x = _conv_norm_act(
            x, base.scaled(filters, width_multiplier), kernel, name, stride=stride, norm=norm,
            activation=activation, padding_mode=padding_mode,
        )
    return pool(x, "max", 3, name="pool1_pool", strides=2, padding="same") if max_pool else x


def windows(block, blocks_per_stage, *, stem, stride_on, padding_mode):
    """The windows of a ResNet along one axis: the stem, then each stage's 3×3 convolutions.

    Every convolution and pool pads "same", so only reflected paddings can make a map
    vanish: a reflection must be shorter than the map.
    """
    convs, max_pool = STEMS[stem]
    names = ["conv1"] if len(convs) == 1 else [f"conv1_{i}" for i in range(1, len(convs) + 1)]
    table = [Window(f"{name}_conv", kernel, stride, "same", padding_mode)
             for name, (_, kernel, stride) in zip(names, convs)]
    if max_pool:
        table.append(Window("pool1_pool", 3, 2, "same"))
    for stage, count in enumerate(blocks_per_stage, start=2):
        stride = 2 if stage > 2 else 1
        if block == "bottleneck" and stride_on == "1x1":
            table.append(Window(f"conv{stage}_block1_1_conv", 1, stride, "same"))
            stride = 1
        table.append(Window(f"conv{stage}_block1_{1 if block == 'basic' else 2}_conv", 3,
                            stride, "same", padding_mode))
        table.append(Window(f"conv{stage}_block{count}_2_conv", 3, 1, "same", padding_mode))
    return table


def _check_options(name, block, blocks_per_stage, *, stem, stride_on, shortcut, conv_kind,
                   groups, base_width, zero_init_residual, norm):
    """Validates the ResNet-only options and their combinations before any layer is built."""
    factories.check_choice(block, tuple(BLOCKS), "block")
    if len(blocks_per_stage) != len(STAGE_WIDTHS) or min(blocks_per_stage) < 1:
        raise InputError(f"blocks_per_stage={blocks_per_stage!r} needs 4 positive counts.")
    factories.check_choice(stem, tuple(STEMS), "stem")
    factories.check_choice(stride_on, STRIDE_ON, "stride_on")
    factories.check_choice(shortcut, SHORTCUTS, "shortcut")
    factories.check_choice(conv_kind, CONV_KINDS, "conv_kind")
    base.check_options(name, groups=groups)
    if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
        raise InputError(f"{name}: base_width={base_width!r} must be a positive int.")
    if conv_kind == "dilated":
        raise InputError(
            "conv_kind='dilated' is not supported by ResNet: its strided 3×3 convolutions "
            f"cannot be dilated. Choose one of {tuple(k for k in CONV_KINDS if k != 'dilated')}."
        )
    if conv_kind == "grouped" and groups < 2:
        raise InputError(f"conv_kind='grouped' needs groups >= 2; got groups={groups}.")
    if groups > 1 and conv_kind not in ("standard", "grouped"):
        raise InputError(
            f"groups={groups} needs conv_kind 'standard' or 'grouped'; got {conv_kind!r}."
        )
    if zero_init_residual and factories.check_norm(norm) == "none":
        raise InputError(
            "zero_init_residual=True zeroes a normalisation gamma; it needs norm != 'none'."
        )


def ResNet(
    block,
    blocks_per_stage,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    stem="standard",
    stride_on="3x3",
    shortcut="projection",
    groups=1,
    base_width=64,
    se_ratio=0.0,
    norm="batch",
    activation="relu",
    padding_mode="zeros",
    conv_kind="standard",
    width_multiplier=1.0,
    zero_init_residual=False,
    dropout=0.0,
    spatial_dropout=0.0,
    drop_connect=0.0,
    drop_path_rate=0.0,
):
    """Builds a ResNet: a stem, four stages of residual blocks, a classifier.

    The stage widths are 64, 128, 256 and 512 (× 4 at the output of bottlenecks), each stage
    after the first halving the map in its first block (He et al. 2016, Table 1).

    Args:
        block: "basic" or "bottleneck".
        blocks_per_stage: number of blocks in each of the four stages.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        stem, stride_on, shortcut, groups, base_width, se_ratio, norm, activation,
            padding_mode, conv_kind, width_multiplier, zero_init_residual, dropout,
            spatial_dropout, drop_connect, drop_path_rate: as in `resnet50`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: an unknown or inconsistent option, or an input too small.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(block, blocks_per_stage, stem=stem, stride_on=stride_on,
                                      padding_mode=padding_mode),
        check=lambda: _check_options(
            name, block, blocks_per_stage, stem=stem, stride_on=stride_on, shortcut=shortcut,
            conv_kind=conv_kind, groups=groups, base_width=base_width,
            zero_init_residual=zero_init_residual, norm=norm,
        ),
        se_ratio=se_ratio, norm=norm, activation=activation, padding_mode=padding_mode,
        width_multiplier=width_multiplier, zero_init_residual=zero_init_residual,
        dropout=dropout, spatial_dropout=spatial_dropout, drop_connect=drop_connect,
        drop_path_rate=drop_path_rate,
    )
    x = resnet_stem(x, stem, width_multiplier=width_multiplier, norm=norm, activation=activation,
                    padding_mode=padding_mode)
    total, index, last_norms = sum(blocks_per_stage), 0, []
    for stage, (width, count) in enumerate(zip(STAGE_WIDTHS, blocks_per_stage), start=2):
        for i in range(1, count + 1):
            block_name = f"conv{stage}_block{i}"
            x = BLOCKS[block](
                x, base.scaled(width, width_multiplier), name=block_name,
                stride=2 if i == 1 and stage > 2 else 1, groups=groups, base_width=base_width,
                se_ratio=se_ratio, drop_path=drop_path_rate * index / max(total - 1, 1),
                norm=norm, activation=activation, shortcut=shortcut, stride_on=stride_on,
                padding_mode=padding_mode, conv_kind=conv_kind,
            )
            last_norms.append(f"{block_name}_{LAST_NORM[block]}")
            index += 1
        x = factories.spatial_dropout(x, spatial_dropout, f"conv{stage}_spatial_dropout")
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    model = base.finish(inputs, x, name, weights)
    if zero_init_residual and weights is None:
        for layer_name in last_norms:
            gamma = model.get_layer(layer_name).gamma
            gamma.assign(keras.ops.zeros_like(gamma))
    return model


def _paper(table):
    return f"He et al., 'Deep residual learning for image recognition', CVPR 2016, {table}"


@register_model(default_input_shape=IMAGENET, paper=_paper("Table 1, 18-layer"))
@base.variant(ResNet)
def resnet18(**arguments):
    """ResNet-18: basic blocks, 2-2-2-2 (He et al. 2016, Table 1); 11,689,512 parameters.

    Args: as `resnet50`.
    """
    return ResNet("basic", (2, 2, 2, 2), IMAGENET, **arguments)


@register_model(default_input_shape=IMAGENET, paper=_paper("Table 1, 34-layer"))
@base.variant(ResNet)
def resnet34(**arguments):
    """ResNet-34: basic blocks, 3-4-6-3 (He et al. 2016, Table 1); 21,797,672 parameters.

    Args: as `resnet50`.
    """
    return ResNet("basic", (3, 4, 6, 3), IMAGENET, **arguments)


@register_model(default_input_shape=IMAGENET, paper=_paper("Table 1, 50-layer"))
@base.variant(ResNet)
def resnet50(**arguments):
    """ResNet-50: bottlenecks, 3-4-6-3 (He et al. 2016, Table 1); 25,557,032 parameters.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        stem: "standard" (7×7/2 conv, 3×3/2 max-pool), "deep" (three 3×3 convs of 32, 32
            and 64 filters, then the max-pool: ResNet-C), "rs" ("deep" whose max-pool is a
            3×3/2 conv of 64 filters: ResNet-RS) or "cifar" (one 3×3/1 conv, no pool: for
            28×28 or 32×32 images).
        stride_on: where a bottleneck's stride sits: "3x3" or "1x1" (basic blocks: no effect).
        shortcut: "projection" (1×1 conv with the block's stride) or "avg_down" (2×2 average
            pooling, then a 1×1 conv: ResNet-D).
        groups, base_width: ResNeXt's cardinality and per-group width (bottleneck only).
        se_ratio: squeeze-and-excitation in every block, as a fraction of its output
            channels (0 for none; SENet uses 1/16, ResNet-RS 0.25).
        norm: "batch", "layer", "group", "instance" or "none".
        activation: activation of the blocks and the stem.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: kind of the blocks' 3×3 convolutions (every kind but "dilated").
        width_multiplier: scales every width.
        zero_init_residual: start each residual branch's last normalisation at gamma = 0, so
            every block starts as the identity (Goyal et al. 2017; torchvision's option).
        dropout: dropout before the classifier.
        spatial_dropout: drops whole maps after each stage.
        drop_connect: DropConnect on the classifier's weights.
        drop_path_rate: stochastic depth (Huang et al. 2016), rising linearly from 0 in the
            first block to this rate in the last (timm).

    Returns:
        A `keras.Model`.
    """
    return ResNet("bottleneck", (3, 4, 6, 3), IMAGENET, **arguments)


@register_model(default_input_shape=IMAGENET, paper=_paper("Table 1, 101-layer"))
@base.variant(ResNet)
def resnet101(**arguments):
    """ResNet-101: bottlenecks, 3-4-23-3 (He et al. 2016, Table 1); 44,549,160 parameters.

    Args: as `resnet50`.
    """
    return ResNet("bottleneck", (3, 4, 23, 3), IMAGENET, **arguments)


@register_model(default_input_shape=IMAGENET, paper=_paper("Table 1, 152-layer"))
@base.variant(ResNet)
def resnet152(**arguments):
    """ResNet-152: bottlenecks, 3-8-36-3 (He et al. 2016, Table 1); 60,192,808 parameters.

    Args: as `resnet50`.
    """
    return ResNet("bottleneck", (3, 8, 36, 3), IMAGENET, **arguments)


@register_model(
    default_input_shape=IMAGENET,
    paper="Xie et al., 'Aggregated residual transformations for deep neural networks', "
    "CVPR 2017, Table 1, ResNeXt-50 (32×4d)",
)
@base.variant(ResNet, groups=32, base_width=4)
def resnext50_32x4d(**arguments):
    """ResNeXt-50 (32×4d): ResNet-50 with 32 groups of 4 channels per 64 (Xie et al. 2017).

    Args: as `resnet50`.
    """
    return ResNet("bottleneck", (3, 4, 6, 3), IMAGENET, **arguments)


@register_model(
    default_input_shape=IMAGENET,
    paper="Hu et al., 'Squeeze-and-excitation networks', CVPR 2018, Table 1 (SE-ResNet-50), "
    "Fig. 3 (SE-ResNet module)",
)
@base.variant(ResNet, se_ratio=1 / 16)
def se_resnet50(**arguments):
    """SE-ResNet-50: SE with reduction 16 on every residual branch, before the addition.

    Args: as `resnet50`.
    """
    return ResNet("bottleneck", (3, 4, 6, 3), IMAGENET, **arguments)


@register_model(
    default_input_shape=(160, 160, 3),
    paper="Bello et al., 'Revisiting ResNets: improved training and scaling strategies', "
    "NeurIPS 2021, ResNet-RS-50 at 160×160",
)
@base.variant(ResNet, stem="rs", shortcut="avg_down", se_ratio=0.25, dropout=0.25)
def resnet_rs50(**arguments):
    """ResNet-RS-50: ResNet-D stem and shortcuts, SE 0.25, dropout 0.25 (Bello et al. 2021).

    The released configuration (TensorFlow Model Garden, keras' ResNetRS50) trains RS-50
    without stochastic depth, so `drop_path_rate` defaults to 0; the larger RS models use 0.1.

    Args: as `resnet50`.
    """
    return ResNet("bottleneck", (3, 4, 6, 3), (160, 160, 3), **arguments)
