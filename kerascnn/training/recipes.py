"""Training recipes as data: named, printable, overridable field by field."""

import dataclasses

from kerascnn.layers.factories import check_choice

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "inverse_time", "plateau", "cosine", "one_cycle")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained, except the model and the data.

    Attributes:
        name: the recipe's name.
        optimizer: one of OPTIMIZERS ("sgd" uses `momentum` and `nesterov`).
        learning_rate: the base (peak) learning rate.
        momentum: SGD / RMSprop momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: decoupled weight decay (Keras' `weight_decay`; for SGD it equals an L2
            penalty of the same coefficient).
        schedule: one of SCHEDULES: "step" divides by `factor` at `milestones` (fractions of
            the run); "inverse_time" is lr / (1 + epoch); "plateau" divides by `factor` when
            the validation loss stalls for `patience` epochs; "cosine" decays to 0 after
            `warmup_epochs` of linear warm-up; "one_cycle" is Smith's one-cycle policy.
        factor, milestones, patience: parameters of the step and plateau schedules.
        warmup_epochs: linear warm-up for "cosine".
        epochs, batch_size: the paper's (or a sensible) default; train() may override.
        label_smoothing: smoothing of the one-hot targets.
        ema: momentum of the exponential moving average of weights (0 = off); capped during
            short runs so that its time constant is at most a tenth of the run.
        gradient_clip: clip each gradient's norm to this value (None = off).
        early_stopping: patience in epochs on the validation loss (0 = off).
        augment: augmentation spec for the training split (see kerascnn.data.augmentation).
        normalization: input normalisation inside the model (see kerascnn.data.Preprocessing).
        dropout, drop_path_rate: model options applied when the model is built by name.
        validation_split: fraction of the training split held out when the data has none.
        mixed_precision: float16 compute with float32 weights (GPU only; ignored on CPU).
        jit_compile: XLA compilation: True, False or "auto" (Keras decides). Off by default:
            on a CPU it was 2 to 10 times slower here; Keras also switches it off when
            `train(deterministic=True)` enables op determinism.
    """

    name: str = "custom"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    factor: float = 0.1
    milestones: tuple = (1 / 3, 2 / 3)
    patience: int = 5
    warmup_epochs: float = 0.0
    epochs: int = 10
    batch_size: int = 32
    label_smoothing: float = 0.0
    ema: float = 0.0
    gradient_clip: float = None
    early_stopping: int = 0
    augment: object = None
    normalization: str = "standardize"
    dropout: float = None
    drop_path_rate: float = None
    validation_split: float = 0.1
    mixed_precision: bool = False
    jit_compile: object = False

    def __post_init__(self):
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        for field in ("learning_rate", "epochs", "batch_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"recipe {field} must be a positive number; got {value!r}.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1); got {self.label_smoothing!r}.")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema momentum must be in [0, 1); got {self.ema!r}.")

    def replace(self, **overrides):
        """Returns a copy with some fields changed; unknown fields raise ValueError."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Recipe has no field {', '.join(unknown)}; fields: {sorted(fields)}.")
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        """The recipe as a JSON-ready dict."""
        return dataclasses.asdict(self)


RECIPES = {
    # Small data on a laptop: Adam with a cosine decay converges in a few epochs.
    "quick": Recipe(
        name="quick", optimizer="adam", learning_rate=2e-3, schedule="cosine",
        warmup_epochs=0.5, epochs=15, batch_size=32,
    ),
    # MNIST in seconds on a CPU: one-cycle Adam on batches of 256, five epochs. With lenet5 and
    # MNIST_FAST_OPTIONS it reaches 99.0% test accuracy after four epochs, about 28 s on two
    # cores (benchmarks/mnist_time_to_accuracy.py).
    "mnist_fast": Recipe(
        name="mnist_fast", optimizer="adam", learning_rate=6e-3, schedule="one_cycle", epochs=5,
        batch_size=256, normalization="standardize",
    ),
    # MNIST to 99.5%: with lenet5 and MNIST_BEST_OPTIONS (three times as wide, dropout), small
    # rotations and shifts and label smoothing: 99.52% after ten epochs, about 93 s on two cores.
    "mnist_best": Recipe(
        name="mnist_best", optimizer="adam", learning_rate=6e-3, schedule="one_cycle", epochs=14,
        batch_size=128, label_smoothing=0.1, augment="rotate=8,translate=0.08",
        normalization="standardize",
    ),
    # Krizhevsky et al. 2012, section 5: SGD, momentum 0.9, weight decay 5e-4, batch 128,
    # lr 0.01 divided by 10 when the validation error stops improving, dropout 0.5.
    "alexnet": Recipe(
        name="alexnet", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
        schedule="plateau", factor=0.1, patience=5, epochs=90, batch_size=128, dropout=0.5,
        normalization="mean_image", augment="flip,crop=0.875",
    ),
    # He et al. 2016, section 3.4: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 256,
    # divided by 10 at 1/3 and 2/3 of the run (epochs 30 and 60 of 90).
    "resnet": Recipe(
        name="resnet", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
        schedule="step", factor=0.1, milestones=(1 / 3, 2 / 3), epochs=90, batch_size=256,
        normalization="channel_mean", augment="flip,crop=0.875",
    ),
    # Bello et al. 2021, Table 9 / appendix: cosine with warm-up, label smoothing 0.1, EMA of
    # weights 0.9999, weight decay 4e-5, RandAugment, dropout 0.25, stochastic depth.
    "resnet_rs": Recipe(
        name="resnet_rs", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=4e-5,
        schedule="cosine", warmup_epochs=5, epochs=350, batch_size=256, label_smoothing=0.1,
        ema=0.9999, augment="flip,randaugment", dropout=0.25, drop_path_rate=0.0,
        normalization="standardize",
    ),
}


# The LeNet-5 of the "mnist_fast" recipe: ReLU, max-pooling and BatchNorm; of "mnist_best":
# the same, three times as wide, with dropout before the classifier.
MNIST_FAST_OPTIONS = {"activation": "relu", "pool_kind": "max", "norm": "batch"}
MNIST_BEST_OPTIONS = {**MNIST_FAST_OPTIONS, "width_multiplier": 3, "dropout": 0.25}


def get_recipe(recipe="quick", **overrides):
    """Returns a named recipe (or a Recipe / dict) with fields overridden.

    Args:
        recipe: a name from RECIPES, a Recipe, or a dict of Recipe fields.
        **overrides: fields to change; None values are ignored.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(recipe, Recipe):
        base = recipe
    elif isinstance(recipe, dict):
        base = Recipe().replace(**recipe)
    elif recipe in RECIPES:
        base = RECIPES[recipe]
    else:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {sorted(RECIPES)} or pass a Recipe.")
    return base.replace(**overrides)
