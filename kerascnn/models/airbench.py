"""airbench94's network (Jordan, '94% on CIFAR-10 in 3.29 seconds on a single GPU', 2024;
github.com/KellerJordan/cifar10-airbench, from tysam-code/hlb-CIFAR10): a whitened VGG.

A frozen 2×2 patch-whitening convolution (Page 2018; `kerascnn.layers.PatchWhitening`, set
from the training images when `kerascnn.train` wraps the network), a GELU, then three groups
of two 3×3 convolutions — the first followed by a 2×2 max-pool — each convolution followed by
BatchNorm without a scale (momentum 0.6) and a GELU, widths 64, 256, 256; a 3×3 max-pool, a
bias-free classifier whose logits are scaled by 1/9. Every convolution starts as the identity
on its first channels (`kerascnn.layers.Dirac`), an implicit residual path, its other filters
and the classifier drawn as PyTorch draws them.

Choices: the scale multiplies the pooled features before the classifier (W·(s·f) = s·(W·f),
as in `resnet9`), so the classifier stays the last weighted layer. 1,971,352 trainable
parameters at 32×32×3 with 10 classes (the whitening's 288 weights are frozen).
"""

import keras

from kerascnn.errors import InputError
from kerascnn.layers.convolution import Window, global_pool
from kerascnn.layers.whitening import Dirac, PatchWhitening
from kerascnn.models import base
from kerascnn.models.registry import register_model

WIDTHS = (64, 256, 256)
BATCH_NORM_MOMENTUM = 0.6  # airbench94's (PyTorch's momentum 0.4), made for its lookahead
# airbench's identity initialisation completes PyTorch's default draw (base.TORCH_INIT): He's
# would make the weights sqrt(6) times larger and so, under BatchNorm, every step of the same
# learning rate smaller.


def windows(shape):
    """The 2×2 whitening patch, three 2×2/2 pools and the final 3×3/3 pool."""
    return [Window("whiten", 2, 1), *(Window(f"block{i}_pool", 2, 2) for i in (1, 2, 3)),
            Window("pool", 3, 3)]


def conv_group(x, filters, *, name, activation, momentum):
    """conv, 2×2 max-pool, BatchNorm, activation, conv, BatchNorm, activation."""
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                kernel_initializer=Dirac(base.TORCH_INIT),
                                name=f"{name}_conv{i}")(x)
        if i == 1:
            x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = keras.layers.BatchNormalization(scale=False, momentum=momentum,
                                            epsilon=1e-5, name=f"{name}_norm{i}")(x)
        x = keras.layers.Activation(activation, name=f"{name}_{activation}{i}")(x)
    return x


def _check(name, logit_scale, whitening, batch_norm_momentum):
    base.check_logit_scale(name, logit_scale, "airbench's 1/9")
    if isinstance(batch_norm_momentum, bool) or not isinstance(batch_norm_momentum, (int, float)) \
            or not 0 <= batch_norm_momentum < 1:
        raise InputError(f"{name}: batch_norm_momentum must be a number in [0, 1); got "
                         f"{batch_norm_momentum!r}.")
    if not isinstance(whitening, bool):
        raise InputError(f"{name}: whitening must be True or False; got {whitening!r}.")


def AirbenchNet(
    widths,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="gelu",
    width_multiplier=1.0,
    logit_scale=1 / 9,
    whitening=True,
    batch_norm_momentum=BATCH_NORM_MOMENTUM,
):
    """Builds airbench's whitened VGG with `widths` for its three groups.

    Args:
        widths: the three groups' widths.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, width_multiplier, logit_scale, whitening, batch_norm_momentum: as in
            `airbench94`.

    Returns:
        A `keras.Model`.
    """
    x, inputs, _ = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=windows, check=lambda: _check(name, logit_scale, whitening, batch_norm_momentum),
        activation=activation, width_multiplier=width_multiplier,
    )
    if whitening:
        x = PatchWhitening(2, name="whiten")(x)
    else:  # a plain 2×2 convolution of the same width, trained
        x = keras.layers.Conv2D(8 * x.shape[-1], 2, name="whiten")(x)
    x = keras.layers.Activation(activation, name=f"whiten_{activation}")(x)
    for i, width in enumerate(widths, start=1):
        x = conv_group(x, base.scaled(width, width_multiplier), name=f"block{i}",
                       activation=activation, momentum=batch_norm_momentum)
    x = keras.layers.MaxPooling2D(3, name="pool")(x)
    x = _head(x, include_top=include_top, pooling=pooling, classes=classes,
              classifier_activation=classifier_activation, logit_scale=logit_scale)
    return base.finish(inputs, x, name, weights)


def _head(x, *, include_top, pooling, classes, classifier_activation, logit_scale):
    """The scaled bias-free classifier, or the features as keras.applications."""
    if not include_top:
        return global_pool(x, pooling, "features_pool") if pooling else x
    x = keras.layers.Flatten(name="flatten")(x)
    return base.scaled_classifier(x, classes=classes, classifier_activation=classifier_activation,
                                  logit_scale=logit_scale)


@register_model(
    default_input_shape=(32, 32, 3),
    paper="Jordan, '94% on CIFAR-10 in 3.29 seconds on a single GPU', arXiv:2404.00498, 2024 "
    "(github.com/KellerJordan/cifar10-airbench, airbench94); whitening of Page, 'How to train "
    "your ResNet', 2018",
)
@base.variant(AirbenchNet, classes=10)
def airbench94(**arguments):
    """airbench94's network: 2×2 whitening, then groups of 64, 256 and 256 channels.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation: activation after the whitening and every BatchNorm (GELU).
        width_multiplier: scales the groups' widths.
        logit_scale: factor on the classifier's logits (1/9; 1 for plain logits).
        whitening: the frozen whitening convolution (True), or a trained 2×2 one.
        batch_norm_momentum: Keras' BatchNorm momentum: airbench94's 0.6, made for its
            lookahead averaging; its ablations without lookahead use 0.9.

    Returns:
        A `keras.Model`.
    """
    return AirbenchNet(WIDTHS, (32, 32, 3), **arguments)
