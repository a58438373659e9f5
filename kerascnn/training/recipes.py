"""Training recipes as data: named, printable, overridable field by field."""

import collections.abc
import dataclasses
import json
import math
import numbers
import os

from kerascnn.errors import InputError
from kerascnn.layers.factories import check_choice
from kerascnn.losses import check_loss
from kerascnn.training.precision import PRECISIONS

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "inverse_time", "plateau", "cosine", "one_cycle", "triangle")
WEIGHT_DECAY_MODES = ("decoupled", "l2")
TTA_MODES = (None, "flip", "flip_shift")  # see kerascnn.evaluation.tta
# What `kerascnn recipes` prints and `--recipe` accepts, written from RECIPES
# (`write_catalog`) so that the command line answers without importing Keras;
# tests/training/test_recipes.py keeps it equal to RECIPES.
CATALOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes.json")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained, except the model and the data.

    Attributes:
        name: the recipe's name.
        optimizer: one of OPTIMIZERS ("sgd" uses `momentum` and `nesterov`).
        learning_rate: the base (peak) learning rate.
        momentum: SGD / RMSprop momentum.
        nesterov: Nesterov momentum for SGD.
        beta_1, beta_2: Adam's (and AdamW's) decay rates of the gradient's first and second
            moments.
        weight_decay: the weight decay coefficient, applied as `weight_decay_mode` says.
        weight_decay_mode: "decoupled": Keras' `weight_decay`, which subtracts
            `lr * weight_decay * w` from the weights after each update (Loshchilov & Hutter,
            2019); with momentum this is not an L2 penalty. "l2" (SGD only): the papers' L2
            penalty `weight_decay / 2 * ||w||^2` added to the loss, i.e. `weight_decay * w`
            added to each gradient before the momentum update (Caffe, AlexNet, ResNet).
        bias_lr_scale: (SGD only) factor on the loss gradient of the BatchNorm shifts (beta),
            before the L2 term and the momentum update: their learning rate times this, their
            weight decay unchanged (airbench: 64).
        schedule: one of SCHEDULES: "step" divides by `factor` at `milestones` (fractions of
            the run); "inverse_time" is lr / (1 + epoch); "plateau" divides by `factor` when
            the validation loss stalls for `patience` epochs; "cosine" decays to 0 after
            `warmup_epochs` of linear warm-up; "one_cycle" is Smith's one-cycle policy;
            "triangle" is airbench's: linear from `triangle[0]` × the peak to the peak at
            `triangle[1]` of the run, then linear to `triangle[2]` × the peak.
        factor, milestones, patience: parameters of the step and plateau schedules.
        triangle: (start, peak, end) of the triangle schedule: (0.2, 0.2, 0.0) in airbench's
            ablations, (0.2, 0.23, 0.07) in airbench94.
        warmup_epochs: linear warm-up for "cosine".
        epochs, batch_size: the paper's (or a sensible) default; train() may override.
        label_smoothing: smoothing of the one-hot targets (cross-entropy only).
        task: "classification" (integer labels, one output per class) or "regression"
            (float targets, a linear output per target; see kerascnn.losses).
        loss: one of `losses.LOSSES[task]`, or None for the task's default:
            "categorical_crossentropy" (a softmax output), "hinge" or "squared_hinge"
            (the multiclass SVM loss on a linear output of class scores); "mse" or "mae"
            for regression ("mse" by default).
        ema: momentum of the exponential moving average of weights (0 = off); capped during
            short runs so that its time constant is at most a tenth of the run.
        lookahead: (SGD only) steps between airbench94's weight averagings (5), 0 = off: every
            that many steps each weight moves to a slow average of itself, averaging more as
            the run ends (see `kerascnn.training.L2SGD`).
        gradient_clip: clip each gradient's norm to this value (None = off).
        early_stopping: patience in epochs on the validation loss (0 = off).
        augment: augmentation spec for the training split (see kerascnn.data.augmentation).
        normalization: input normalisation inside the model (see kerascnn.data.Preprocessing).
        dropout, drop_path_rate: model options applied when the model is built by name,
            where its builder has them.
        model_options: the builder options the recipe was made for (a dict, kept as sorted
            (name, value) pairs so that the recipe stays hashable), applied when the model is
            built by name; `train(model_options=...)` overrides them one by one. A builder
            without one of them is refused (see `kerascnn.training.network.model_options`).
        validation_split: fraction of the training split held out when the data has none;
            0 (or None) holds out nothing: checkpoints and schedules then watch the training loss.
        precision: one of PRECISIONS: "float32", "bfloat16" or "float16" (mixed: float32
            weights, loss and outputs), or "auto": bfloat16 on CPUs with bfloat16 units, float16
            on a GPU, float32 otherwise (see kerascnn.training.precision).
        tta: test-time augmentation of the test metrics `train` reports: None, "flip" (the
            mean prediction over each image and its left-right mirror) or "flip_shift" (also
            over the image shifted by a pixel; see kerascnn.evaluation.tta).
        jit_compile: XLA compilation: True, False or "auto" (Keras decides). Off by default:
            on a CPU it was 2 to 10 times slower here; Keras also switches it off when
            `train(deterministic=True)` enables op determinism.
    """

    name: str = "custom"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    weight_decay: float = 0.0
    weight_decay_mode: str = "decoupled"
    bias_lr_scale: float = 1.0
    schedule: str = "constant"
    factor: float = 0.1
    milestones: tuple = (1 / 3, 2 / 3)
    patience: int = 5
    triangle: tuple = (0.2, 0.2, 0.0)
    warmup_epochs: float = 0.0
    epochs: int = 10
    batch_size: int = 32
    label_smoothing: float = 0.0
    task: str = "classification"
    loss: str = None
    ema: float = 0.0
    lookahead: int = 0
    gradient_clip: float = None
    early_stopping: int = 0
    augment: object = None
    normalization: str = "standardize"
    dropout: float = None
    drop_path_rate: float = None
    model_options: tuple = ()
    validation_split: float = 0.1
    precision: str = "auto"
    tta: str = None
    jit_compile: object = False

    def __post_init__(self):
        object.__setattr__(self, "model_options", _option_pairs(self.model_options))
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        check_choice(self.weight_decay_mode, WEIGHT_DECAY_MODES, "weight_decay_mode")
        check_choice(self.precision, PRECISIONS, "precision")
        check_choice(self.tta, TTA_MODES, "tta")
        _number("learning_rate", self.learning_rate, low=0, low_open=True)
        _integer("epochs", self.epochs, low=1)
        _integer("batch_size", self.batch_size, low=1)
        _number("momentum", self.momentum, low=0, high=1, high_open=True)
        _number("beta_1", self.beta_1, low=0, high=1, high_open=True)
        _number("beta_2", self.beta_2, low=0, high=1, high_open=True)
        _number("weight_decay", self.weight_decay, low=0)
        _number("bias_lr_scale", self.bias_lr_scale, low=0, low_open=True)
        _number("factor", self.factor, low=0, high=1, low_open=True)
        _integer("patience", self.patience, low=0)
        _number("warmup_epochs", self.warmup_epochs, low=0)
        _number("label_smoothing", self.label_smoothing, low=0, high=1, high_open=True)
        check_loss(self.task, self.loss, self.label_smoothing)
        _number("ema", self.ema, low=0, high=1, high_open=True)
        _integer("lookahead", self.lookahead, low=0)
        _integer("early_stopping", self.early_stopping, low=0)
        for field in ("gradient_clip",):
            if getattr(self, field) is not None:
                _number(field, getattr(self, field), low=0, low_open=True)
        for field in ("dropout", "drop_path_rate"):
            if getattr(self, field) is not None:
                _number(field, getattr(self, field), low=0, high=1, high_open=True)
        if self.validation_split is not None:
            _number("validation_split", self.validation_split, low=0, high=1, high_open=True)
        milestones = self.milestones
        if not isinstance(milestones, (tuple, list)) or not milestones:
            raise InputError(f"recipe milestones must be fractions of the run in (0, 1); got "
                             f"{milestones!r}.")
        for milestone in milestones:
            _number("milestones", milestone, low=0, high=1, low_open=True, high_open=True)
        triangle = self.triangle
        if not (isinstance(triangle, (tuple, list)) and len(triangle) == 3):
            raise InputError(f"recipe triangle must be (start, peak, end), three fractions; got "
                             f"{triangle!r}.")
        _number("triangle start", triangle[0], low=0, high=1)
        _number("triangle peak", triangle[1], low=0, high=1, low_open=True, high_open=True)
        _number("triangle end", triangle[2], low=0, high=1)
        object.__setattr__(self, "triangle", tuple(float(t) for t in triangle))
        if self.lookahead and self.optimizer != "sgd":
            raise InputError(
                f"lookahead={self.lookahead!r} is implemented for SGD (kerascnn's L2SGD); got "
                f"optimizer={self.optimizer!r}. Use optimizer='sgd' or lookahead=0.")
        if self.weight_decay_mode == "l2" and self.optimizer != "sgd":
            raise InputError(
                f"weight_decay_mode='l2' is implemented for SGD; got optimizer="
                f"{self.optimizer!r}. Use weight_decay_mode='decoupled' (for adamw, its own).")
        if self.bias_lr_scale != 1 and self.optimizer != "sgd":
            raise InputError(
                f"bias_lr_scale={self.bias_lr_scale!r} scales gradients, which only SGD follows "
                f"(Adam's steps do not depend on the gradient's scale); got optimizer="
                f"{self.optimizer!r}. Use optimizer='sgd' or bias_lr_scale=1.")

    def replace(self, **overrides):
        """Returns a copy with some fields changed; unknown fields raise ValueError."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise InputError(f"Recipe has no field {', '.join(unknown)}; fields: {sorted(fields)}.")
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        """The recipe as a JSON-ready dict (`model_options` as a dict)."""
        return {**dataclasses.asdict(self), "model_options": dict(self.model_options)}


# Builder options that a recipe field already sets, or that describe the network's interface
# (the data decides them): never recipe model options.
_NOT_MODEL_OPTIONS = ("dropout", "drop_path_rate", "include_top", "weights", "input_tensor",
                      "input_shape", "classes", "classifier_activation", "name")


def _option_pairs(options):
    """A recipe's model options as sorted (name, value) pairs, lists made tuples (hashable)."""
    if isinstance(options, collections.abc.Mapping):
        items = list(options.items())
    else:
        try:
            items = [tuple(pair) for pair in options]
        except TypeError:
            items = None
        if items is None or any(len(pair) != 2 for pair in items):
            raise InputError(f"recipe model_options must be a dict of builder options, such as "
                             f"{{'norm': 'batch'}}; got {options!r}.")
    for name, _ in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"recipe model_options: {name!r} is not an option name.")
        if name in _NOT_MODEL_OPTIONS:
            hint = (f"use the recipe's own field {name}=" if name in ("dropout", "drop_path_rate")
                    else "the data and train() decide it")
            raise InputError(f"recipe model_options cannot set {name!r}: {hint}.")
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise InputError(f"recipe model_options name an option twice: {names}.")
    return tuple(sorted(((name, tuple(value) if isinstance(value, list) else value)
                         for name, value in items), key=lambda pair: pair[0]))


def _number(field, value, *, low=None, high=None, low_open=False, high_open=False):
    """Checks that a recipe field is a finite real number in its range."""
    inside = (isinstance(value, numbers.Real) and not isinstance(value, bool)
              and math.isfinite(value)
              and (low is None or (value > low if low_open else value >= low))
              and (high is None or (value < high if high_open else value <= high)))
    if not inside:
        bounds = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        allowed = f"a finite number in {bounds}" if high is not None else (
            f"a finite number {'>' if low_open else '>='} {low}")
        raise InputError(f"recipe {field} must be {allowed}; got {value!r}.")


def _integer(field, value, *, low):
    """Checks that a recipe field is an integer >= `low`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"recipe {field} must be an integer >= {low}; got {value!r}.")


# CIFAR-10 fast on two CPU cores (issue 23): airbench94 as its package trains it
# (airbench 0.1.8, lib_airbench94.py; 94.01% mean on an A100 after 9.9 epochs on the
# lossless release), in the terms of RECIPES' airbench94: its "lr 11.5 per 1024 examples" is
# 11.5 / 7.67 = 1.5 here; lookahead averaging every 5 steps; BatchNorm momentum 0.6; the
# triangle from 0.2 to the peak at 23% of the run, then to 0.07; alternating flips; 10
# epochs. Not here: its freezing of the whitening's bias after 3 epochs and its averaging
# of BatchNorm's statistics. Time to 90% against airbench94's recipe and against airbench's
# package on the same CPU and images: benchmarks/README.md.
_CIFAR_FAST = Recipe(
    name="cifar_fast", optimizer="sgd", learning_rate=1.5, momentum=0.85, nesterov=True,
    weight_decay=1.53e-3, weight_decay_mode="l2", bias_lr_scale=64.0, schedule="triangle",
    triangle=(0.2, 0.23, 0.07), lookahead=5, epochs=10, batch_size=1024,
    label_smoothing=0.2, augment="altflip,shift=2", normalization="standardize",
    validation_split=0.0, tta="flip_shift", model_options={"batch_norm_momentum": 0.6},
)


RECIPES = {
    # Small data on a laptop: Adam with a cosine decay converges in a few epochs.
    "quick": Recipe(
        name="quick", optimizer="adam", learning_rate=2e-3, schedule="cosine",
        warmup_epochs=0.5, epochs=15, batch_size=32,
    ),
    # MNIST to 99% in one epoch (issue 26), after tuomaso/train_mnist_fast: lenet5 as its
    # network (5×5 conv of 24 maps and 3×3 conv of 32, each max-pooled before the ReLU, dense
    # 256, no BatchNorm or dropout), standardised inputs, one epoch of one-cycle Adam with
    # beta_2 0.9 over every training image (no validation part). Learning rate, beta_1 and
    # batch size chosen by `kerascnn tune tuning/mnist_fast.toml` (5-fold CV on the training
    # split, one-epoch folds of 48,000 images): 98.83% +- 0.03 at batch 256, within the best
    # trial's spread (98.84% +- 0.08 at batch 128, twice the steps); batch 512 lost 0.4 points.
    # Test accuracy and time against Keras's "simple MNIST convnet":
    # `benchmarks/mnist_time_to_accuracy.py` (benchmarks/README.md).
    "mnist_fast": Recipe(
        name="mnist_fast", optimizer="adam", learning_rate=1.1e-2, beta_1=0.8, beta_2=0.9,
        schedule="one_cycle", epochs=1, batch_size=256, normalization="standardize",
        validation_split=0.0,
        model_options={"activation": "relu", "pool_kind": "max", "norm": "none",
                       "filters": (24, 32), "kernel_size": (5, 3), "hidden_units": (256,),
                       "first_padding": "valid"},
    ),
    # MNIST to 99.5%, for lenet5 with ReLU and max-pooling, three times as wide, without
    # BatchNorm, with dropout before the classifier; small rotations and shifts and label
    # smoothing; one-cycle Adam over twelve epochs. Chosen by `kerascnn tune
    # tuning/mnist_best.toml` (3-fold CV on the training split: 99.48% +- 0.02, the best of six
    # trials; with BatchNorm 99.47%, 1.5x slower). Test accuracy and time against Keras's example:
    # `benchmarks/mnist_time_to_accuracy.py` (benchmarks/README.md).
    "mnist_best": Recipe(
        name="mnist_best", optimizer="adam", learning_rate=2.8e-3, schedule="one_cycle", epochs=12,
        batch_size=128, label_smoothing=0.1, augment="rotate=8,translate=0.08",
        normalization="standardize", dropout=0.25,
        model_options={"activation": "relu", "pool_kind": "max", "norm": "none",
                       "width_multiplier": 3},
    ),
    # airbench (Jordan 2024, github.com/KellerJordan/cifar10-airbench) for its network
    # (`airbench94`), as its ablation without lookahead trains it (cifar10-zoo,
    # airbench_ablations/main3_scalebias.py: whitening, identity initialisation and 64x
    # BatchNorm-bias rate; 94.01% mean of 200 runs after 13.5 epochs with flip test-time
    # augmentation), in Keras' terms: its loss is summed over a batch of 1024, Keras'
    # averaged, so its "lr 10 per 1024 examples" with Nesterov momentum 0.85 (step scale
    # 1 + 1/(1 - 0.85)) is 10 / 7.67 = 1.3 here, and its weight decay 0.0153 per 1024
    # examples an L2 coefficient of 0.0153 / 7.67 / 1.3 = 1.53e-3 through the gradient; the
    # BatchNorm biases learn 64 times faster (the whitening's at the plain rate), their decay
    # unchanged; BatchNorm momentum 0.9; its triangle schedule; label smoothing 0.2; random
    # flips and whole-pixel shifts of up to 2 (reflected); 14 epochs; test-time flips and
    # one-pixel shifts (airbench94's "level 2"); the classifier drawn as PyTorch draws it;
    # bfloat16 where the CPU has it. Not here: airbench94's lookahead averaging (with
    # BatchNorm momentum 0.6) and alternating flips, which let it stop after 9.9 epochs.
    "airbench94": Recipe(
        name="airbench94", optimizer="sgd", learning_rate=1.3, momentum=0.85, nesterov=True,
        weight_decay=1.53e-3, weight_decay_mode="l2", bias_lr_scale=64.0, schedule="triangle",
        epochs=14, batch_size=1024, label_smoothing=0.2, augment="flip,shift=2",
        normalization="standardize", validation_split=0.0, tta="flip_shift",
        model_options={"batch_norm_momentum": 0.9},
    ),
    "cifar_fast": _CIFAR_FAST,
    # CIFAR-10's best in about an hour on two CPU cores (issue 23): cifar_fast's network and
    # settings for the 22 epochs an hour allows, with cutout (DeVries & Taylor 2017) of 8
    # pixels, chosen by tuning/cifar_best.toml among none, 8 and 12 on a held-out part of the
    # training split (airbench96 adds cutout to its longer runs). Its test accuracy and time:
    # benchmarks/README.md.
    "cifar_best": _CIFAR_FAST.replace(name="cifar_best", epochs=22,
                                     augment="altflip,shift=2,cutout=8"),
    # Krizhevsky et al. 2012, section 5: SGD, momentum 0.9, weight decay (L2) 5e-4, batch 128,
    # lr 0.01 divided by 10 when the validation error stops improving, dropout 0.5.
    "alexnet": Recipe(
        name="alexnet", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
        weight_decay_mode="l2",
        schedule="plateau", factor=0.1, patience=5, epochs=90, batch_size=128, dropout=0.5,
        normalization="mean_image", augment="flip,crop=0.875",
    ),
    # He et al. 2016, section 3.4: SGD 0.1, momentum 0.9, weight decay (L2) 1e-4, batch 256,
    # divided by 10 at 1/3 and 2/3 of the run (epochs 30 and 60 of 90).
    "resnet": Recipe(
        name="resnet", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
        weight_decay_mode="l2",
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
        raise InputError(f"Unknown recipe {recipe!r}; choose one of {sorted(RECIPES)} or pass a Recipe.")
    return base.replace(**overrides)


def catalog():
    """{name: the recipe's fields} for every named recipe, in RECIPES' order."""
    return {name: recipe.to_dict() for name, recipe in RECIPES.items()}


def write_catalog(path=CATALOG_PATH):
    """Writes `catalog()` as JSON to `path` (after changing a recipe: `python -c "from
    kerascnn.training import recipes; recipes.write_catalog()"`)."""
    lines = [f"  {json.dumps(name)}: {json.dumps(fields)}" for name, fields in catalog().items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
