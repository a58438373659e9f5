"""Learning-rate schedules of the course, step-based and serializable."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith & Topin's one-cycle policy (2019), with cosine phases as in fastai and PyTorch.

    Kept here because Keras has no one-cycle schedule (PyTorch's `OneCycleLR` has no Keras
    counterpart); warm-up cosine is Keras' own `CosineDecay`.

    Rises from max/`div` to `max_learning_rate` over `warmup_fraction` of the run, then
    falls to max/`final_div`.
    """

    def __init__(self, max_learning_rate, total_steps, warmup_fraction=0.3, div=25.0,
                 final_div=1e4):
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = max(1.0, self.warmup_fraction * self.total_steps)
        start, top = self.max_learning_rate / self.div, self.max_learning_rate
        end = self.max_learning_rate / self.final_div
        up = ops.clip(step / peak, 0.0, 1.0)
        down = ops.clip((step - peak) / max(1.0, self.total_steps - peak), 0.0, 1.0)
        rising = top + (start - top) * 0.5 * (1 + ops.cos(math.pi * up))
        falling = end + (top - end) * 0.5 * (1 + ops.cos(math.pi * down))
        return ops.where(step < peak, rising, falling)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div": self.div,
            "final_div": self.final_div,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """A piecewise-linear triangle: from `start` × the peak to the peak at `peak_fraction` of
    the run, then down to `end` × the peak at its last step (airbench's schedule, Jordan 2024:
    start 0.2, peak at 0.2, end 0 in its ablations; 0.2, 0.23 and 0.07 in airbench94).
    """

    def __init__(self, max_learning_rate, total_steps, start=0.2, peak_fraction=0.2, end=0.0):
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.start = float(start)
        self.peak_fraction = float(peak_fraction)
        self.end = float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = max(1.0, self.peak_fraction * self.total_steps)
        up = self.start + (1 - self.start) * ops.clip(step / peak, 0.0, 1.0)
        down = 1 + (self.end - 1) * ops.clip((step - peak) / max(1.0, self.total_steps - peak),
                                             0.0, 1.0)
        return self.max_learning_rate * ops.where(step < peak, up, down)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "start": self.start,
            "peak_fraction": self.peak_fraction,
            "end": self.end,
        }


def learning_rate(recipe, steps_per_epoch, epochs):
    """The optimizer's learning rate for a recipe: a float or a LearningRateSchedule.

    "plateau" returns a float: the ReduceLROnPlateau callback (see callbacks) changes it.
    """
    total = steps_per_epoch * epochs
    lr = recipe.learning_rate
    if recipe.schedule in ("constant", "plateau"):
        return lr
    if recipe.schedule == "step":
        boundaries = sorted({max(1, round(m * total)) for m in recipe.milestones})
        values = [lr * recipe.factor**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if recipe.schedule == "inverse_time":
        return keras.optimizers.schedules.InverseTimeDecay(lr, steps_per_epoch, 1.0, staircase=True)
    if recipe.schedule == "cosine":
        # Linear warm-up from 0 to lr over `warmup` steps, then cosine decay to 0 at the end.
        warmup = round(recipe.warmup_epochs * steps_per_epoch)
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr, max(1, total - warmup), warmup_target=lr if warmup else None,
            warmup_steps=warmup)
    if recipe.schedule == "triangle":
        return Triangle(lr, total, *recipe.triangle)
    return OneCycle(lr, total)
