"""The recipe's optimizer, and SGD with an L2 penalty through the gradient (`L2SGD`)."""

import keras

from kerascnn.errors import InputError


@keras.saving.register_keras_serializable(package="kerascnn")
class L2SGD(keras.optimizers.SGD):
    """SGD (with momentum) on the loss plus an L2 penalty `l2 / 2 * ||w||^2`, through the gradient,
    with optional per-variable factors on the loss gradient.

    Each gradient g becomes g + l2 * w before the momentum update, as in Caffe and the AlexNet
    and ResNet papers. Keras' `weight_decay` instead subtracts `lr * wd * w` from the weights
    after the update (decoupled decay, Loshchilov & Hutter, 2019), which with momentum 0.9 is
    not the same training. Clipping (`clipnorm`) applies to the loss gradient, before the L2
    term, as `torch.nn.utils.clip_grad_norm_` before `SGD(weight_decay=...)` does.

    `gradient_scales` {variable path: factor} multiplies a variable's loss gradient before the
    L2 term is added: its learning rate times the factor, its decay per step unchanged, as
    airbench's parameter groups give its BatchNorm biases (`lr × 64`, `weight_decay / 64`).

    Args:
        l2: the L2 coefficient (5e-4 for AlexNet, 1e-4 for ResNet).
        gradient_scales: {variable path: factor on its loss gradient}; None for none.
        **kwargs: keras.optimizers.SGD arguments (learning_rate, momentum, nesterov, ...).
    """

    def __init__(self, l2=0.0, gradient_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.gradient_scales = {str(k): float(v) for k, v in (gradient_scales or {}).items()}
        self._gradient_factors = []

    def build(self, variables):
        super().build(variables)
        self._gradient_factors = [self.gradient_scales.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._gradient_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            gradient = keras.ops.multiply(gradient, keras.ops.cast(factor, gradient.dtype))
        if self.l2:
            gradient = keras.ops.add(gradient, keras.ops.multiply(
                keras.ops.cast(self.l2, variable.dtype), variable))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2,
                "gradient_scales": dict(self.gradient_scales)}


def build_optimizer(recipe, learning_rate, steps_per_epoch):
    """The recipe's Keras optimizer with `learning_rate` (a float or a schedule).

    `recipe.weight_decay` is Keras' decoupled decay, except with `weight_decay_mode="l2"`
    (SGD only): then it is an L2 penalty through the gradient (`L2SGD`). A recipe with a
    `bias_lr_scale` gets an `L2SGD` too, whose `gradient_scales` `scale_biases` sets.
    """
    ema = recipe.ema
    if ema:  # keep the average's time constant under a tenth of the run
        ema = min(ema, 1 - 10 / max(20, steps_per_epoch * recipe.epochs))
    l2 = recipe.weight_decay_mode == "l2"
    common = dict(learning_rate=learning_rate,
                  weight_decay=None if l2 or not recipe.weight_decay else recipe.weight_decay,
                  clipnorm=recipe.gradient_clip, use_ema=bool(ema), ema_momentum=ema or 0.99)
    if l2 or recipe.bias_lr_scale != 1:
        return L2SGD(l2=recipe.weight_decay if l2 else 0.0, momentum=recipe.momentum,
                     nesterov=recipe.nesterov, **common)
    return {
        "sgd": lambda: keras.optimizers.SGD(momentum=recipe.momentum, nesterov=recipe.nesterov, **common),
        "adam": lambda: keras.optimizers.Adam(beta_1=recipe.beta_1, beta_2=recipe.beta_2,
                                              **common),
        "adamw": lambda: keras.optimizers.AdamW(beta_1=recipe.beta_1, beta_2=recipe.beta_2,
                                                **{**common, "weight_decay": recipe.weight_decay}),
        "rmsprop": lambda: keras.optimizers.RMSprop(momentum=recipe.momentum, **common),
    }[recipe.optimizer]()


def scale_biases(optimizer, paths, scale):
    """Sets an unbuilt `L2SGD`'s gradient factor of the variables at `paths` to `scale`."""
    if not isinstance(optimizer, L2SGD):
        raise InputError(
            f"bias_lr_scale={scale!r} needs kerascnn's L2SGD optimizer (what the recipe builds); "
            f"the optimizer factory gave {type(optimizer).__name__}.")
    optimizer.gradient_scales = {**optimizer.gradient_scales, **{path: scale for path in paths}}
