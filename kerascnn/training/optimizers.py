"""The recipe's optimizer, and SGD with an L2 penalty through the gradient (`L2SGD`)."""

import keras


@keras.saving.register_keras_serializable(package="kerascnn")
class L2SGD(keras.optimizers.SGD):
    """SGD (with momentum) on the loss plus an L2 penalty `l2 / 2 * ||w||^2`, through the gradient.

    Each gradient g becomes g + l2 * w before the momentum update, as in Caffe and the AlexNet
    and ResNet papers. Keras' `weight_decay` instead subtracts `lr * wd * w` from the weights
    after the update (decoupled decay, Loshchilov & Hutter, 2019), which with momentum 0.9 is
    not the same training. Clipping (`clipnorm`) applies to the loss gradient, before the L2
    term, as `torch.nn.utils.clip_grad_norm_` before `SGD(weight_decay=...)` does.

    Args:
        l2: the L2 coefficient (5e-4 for AlexNet, 1e-4 for ResNet).
        **kwargs: keras.optimizers.SGD arguments (learning_rate, momentum, nesterov, ...).
    """

    def __init__(self, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        gradient = keras.ops.add(gradient, keras.ops.multiply(
            keras.ops.cast(self.l2, variable.dtype), variable))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def build_optimizer(recipe, learning_rate, steps_per_epoch):
    """The recipe's Keras optimizer with `learning_rate` (a float or a schedule).

    `recipe.weight_decay` is Keras' decoupled decay, except with `weight_decay_mode="l2"`
    (SGD only): then it is an L2 penalty through the gradient (`L2SGD`).
    """
    ema = recipe.ema
    if ema:  # keep the average's time constant under a tenth of the run
        ema = min(ema, 1 - 10 / max(20, steps_per_epoch * recipe.epochs))
    l2 = recipe.weight_decay_mode == "l2"
    common = dict(learning_rate=learning_rate,
                  weight_decay=None if l2 or not recipe.weight_decay else recipe.weight_decay,
                  clipnorm=recipe.gradient_clip, use_ema=bool(ema), ema_momentum=ema or 0.99)
    if l2:
        return L2SGD(l2=recipe.weight_decay, momentum=recipe.momentum, nesterov=recipe.nesterov,
                     **common)
    return {
        "sgd": lambda: keras.optimizers.SGD(momentum=recipe.momentum, nesterov=recipe.nesterov, **common),
        "adam": lambda: keras.optimizers.Adam(beta_1=recipe.beta_1, beta_2=recipe.beta_2,
                                              **common),
        "adamw": lambda: keras.optimizers.AdamW(beta_1=recipe.beta_1, beta_2=recipe.beta_2,
                                                **{**common, "weight_decay": recipe.weight_decay}),
        "rmsprop": lambda: keras.optimizers.RMSprop(momentum=recipe.momentum, **common),
    }[recipe.optimizer]()
