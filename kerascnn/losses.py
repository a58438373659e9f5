"""Training losses by task: cross-entropy or the multiclass SVM (hinge) loss, squared error.

The course's hinge loss is the multiclass SVM loss of Weston & Watkins (1999), as in CS231n:
L_i = sum over j != y_i of max(0, s_j - s_{y_i} + margin). Keras has no such loss:
`keras.losses.Hinge` / `SquaredHinge` are binary (labels -1 / 1) and `CategoricalHinge` is
Crammer & Singer's max over j != y_i, so `MulticlassHinge` implements it.
"""

import keras
from keras import ops

from kerascnn.errors import InputError

TASKS = ("classification", "regression")
# The first loss of each task is its default.
LOSSES = {
    "classification": ("categorical_crossentropy", "hinge", "squared_hinge"),
    "regression": ("mse", "mae"),
}
PROBABILITY_LOSSES = ("categorical_crossentropy",)  # trained on a softmax's probabilities


@keras.saving.register_keras_serializable(package="kerascnn")
class MulticlassHinge(keras.losses.Loss):
    """The multiclass SVM loss (Weston & Watkins, 1999; CS231n), on raw class scores.

    Per example: sum over j != y of max(0, s_j - s_y + margin), squared inside the sum when
    `squared` (the L2-SVM); averaged over the batch. The model ends in a linear layer (no
    softmax). With soft labels (MixUp, CutMix), s_y is the label-weighted score and class j
    counts with weight 1 - y_j, which is the same loss for one-hot labels.

    Args:
        margin: the margin Delta (1 in CS231n; any positive value, as the weights scale).
        squared: square each margin violation (the "squared_hinge" loss).
        reduction, name, dtype: as for `keras.losses.Loss`.
    """

    def __init__(self, margin=1.0, squared=False, reduction="sum_over_batch_size",
                 name="multiclass_hinge", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)
        self.squared = bool(squared)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        correct = ops.sum(y_true * y_pred, axis=-1, keepdims=True)
        violations = ops.relu(y_pred - correct + self.margin) * (1.0 - y_true)
        if self.squared:
            violations = ops.square(violations)
        return ops.sum(violations, axis=-1)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


def check_loss(task, loss, label_smoothing=0.0):
    """Validates a task and its loss (None: the task's default) before anything is built.

    Raises:
        ValueError: an unknown task, a loss of the other task, or label smoothing with a
            loss other than cross-entropy.
    """
    if task not in TASKS:
        raise InputError(f"task={task!r} is not supported; choose one of {TASKS}.")
    if loss is not None and loss not in LOSSES[task]:
        other = next((t for t in TASKS if loss in LOSSES[t]), None)
        hint = (f" {loss!r} is a {other} loss: pass task={other!r} (--task {other})."
                if other else "")
        raise InputError(f"loss={loss!r} does not fit task={task!r}; choose one of "
                         f"{LOSSES[task]}.{hint}")
    if label_smoothing and loss_name(task, loss) not in PROBABILITY_LOSSES:
        raise InputError(f"label_smoothing={label_smoothing} smooths cross-entropy targets; "
                         f"the {task} loss {loss_name(task, loss)!r} takes none. Set "
                         "label_smoothing=0, or use a recipe without it.")


def loss_name(task, loss):
    """The loss a task trains with: `loss`, or the task's default when None."""
    return LOSSES[task][0] if loss is None else loss


def get_loss(task, loss, label_smoothing=0.0):
    """The Keras loss of a task and loss name (None: the task's default)."""
    check_loss(task, loss, label_smoothing)
    return {
        "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(
            label_smoothing=label_smoothing),
        "hinge": lambda: MulticlassHinge(),
        "squared_hinge": lambda: MulticlassHinge(squared=True, name="multiclass_squared_hinge"),
        "mse": lambda: keras.losses.MeanSquaredError(),
        "mae": lambda: keras.losses.MeanAbsoluteError(),
    }[loss_name(task, loss)]()


def output_activation(task, loss):
    """The activation the model's output needs: "softmax" for cross-entropy, else None
    (linear: class scores for the hinge losses, values for regression)."""
    return "softmax" if loss_name(task, loss) in PROBABILITY_LOSSES else None


def output_kind(model):
    """What a compiled model outputs, read from its loss: "probabilities", "scores" or
    "values" (regression); "probabilities" for a model compiled without a known loss."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and loss:
        loss = loss[0]
    if isinstance(loss, dict) and loss:
        loss = next(iter(loss.values()))
    if isinstance(loss, MulticlassHinge):
        return "scores"
    if isinstance(loss, (keras.losses.MeanSquaredError, keras.losses.MeanAbsoluteError)):
        return "values"
    return "probabilities"
