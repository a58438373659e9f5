"""ResNet-9 (Page, 'How to train your ResNet', 2018–2019): the network of the fastest CIFAR-10
recipes, the DAWNBench winner (github.com/davidcpage/cifar10-fast, `net()`).

A VGG-like stack of 3×3 convolution-BatchNorm-ReLU layers, each later stage halving the map
with a 2×2 max-pool, and two residual blocks of two such layers added to their input (He et
al. 2016's identity shortcut, without an activation after the sum). The classifier is
bias-free and its logits are multiplied by 0.125 (Page's `Mul(weight=0.125)`), which keeps
the softmax from saturating early at his high learning rates.

Choices, none of which changes a parameter count or the function computed:
- Page max-pools the 4×4 map of a 32×32 input with a 4×4 window; a global max-pool is the
  same there and accepts other sizes too.
- The 0.125 scales the pooled features, before the bias-free classifier, not its logits:
  W·(0.125·f) = 0.125·(W·f), so outputs and gradients are Page's, and the classifier stays
  the last weighted layer before the output (the head `kerascnn.transfer` replaces).
- BatchNorm uses PyTorch's epsilon and momentum (kerascnn.layers.factories), as Page's.

Parameters at 32×32×3 with 10 classes: 6,573,120 trainable (Page's 6.57 M; PyTorch counts no
BatchNorm running statistics), 6,577,600 in all with Keras' moving means and variances.
"""

from kerascnn.layers.blocks import conv_norm_act, residual_add
from kerascnn.layers.convolution import Window, global_pool, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model

# Page's `net()`: (stage, filters, 2×2 max-pool after the convolution, residual block after).
STAGES = (
    ("prep", 64, False, False),
    ("layer1", 128, True, True),
    ("layer2", 256, True, False),
    ("layer3", 512, True, True),
)


def windows(stages):
    """The windows that shrink the map: the 2×2/2 pools (every convolution pads "same")."""
    return [Window(f"{name}_pool", 2, 2) for name, _, pooled, _ in stages if pooled]


def _conv_norm_act(x, filters, name, *, activation, **options):
    """A 3×3 convolution `name`_conv, `name`_norm and `name`_<activation>: Page's conv_bn."""
    return conv_norm_act(x, filters, 3, name=f"{name}_conv", norm_name=f"{name}_norm",
                         activation=activation, activation_name=f"{name}_{activation}",
                         **options)


def residual_block(x, *, name, **options):
    """Page's `residual(c)`: two 3×3 conv-norm-activation layers added to the input."""
    y = _conv_norm_act(x, x.shape[-1], f"{name}_res1", **options)
    y = _conv_norm_act(y, x.shape[-1], f"{name}_res2", **options)
    return residual_add(y, x, name=name)


def stage(x, filters, *, name, pooled, residual, **options):
    """One row of the stage table: conv-norm-activation, a 2×2 max-pool, a residual block."""
    x = _conv_norm_act(x, filters, name, **options)
    if pooled:
        x = pool(x, "max", 2, name=f"{name}_pool")
    return residual_block(x, name=name, **options) if residual else x


def classifier_head(x, *, include_top, pooling, classes, classifier_activation, logit_scale):
    """A global max-pool, the scale and a bias-free classifier; or the features, as
    keras.applications."""
    if not include_top:
        return global_pool(x, pooling, "pool") if pooling else x
    x = global_pool(x, "max", "max_pool")
    return base.scaled_classifier(x, classes=classes, classifier_activation=classifier_activation,
                                  logit_scale=logit_scale)


def PageResNet(
    stages,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="relu",
    norm="batch",
    width_multiplier=1.0,
    logit_scale=0.125,
):
    """Builds a network of Page's kind from a stage table, then its scaled classifier.

    Args:
        stages: rows (name, filters, pooled, residual), as `STAGES`.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, width_multiplier, logit_scale: as in `resnet9`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option (quoted), or an input too small for the pools.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(stages),
        check=lambda: base.check_logit_scale(name, logit_scale, "Page's 0.125"),
        activation=activation, norm=norm, width_multiplier=width_multiplier,
    )
    for stage_name, filters, pooled, residual in stages:
        x = stage(x, base.scaled(filters, width_multiplier), name=stage_name, pooled=pooled,
                  residual=residual, norm=norm, activation=activation)
    x = classifier_head(x, include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation, logit_scale=logit_scale)
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(32, 32, 3),
    paper="Page, 'How to train your ResNet', 2018–2019 (github.com/davidcpage/cifar10-fast, "
    "DAWNBench), `net()`; identity shortcuts of He et al., 'Deep residual learning for image "
    "recognition', CVPR 2016",
)
@base.variant(PageResNet, classes=10)
def resnet9(**arguments):
    """ResNet-9: prep 64, then 128, 256, 512 with max-pools, residual blocks at 128 and 512.

    Page 2018–2019 (davidcpage/cifar10-fast, `net()`); 6,573,120 trainable parameters at
    32×32×3 with 10 classes.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size of 8 or more per side).
        activation: activation after every normalisation (ReLU in Page's network).
        norm: normalisation after every convolution ("batch" in Page's network).
        width_multiplier: scales every width (64, 128, 256, 512).
        logit_scale: factor on the classifier's logits (Page's 0.125; 1 for plain logits).

    Returns:
        A `keras.Model`.
    """
    return PageResNet(STAGES, (32, 32, 3), **arguments)
