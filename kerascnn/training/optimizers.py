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

    `lookahead` k > 0 averages as airbench94 does (Jordan 2024, after Zhang et al.'s Lookahead,
    2019): every k steps each weight's slow copy moves towards it, `slow += (1 - d) (w - slow)`,
    and the weight is set to the slow copy; `d = 0.95^k (t / total_steps)^3` at step t, so the
    averaging is off early and strongest at the end. At `total_steps` the weights become the
    slow copies (d = 1 when that step is not a multiple of k), as airbench ends. The slow copies
    are optimizer variables: checkpoints keep them. (airbench also averages BatchNorm's running
    statistics, which are not the optimizer's; here they keep their own moving averages.)

    Args:
        l2: the L2 coefficient (5e-4 for AlexNet, 1e-4 for ResNet).
        gradient_scales: {variable path: factor on its loss gradient}; None for none.
        lookahead: steps between averagings (airbench94: 5); 0 for none.
        total_steps: the run's steps, which the averaging's schedule spans (with `lookahead`).
        **kwargs: keras.optimizers.SGD arguments (learning_rate, momentum, nesterov, ...).
    """

    def __init__(self, l2=0.0, gradient_scales=None, lookahead=0, total_steps=None, **kwargs):
        super().__init__(**kwargs)
        if lookahead and not (isinstance(total_steps, int) and total_steps >= 1):
            raise InputError(f"L2SGD(lookahead={lookahead!r}) needs the run's total_steps (a "
                             f"positive integer); got total_steps={total_steps!r}.")
        self.l2 = float(l2)
        self.gradient_scales = {str(k): float(v) for k, v in (gradient_scales or {}).items()}
        self.lookahead = int(lookahead)
        self.total_steps = total_steps
        self._gradient_factors = []
        self._slow = []

    def build(self, variables):
        super().build(variables)
        self._gradient_factors = [self.gradient_scales.get(v.path, 1.0) for v in variables]
        if self.lookahead:
            self._slow = [self.add_variable_from_reference(v, name="lookahead")
                          for v in variables]
            for slow, variable in zip(self._slow, variables):
                slow.assign(variable)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        factor = self._gradient_factors[index]
        if factor != 1.0:
            gradient = keras.ops.multiply(gradient, keras.ops.cast(factor, gradient.dtype))
        if self.l2:
            gradient = keras.ops.add(gradient, keras.ops.multiply(
                keras.ops.cast(self.l2, variable.dtype), variable))
        super().update_step(gradient, variable, learning_rate)
        if self.lookahead:
            self._look_ahead(variable, self._slow[index])

    def _look_ahead(self, variable, slow):
        """Every `lookahead` steps (and at the last), moves the slow copy and sets the weight."""
        ops = keras.ops
        step = ops.cast(self.iterations + 1, "float32")  # counting this one
        on_beat = ops.equal(ops.mod(step, self.lookahead), 0.0)
        progress = ops.minimum(step / self.total_steps, 1.0)
        decay = ops.where(on_beat, 0.95**self.lookahead * progress**3, 1.0)
        sync = ops.logical_or(on_beat, ops.greater_equal(step, self.total_steps))
        moved = ops.where(sync, slow + (1.0 - ops.cast(decay, slow.dtype)) * (variable - slow),
                          slow)
        slow.assign(moved)
        variable.assign(ops.where(sync, moved, variable))

    def get_config(self):
        return {**super().get_config(), "l2": self.l2,
                "gradient_scales": dict(self.gradient_scales), "lookahead": self.lookahead,
                "total_steps": self.total_steps}


def build_optimizer(recipe, learning_rate, steps_per_epoch):
    """The recipe's Keras optimizer with `learning_rate` (a float or a schedule).

    `recipe.weight_decay` is Keras' decoupled decay, except with `weight_decay_mode="l2"`
    (SGD only): then it is an L2 penalty through the gradient (`L2SGD`). A recipe with a
    `bias_lr_scale` gets an `L2SGD` too, whose `gradient_scales` `scale_biases` sets, and so
    does one with `lookahead` (over the recipe's epochs of `steps_per_epoch`).
    """
    ema = recipe.ema
    if ema:  # keep the average's time constant under a tenth of the run
        ema = min(ema, 1 - 10 / max(20, steps_per_epoch * recipe.epochs))
    l2 = recipe.weight_decay_mode == "l2"
    common = dict(learning_rate=learning_rate,
                  weight_decay=None if l2 or not recipe.weight_decay else recipe.weight_decay,
                  clipnorm=recipe.gradient_clip, use_ema=bool(ema), ema_momentum=ema or 0.99)
    if l2 or recipe.bias_lr_scale != 1 or recipe.lookahead:
        return L2SGD(l2=recipe.weight_decay if l2 else 0.0, momentum=recipe.momentum,
                     nesterov=recipe.nesterov, lookahead=recipe.lookahead,
                     total_steps=steps_per_epoch * recipe.epochs, **common)
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
