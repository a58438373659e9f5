"""LeNet-1 and LeNet-5 (LeCun et al.).

Modern reading of the papers: full connectivity between C1 and C3 (the papers' sparse
connection table is dropped), plain average pooling for the trainable subsampling, tanh and
a softmax output instead of the scaled tanh and RBF units. This is the LeNet of d2l.ai and of
most courses; its parameter counts are 3,246 (LeNet-1) and 61,706 (LeNet-5, 32×32 input).
"""

from kerascnn.layers import factories
from kerascnn.layers.convolution import Window, conv, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model


def windows(filters, *, first_padding, kernel_size, padding_mode):
    """The windows that shrink a LeNet's maps: each convolution and its 2×2 pooling."""
    table = []
    for i in range(1, len(filters) + 1):
        table.append(Window(f"conv{i}", kernel_size, 1, first_padding if i == 1 else "valid",
                            padding_mode))
        table.append(Window(f"pool{i}", 2, 2))
    return table


def _first_padding(first_padding, shape):
    """The first convolution's padding: "auto" pads inputs smaller than 32 ("same")."""
    if first_padding != "auto":
        return first_padding
    known = [n for n in shape[:-1] if n is not None]
    return "same" if known and min(known) < 32 else "valid"


def LeNet(
    filters,
    hidden_units,
    default_input_shape,
    /,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    activation,
    norm,
    first_padding,
    padding_mode,
    pool_kind,
    kernel_size,
    width_multiplier,
    dropout,
    spatial_dropout,
    drop_connect,
):
    """Builds a LeNet: 5×5 convolutions each followed by 2×2 pooling, then a classifier.

    Args:
        filters: feature maps of each convolution.
        hidden_units: widths of the fully connected layers before the classifier.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, first_padding, padding_mode, pool_kind, kernel_size,
            width_multiplier, dropout, spatial_dropout, drop_connect: as in `lenet5`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option, or an input too small for the network.
    """
    x, inputs, shape = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(
            filters, first_padding=_first_padding(first_padding, shape), kernel_size=kernel_size,
            padding_mode=padding_mode),
        check=lambda: factories.check_choice(pool_kind, ("avg", "max"), "pool_kind"),
        activation=activation, norm=norm, padding_mode=padding_mode, kernel_size=kernel_size,
        width_multiplier=width_multiplier, dropout=dropout, spatial_dropout=spatial_dropout,
        drop_connect=drop_connect,
    )
    first_padding = _first_padding(first_padding, shape)
    use_bias = factories.check_norm(norm) == "none"
    for i, n in enumerate(filters, start=1):
        x = conv(
            x, base.scaled(n, width_multiplier), kernel_size, name=f"conv{i}",
            padding=first_padding if i == 1 else "valid", padding_mode=padding_mode,
            use_bias=use_bias,
        )
        x = factories.normalization(x, norm, f"conv{i}_norm")
        x = factories.activation(x, activation, f"conv{i}_{activation}")
        x = pool(x, pool_kind, 2, name=f"pool{i}")
        x = factories.spatial_dropout(x, spatial_dropout, f"pool{i}_spatial_dropout")
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, flatten=True,
        hidden_units=[base.scaled(u, width_multiplier) for u in hidden_units],
        activation=activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(28, 28, 1),
    paper="LeCun et al., 'Comparison of learning algorithms for handwritten digit "
    "recognition', 1995, LeNet-1",
)
def lenet1(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="lenet1",
    *,
    activation="tanh",
    norm="none",
    first_padding="valid",
    padding_mode="zeros",
    pool_kind="avg",
    kernel_size=5,
    width_multiplier=1.0,
    dropout=0.0,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """LeNet-1: 4 and 12 maps of 5×5 'valid' convolutions, average pooling, 10 outputs.

    Args: as `lenet5`.
    """
    return LeNet((4, 12), (), (28, 28, 1), **locals())


@register_model(
    default_input_shape=(32, 32, 1),
    paper="LeCun et al., 'Gradient-based learning applied to document recognition', 1998, "
    "Fig. 2",
)
def lenet5(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="lenet5",
    *,
    activation="tanh",
    norm="none",
    first_padding="auto",
    padding_mode="zeros",
    pool_kind="avg",
    kernel_size=5,
    width_multiplier=1.0,
    dropout=0.0,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """LeNet-5: 6 and 16 maps of 5×5 convolutions, average pooling, FC 120-84-10.

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications (without the top, the
            default input takes any size).
        activation: activation of every hidden layer.
        norm: normalisation after each convolution ("none" in the papers).
        first_padding: padding of the first convolution: "auto" keeps the map size ("same")
            when the input side is below 32, so 28×28 MNIST gives LeNet-5's 28×28 C1 maps;
            "same", "valid", or explicit sizes.
        padding_mode: "zeros", "reflect" or "replicate".
        pool_kind: "avg" (the papers' subsampling) or "max".
        kernel_size: size of the convolution kernels.
        width_multiplier: scales the number of filters and hidden units.
        dropout, spatial_dropout, drop_connect: regularisation (none in the papers).

    Returns:
        A `keras.Model`.
    """
    return LeNet((6, 16), (120, 84), (32, 32, 1), **locals())
