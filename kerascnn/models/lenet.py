"""LeNet-1 and LeNet-5 (LeCun et al.).

Modern reading of the papers: full connectivity between C1 and C3 (the papers' sparse
connection table is dropped), plain average pooling for the trainable subsampling, tanh and
a softmax output instead of the scaled tanh and RBF units. This is the LeNet of d2l.ai and of
most courses; its parameter counts are 3,246 (LeNet-1) and 61,706 (LeNet-5, 32×32 input).
"""

from kerascnn.errors import InputError
from kerascnn.layers import factories
from kerascnn.layers.convolution import Window, conv, pool
from kerascnn.models import base
from kerascnn.models.registry import register_model


# Activations that never decrease: max-pooling commutes with them, so a max-pooled LeNet pools
# first and activates a quarter of the values (the same function, less work).
MONOTONE = ("relu", "relu6", "leaky_relu", "elu", "selu", "tanh", "sigmoid", "softplus")


def windows(kernel_sizes, *, first_padding, padding_mode):
    """The windows that shrink a LeNet's maps: each convolution and its 2×2 pooling."""
    table = []
    for i, size in enumerate(kernel_sizes, start=1):
        table.append(Window(f"conv{i}", size, 1, first_padding if i == 1 else "valid",
                            padding_mode))
        table.append(Window(f"pool{i}", 2, 2))
    return table


def _first_padding(first_padding, shape):
    """The first convolution's padding: "auto" pads inputs smaller than 32 ("same")."""
    if first_padding != "auto":
        return first_padding
    known = [n for n in shape[:-1] if n is not None]
    return "same" if known and min(known) < 32 else "valid"


def _kernel_sizes(kernel_size, count, name):
    """One kernel size per convolution: `kernel_size` repeated, or as given."""
    sizes = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size,) * count
    if len(sizes) != count or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
                                      for k in sizes):
        raise InputError(f"{name}: kernel_size={kernel_size!r} must be a positive int or one "
                         f"per convolution ({count}), e.g. {(5, 3)[:count] if count <= 2 else 5}.")
    return sizes


def _pool_first(pool_kind, activation):
    """Whether max-pooling may come before the activation (see MONOTONE)."""
    return pool_kind == "max" and str(activation).split(":")[0] in MONOTONE


def LeNet(
    paper_filters,
    paper_hidden_units,
    default_input_shape,
    /,
    *,
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
    activation="tanh",
    norm="none",
    first_padding="auto",
    padding_mode="zeros",
    pool_kind="avg",
    kernel_size=5,
    filters=None,
    hidden_units=None,
    width_multiplier=1.0,
    dropout=0.0,
    spatial_dropout=0.0,
    drop_connect=0.0,
):
    """Builds a LeNet: convolutions each followed by 2×2 pooling, then a classifier.

    Args:
        paper_filters: the paper's feature maps of each convolution.
        paper_hidden_units: the paper's widths of the fully connected layers.
        default_input_shape: the paper's input.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name: as in keras.applications.
        activation, norm, first_padding, padding_mode, pool_kind, kernel_size, filters,
            hidden_units, width_multiplier, dropout, spatial_dropout, drop_connect: as in
            `lenet5`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: a bad option, or an input too small for the network.
    """
    base.check_options(name, width_multiplier=width_multiplier)  # the widths scale by it
    filters = base.hidden_units(filters, paper_filters, width_multiplier, name, "filters")
    if not filters:
        raise InputError(f"{name}: filters=() leaves no convolution; give at least one width.")
    kernel_sizes = _kernel_sizes(kernel_size, len(filters), name)
    x, inputs, shape = base.begin(
        name, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, default_input_shape=default_input_shape,
        windows=lambda shape: windows(
            kernel_sizes, first_padding=_first_padding(first_padding, shape),
            padding_mode=padding_mode),
        check=lambda: factories.check_choice(pool_kind, ("avg", "max"), "pool_kind"),
        activation=activation, norm=norm, padding_mode=padding_mode,
        width_multiplier=width_multiplier, dropout=dropout, spatial_dropout=spatial_dropout,
        drop_connect=drop_connect,
    )
    first_padding = _first_padding(first_padding, shape)
    use_bias = factories.check_norm(norm) == "none"
    pool_first = _pool_first(pool_kind, activation)
    for i, (n, size) in enumerate(zip(filters, kernel_sizes), start=1):
        x = conv(x, n, size, name=f"conv{i}", padding=first_padding if i == 1 else "valid",
                 padding_mode=padding_mode, use_bias=use_bias)
        x = factories.normalization(x, norm, f"conv{i}_norm")
        if pool_first:
            x = pool(x, pool_kind, 2, name=f"pool{i}")
        x = factories.activation(x, activation, f"conv{i}_{activation}")
        if not pool_first:
            x = pool(x, pool_kind, 2, name=f"pool{i}")
        x = factories.spatial_dropout(x, spatial_dropout, f"pool{i}_spatial_dropout")
    x = base.classifier_head(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, flatten=True,
        hidden_units=base.hidden_units(hidden_units, paper_hidden_units, width_multiplier, name),
        activation=activation, dropout=dropout, drop_connect=drop_connect,
    )
    return base.finish(inputs, x, name, weights)


@register_model(
    default_input_shape=(28, 28, 1),
    paper="LeCun et al., 'Comparison of learning algorithms for handwritten digit "
    "recognition', 1995, LeNet-1",
)
@base.variant(LeNet, classes=10, first_padding="valid")
def lenet1(**arguments):
    """LeNet-1: 4 and 12 maps of 5×5 'valid' convolutions, average pooling, 10 outputs.

    Args: as `lenet5`.
    """
    return LeNet((4, 12), (), (28, 28, 1), **arguments)


@register_model(
    default_input_shape=(32, 32, 1),
    paper="LeCun et al., 'Gradient-based learning applied to document recognition', 1998, "
    "Fig. 2",
)
@base.variant(LeNet, classes=10)
def lenet5(**arguments):
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
        pool_kind: "avg" (the papers' subsampling) or "max" (pooled before a monotone
            activation such as ReLU: the same function, a quarter of the activations).
        kernel_size: size of the convolution kernels, or one size per convolution.
        filters: feature maps of each convolution, e.g. (24, 32) (default: the paper's,
            scaled by `width_multiplier`); their number sets the number of convolutions.
        hidden_units: widths of the fully connected layers before the classifier, e.g.
            (256,), () for none (default: the paper's, scaled by `width_multiplier`).
        width_multiplier: scales the paper's filters and hidden units.
        dropout, spatial_dropout, drop_connect: regularisation (none in the papers).

    Returns:
        A `keras.Model`.
    """
    return LeNet((6, 16), (120, 84), (32, 32, 1), **arguments)
