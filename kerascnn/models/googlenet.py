"""GoogLeNet (Inception v1), Szegedy et al., "Going deeper with convolutions", CVPR 2015.

The network of Table 1 and Fig. 3: a 7×7/2 stem, max pooling and local response
normalisation, nine inception modules with the table's filter numbers (a real 5×5 in the
third branch), global average pooling, dropout 0.4 and a linear classifier; plus the two
auxiliary classifiers of section 5 on inception 4a and 4d.

Details the paper leaves open follow the BVLC Caffe model that reproduced it
(models/bvlc_googlenet): the 7×7 convolution pads 3, the 3×3/2 max pools are Caffe's
ceil-mode pools (Keras "same", identical at 224×224), and LRN uses n=5, alpha=1e-4
(divided by n, Caffe's convention), beta=0.75, k=1. Every pool rounds up, so the trunk
accepts any input size (at 32×32 the last stage runs on 1×1 maps); padding_mode="reflect"
needs maps wider than the padding, i.e. inputs of at least 65 (stage 5 maps are 1/32).

Deviation for small inputs: the auxiliary heads see maps 1/16 of the input side (14×14 at
224×224). They pool 5×5/3 as in the paper while that leaves at least 2 positions per axis
(maps of 8 or more: 4×4 outputs at 224×224, 2×2 at 128×128); on smaller maps (inputs under
128, e.g. 6×6 at 96×96, 4×4 at 64×64) they use global average pooling, which gives the same
single position as the paper's pooling would but covers the whole map instead of its
top-left 5×5 corner, and also works on maps under 5×5.

Training with the auxiliary heads (the default): the model has three outputs named
"predictions", "aux1_predictions" and "aux2_predictions"; give each the labels and weight the
auxiliary losses by 0.3 (section 5):

    model = kerascnn.build_model("googlenet", num_classes=10, input_shape=(96, 96, 3))
    model.compile(
        optimizer="sgd",
        loss={name: "categorical_crossentropy" for name in model.output_names},
        loss_weights=LOSS_WEIGHTS,
        metrics={"predictions": ["accuracy"]},
    )
    model.fit(x, {name: y for name in model.output_names})  # or [y, y, y]

For inference drop the heads with `googlenet_without_aux(model)` (same weights, one output),
or build with `aux_logits=False` when no auxiliary loss is wanted at all.
"""

import string

import keras

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.blocks import PLAIN_CONV_KINDS, conv_norm_act
from kerascnn.layers.convolution import Window, global_pool, pool
from kerascnn.layers.local_response_normalization import LocalResponseNormalization
from kerascnn.layers.squeeze_excite import squeeze_excite
from kerascnn.models import base
from kerascnn.models.registry import register_model

# Table 1: per inception module (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj);
# a 3×3/2 max pool precedes stages 4 and 5.
GOOGLENET_STAGES = {
    3: ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    4: (
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
    ),
    5: ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
}
AUXILIARY_AFTER = ("4a", "4d")

# Section 5: the auxiliary losses are added to the total loss with a weight of 0.3.
LOSS_WEIGHTS = {"predictions": 1.0, "aux1_predictions": 0.3, "aux2_predictions": 0.3}

def inception_block(x, filters, *, name, conv_kind="standard", se_ratio=0.0, **conv_options):
    """Inception module: 1×1, 3×3 and 5×5 convolutions and 3×3 max pooling, concatenated.

    With every reduction given this is the module with dimension reductions (Fig. 2b);
    without them, the naive module (Fig. 2a).

    Args:
        x: channels-last input (1D, 2D or 3D).
        filters: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj) as in Table 1;
            None for a reduction or the pool projection leaves that 1×1 convolution out.
        name: base name of the layers (e.g. "inception_3a").
        conv_kind: kind of the 3×3 and 5×5 convolutions (one of PLAIN_CONV_KINDS).
        se_ratio: squeeze-and-excitation on the concatenation (SE-Inception, Hu et al.
            2018); 0 for none.
        **conv_options: norm, activation and padding_mode of every convolution.

    Returns:
        The concatenated branches.
    """
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = filters
    branches = [conv_norm_act(x, n1x1, 1, name=f"{name}_1x1", **conv_options)]
    for size, reduce, out in ((3, n3x3_reduce, n3x3), (5, n5x5_reduce, n5x5)):
        branch = x
        if reduce is not None:
            branch = conv_norm_act(branch, reduce, 1, name=f"{name}_{size}x{size}_reduce",
                                   **conv_options)
        branches.append(conv_norm_act(branch, out, size, name=f"{name}_{size}x{size}",
                                      kind=conv_kind, **conv_options))
    branch = pool(x, "max", 3, strides=1, padding="same", name=f"{name}_pool")
    if pool_proj is not None:
        branch = conv_norm_act(branch, pool_proj, 1, name=f"{name}_pool_proj", **conv_options)
    branches.append(branch)
    x = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    if se_ratio:
        x = squeeze_excite(x, se_ratio, f"{name}_se")
    return x


def inception_naive_block(x, n1x1, n3x3, n5x5, *, name, **options):
    """Naive inception module (Fig. 2a): no 1×1 reductions, the pooled input passes as is.

    Its output has n1x1 + n3x3 + n5x5 + input channels, which is why the paper adds the
    reductions. Takes the options of `inception_block`.
    """
    return inception_block(x, (n1x1, None, n3x3, None, n5x5, None), name=name, **options)


def auxiliary_classifier(
    x,
    classes,
    *,
    name,
    classifier_activation="softmax",
    activation="relu",
    dropout=0.7,
    drop_connect=0.0,
    width_multiplier=1.0,
    **conv_options,
):
    """Auxiliary classifier of section 5 on an intermediate map.

    5×5/3 average pooling, a 1×1 convolution with 128 filters, a fully connected layer of 1024
    units, 70% dropout and a linear classifier. Maps under 8 (where 5×5/3 would leave a single
    position or none) or of unknown size are globally average pooled instead.

    Args:
        x: the intermediate map (inception 4a or 4d).
        classes: number of classes.
        name: base name (e.g. "aux1"); the output layer is f"{name}_predictions".
        classifier_activation: activation of the output.
        activation: activation of the convolution and the hidden layer (ReLU in the paper).
        dropout: dropout rate before the classifier.
        drop_connect: DropConnect rate on the fully connected layers.
        width_multiplier: scales the 128 filters and the 1024 units.
        **conv_options: norm and padding_mode of the convolution.

    Returns:
        The auxiliary predictions.
    """
    sides = x.shape[1:-1]
    if None not in sides and min(sides) >= 8:
        x = pool(x, "avg", 5, strides=3, name=f"{name}_pool")
    else:
        x = global_pool(x, "avg", f"{name}_pool", keepdims=True)
    x = conv_norm_act(x, base.scaled(128, width_multiplier), 1, name=f"{name}_conv",
                      activation=activation, **conv_options)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = base.hidden_dense(x, base.scaled(1024, width_multiplier), activation, drop_connect,
                          f"{name}_fc")
    x = factories.dropout(x, dropout, f"{name}_dropout")
    return base.dense(classes, classifier_activation, drop_connect, f"{name}_predictions")(x)


def windows(stages, *, padding_mode):
    """The windows that shrink GoogLeNet's maps; every pool rounds up ("same").

    Only reflected paddings can fail: the stem's 3-pixel pad and the modules' 5×5 convolutions
    (2 pixels) need maps wider than the padding.
    """
    table = [
        Window("conv1", 7, 2, 3, padding_mode),
        Window("pool1", 3, 2, "same"),
        Window("conv2", 3, 1, "same", padding_mode),
        Window("pool2", 3, 2, "same"),
    ]
    for stage in stages:
        if stage != min(stages):
            table.append(Window(f"pool{stage - 1}", 3, 2, "same"))
        table.append(Window(f"inception_{stage}a_5x5", 5, 1, "same", padding_mode))
    return table


def GoogLeNet(
    stages,
    auxiliary_after,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    aux_logits=True,
    activation="relu",
    norm="none",
    lrn=True,
    padding_mode="zeros",
    conv_kind="standard",
    width_multiplier=1.0,
    se_ratio=0.0,
    dropout=0.4,
    aux_dropout=0.7,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a GoogLeNet: a convolutional stem, stages of inception modules, a classifier.

    Args:
        stages: {stage number: per-module filters} as in Table 1 (see GOOGLENET_STAGES); the
            modules of stage s are named inception_{s}a, inception_{s}b, ...
        auxiliary_after: the modules that feed an auxiliary classifier, e.g. ("4a", "4d").
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        aux_logits, activation, norm, lrn, padding_mode, conv_kind, width_multiplier,
            se_ratio, dropout, aux_dropout, spatial_dropout, drop_connect: as in `googlenet`.

    Returns:
        A `keras.Model` with one output, or three ([main, aux1, aux2]) with aux_logits.

    Raises:
        ValueError: an option outside its allowed values (quoted in the message).
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(stages, padding_mode=padding_mode),
        check=lambda: factories.check_choice(conv_kind, PLAIN_CONV_KINDS, "conv_kind"),
        aux_logits=aux_logits, activation=activation, norm=norm, lrn=lrn,
        padding_mode=padding_mode, width_multiplier=width_multiplier, se_ratio=se_ratio,
        dropout=dropout, aux_dropout=aux_dropout, spatial_dropout=spatial_dropout,
        drop_connect=drop_connect,
    )
    options = dict(norm=norm, activation=activation, padding_mode=padding_mode)
    x = conv_norm_act(x, base.scaled(64, width_multiplier), 7, name="conv1", strides=2,
                      padding=3, **options)
    x = pool(x, "max", 3, strides=2, padding="same", name="pool1")
    x = _lrn(x, lrn, "pool1_lrn")
    x = conv_norm_act(x, base.scaled(64, width_multiplier), 1, name="conv2_reduce", **options)
    x = conv_norm_act(x, base.scaled(192, width_multiplier), 3, name="conv2", **options)
    x = _lrn(x, lrn, "conv2_lrn")
    x = pool(x, "max", 3, strides=2, padding="same", name="pool2")

    auxiliary_inputs = []
    for stage, modules in stages.items():
        if stage != min(stages):
            x = pool(x, "max", 3, strides=2, padding="same", name=f"pool{stage - 1}")
        for letter, filters in zip(string.ascii_lowercase, modules):
            block_name = f"inception_{stage}{letter}"
            x = inception_block(
                x, tuple(base.scaled(n, width_multiplier) for n in filters), name=block_name,
                conv_kind=conv_kind, se_ratio=se_ratio, **options,
            )
            x = factories.spatial_dropout(x, spatial_dropout, f"{block_name}_spatial_dropout")
            if f"{stage}{letter}" in auxiliary_after:
                auxiliary_inputs.append(x)

    outputs = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout=dropout, drop_connect=drop_connect,
    )
    if include_top and aux_logits:
        outputs = [outputs] + [
            auxiliary_classifier(
                feature, classes, name=f"aux{i}", classifier_activation=classifier_activation,
                dropout=aux_dropout, drop_connect=drop_connect,
                width_multiplier=width_multiplier, **options,
            )
            for i, feature in enumerate(auxiliary_inputs, start=1)
        ]
    return base.finish(inputs, outputs, name, weights)


def _lrn(x, enabled, name):
    # Caffe's LRN divides alpha by n; LocalResponseNormalization does not (paper formula).
    if not enabled:
        return x
    return LocalResponseNormalization(size=5, bias=1.0, alpha=1e-4 / 5, beta=0.75, name=name)(x)


def googlenet_without_aux(model):
    """Returns the inference network of a GoogLeNet: its main output only, same weights.

    The auxiliary classifiers only help training (section 5: "removed at inference time").
    The returned model shares its layers with `model`, so it can be saved, evaluated or
    fine-tuned on its own; its parameter count is that of `aux_logits=False`.

    Args:
        model: a GoogLeNet built with include_top=True (with or without auxiliary heads),
            or one loaded from a .keras file.

    Returns:
        A single-output `keras.Model` named like `model`.

    Raises:
        ValueError: `model` has no "predictions" layer.
    """
    names = {layer.name for layer in model.layers}
    if "predictions" not in names:
        raise InputError(
            f"googlenet_without_aux needs a model with a 'predictions' layer (include_top=True); "
            f"{model.name!r} has none."
        )
    return keras.Model(model.input, model.get_layer("predictions").output, name=model.name)


@register_model(
    default_input_shape=(224, 224, 3),
    paper="Szegedy et al., 'Going deeper with convolutions', CVPR 2015, Table 1 and Fig. 3",
    outputs="predictions, aux1_predictions, aux2_predictions (aux_logits=False: predictions)",
    loss_weights=LOSS_WEIGHTS,
)
@base.variant(GoogLeNet)
def googlenet(**arguments):
    """GoogLeNet (Inception v1): Table 1's nine inception modules, auxiliary heads on 4a, 4d.

    With its top the model has THREE outputs by default, [predictions, aux1_predictions,
    aux2_predictions] (section 5's auxiliary classifiers, for training with LOSS_WEIGHTS);
    `aux_logits=False` builds the single-output network, and `googlenet_without_aux(model)`
    drops the heads of a trained one.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        aux_logits: add the auxiliary classifiers as extra outputs "aux1_predictions",
            "aux2_predictions" after "predictions" (ignored when include_top is False);
            False gives one output.
        activation: activation of every hidden layer.
        norm: normalisation after each convolution ("none" in the paper; "batch" is the
            common BatchNorm variant, which usually also sets lrn=False).
        lrn: local response normalisation in the stem, as in the paper.
        padding_mode: "zeros", "reflect" or "replicate".
        conv_kind: kind of the inception modules' 3×3 and 5×5 convolutions, one of
            PLAIN_CONV_KINDS (e.g. "spatially_separable": Inception-v3-style 1×n, n×1).
        width_multiplier: scales every convolution and the auxiliary heads' hidden units.
        se_ratio: squeeze-and-excitation after each inception module; 0 for none.
        dropout: dropout before the main classifier (0.4 in the paper).
        aux_dropout: dropout before the auxiliary classifiers (0.7 in the paper).
        spatial_dropout: drops whole maps after each inception module.
        drop_connect: DropConnect rate on every fully connected layer.

    Returns:
        A `keras.Model`: three outputs with the top and aux_logits, else one.
    """
    return GoogLeNet(GOOGLENET_STAGES, AUXILIARY_AFTER, (224, 224, 3), **arguments)
