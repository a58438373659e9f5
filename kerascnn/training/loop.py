"""`train`: a model and a data set in, a trained model, its history, metrics and run folder out."""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings

import keras
import tensorflow as tf

import kerascnn
from kerascnn.files import atomic_save_model, atomic_write_json, sha256_file
from kerascnn.models.registry import build_model, get_model_entry
from kerascnn.training import checkpoints, distribute, multi_worker, network, schedules
from kerascnn.training.recipes import get_recipe

LENGTH_FREE_SCHEDULES = ("constant", "plateau", "inverse_time")
AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's auxiliary classifiers (Szegedy et al., 2015, section 5)


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained keras.Model (preprocessing included).
        history: metric name -> one value per epoch (resumed epochs included).
        metrics: the test-split metrics (empty when the data has no test split).
        run_dir: the run folder, or None when `out` was None.
        recipe: the Recipe used.
        seconds: wall time spent in `fit` by this call.
    """

    model: keras.Model
    history: dict
    metrics: dict
    run_dir: str
    recipe: object
    seconds: float


def train(
    model,
    data,
    *,
    recipe="quick",
    epochs=None,
    batch_size=None,
    augment=None,
    out=None,
    seed=0,
    strategy=None,
    learning_rate=None,
    model_options=None,
    data_dir=None,
    resume=True,
    deterministic=True,
    verbose="auto",
    callbacks=None,
    optimizer=None,
    **recipe_overrides,
):
    """Trains a model on a data set with a recipe; resumes an interrupted run in `out`.

    Args:
        model: a registry name (e.g. "lenet5"), a keras.Model, or a path to a .keras file.
            A model without a kerascnn Preprocessing layer gets one (resizing, channels,
            normalisation with statistics of the training split only).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data` (one fold, say).
        recipe: a name from `kerascnn.training.RECIPES`, a Recipe or a dict of its fields.
        epochs, batch_size, augment, learning_rate, **recipe_overrides: recipe fields to
            override (augment="none" switches augmentation off).
        out: the run folder (model.keras, best.keras, metrics.json, history.csv, run.json,
            logs/ for TensorBoard, checkpoints/); None keeps nothing on disk.
        seed: seeds weights, shuffling, augmentation and the validation split.
        strategy: None, "mirrored", "multi_worker" or a tf.distribute.Strategy (see
            get_strategy). Under "multi_worker" every worker runs `train` with the same
            arguments; only the chief writes `out`, and resuming needs `out` on a file
            system every worker sees.
        model_options: builder options when `model` is a name (norm, width_multiplier, ...).
        data_dir: where offline copies of named data sets lie (else $KERASCNN_DATA_DIR).
        resume: continue the run saved in `out` when its configuration matches.
        deterministic: TensorFlow op determinism: the same seed gives the same weights on CPU.
        verbose: Keras' progress display ("auto", 0, 1 or 2).
        callbacks: extra Keras callbacks, run after kerascnn's own (checkpoints, TensorBoard,
            schedules).
        optimizer: None (the recipe's), or a callable `(recipe, learning_rate, steps_per_epoch)
            -> Optimizer`
            given the recipe and its learning-rate schedule (fine-tuning scales rates per group).

    Returns:
        A TrainResult.

    Raises:
        ValueError: an unknown model, recipe field or data source; a run folder holding a
            different run.
    """
    if augment in ("none", False):
        augment, recipe_overrides["augment"] = None, None
    recipe = get_recipe(recipe, epochs=epochs, batch_size=batch_size, augment=augment,
                        learning_rate=learning_rate, **recipe_overrides)
    name = _check_model(model)
    strategy = distribute.get_strategy(strategy)
    data = _load_data(data, data_dir, recipe, seed)
    options = network.model_options(name, recipe, model_options) if name else {}
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    mixed = recipe.mixed_precision and bool(tf.config.list_physical_devices("GPU"))
    if recipe.mixed_precision and not mixed:
        warnings.warn("mixed_precision needs a GPU; training in float32.", stacklevel=2)

    run_dir = os.path.abspath(out) if out else tempfile.mkdtemp(prefix="kerascnn-")
    # Every worker saves (saving reads variables the workers reduce together); the others
    # write to a folder of their own, which goes at the end.
    chief = multi_worker.is_chief(strategy)
    write_dir = run_dir if chief else tempfile.mkdtemp(prefix="kerascnn-worker-")
    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    fingerprint = _fingerprint(model, options, data, recipe, seed)
    state = checkpoints.read_state(checkpoint_dir) if resume else None
    if state and state["fingerprint"]["digest"] != fingerprint["digest"]:
        raise ValueError(
            f"{run_dir} holds another run ({state['fingerprint']['summary']}); use another `out` "
            "folder, or resume=False (--fresh) to start this one over."
        )
    if not resume and chief and os.path.isdir(checkpoint_dir):
        shutil.rmtree(checkpoint_dir)

    train_ds = data.pipeline("train", recipe.batch_size, augment=recipe.augment, seed=seed)
    val_ds = data.pipeline("validation", recipe.batch_size) if data.size("validation") else None
    steps = int(train_ds.cardinality())
    with strategy.scope():
        if state:
            net = keras.models.load_model(os.path.join(checkpoint_dir, state["model"]))
        else:
            net = _network(model, name, options, data, recipe, mixed)
            _compile(net, recipe, steps, optimizer)
    outputs = len(net.outputs)
    if outputs > 1:
        train_ds, val_ds = (_repeat_targets(d, outputs) for d in (train_ds, val_ds))

    initial_epoch = state["epoch"] if state else 0
    run_callbacks = _run_callbacks(recipe, write_dir, fingerprint, state, bool(out),
                                   "val_loss" if val_ds is not None else "loss")
    run_callbacks += list(callbacks or [])
    start = time.perf_counter()
    if initial_epoch < recipe.epochs and multi_worker.is_multi_worker(strategy):
        multi_worker.fit(net, train_ds, val_ds, epochs=recipe.epochs, initial_epoch=initial_epoch,
                         callbacks=run_callbacks, verbose=verbose)
    elif initial_epoch < recipe.epochs:
        net.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs,
                initial_epoch=initial_epoch, callbacks=run_callbacks, verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - start
    history = run_callbacks[0].history

    metrics = {}
    if out:
        atomic_save_model(net, os.path.join(write_dir, "model.keras"))
    if data.size("test"):
        metrics = _test_metrics(net, data, history, write_dir if out else None)
    if out:
        atomic_write_json(os.path.join(write_dir, "run.json"), {
            "kerascnn": kerascnn.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "model": fingerprint["model"],
            "model_options": options,
            "data": fingerprint["data"],
            "network_input_shape": list(_backbone(net).inputs[0].shape[1:]),
            "recipe": recipe.to_dict(),
            "seed": seed,
            "epochs_completed": len(next(iter(history.values()), [])),
            "train_seconds_this_call": round(seconds, 2),
            "test_accuracy": metrics.get("accuracy"),
        })
    if not out:
        shutil.rmtree(run_dir, ignore_errors=True)
    if write_dir != run_dir:
        shutil.rmtree(write_dir, ignore_errors=True)
    return TrainResult(net, history, metrics, run_dir if out else None, recipe, seconds)


def _run_callbacks(recipe, write_dir, fingerprint, state, tensorboard, monitor):
    """kerascnn's own callbacks: the checkpoint first (its history is the run's), then
    TensorBoard, the plateau schedule and early stopping as the recipe asks."""
    callbacks = [checkpoints.RunCheckpoint(
        os.path.join(write_dir, "checkpoints"), write_dir, fingerprint,
        history=state["history"] if state else None, best=state["best"] if state else None,
        monitor=monitor,
    )]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(write_dir, "logs"), write_graph=False))
    if recipe.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor, factor=recipe.factor, patience=recipe.patience, verbose=1))
    if recipe.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor, patience=recipe.early_stopping, restore_best_weights=True))
    return callbacks


def _check_model(model):
    """Returns the registry name, or None for a keras.Model / .keras path."""
    if isinstance(model, keras.Model):
        return None
    if isinstance(model, (str, os.PathLike)) and str(model).endswith(".keras"):
        if not os.path.isfile(model):
            raise ValueError(f"model file {model!r} does not exist.")
        return None
    if isinstance(model, str):
        get_model_entry(model)
        return model
    raise ValueError(f"model must be a registry name, a keras.Model or a .keras path; got {model!r}.")


def _load_data(data, data_dir, recipe, seed):
    from kerascnn.data import Data, load

    if isinstance(data, Data):
        return data
    return load(data, data_dir=data_dir, validation_split=recipe.validation_split, seed=seed)


def _fingerprint(model, options, data, recipe, seed):
    """What must match for a run folder to be resumed."""
    described = {
        "model": _describe_model(model),
        "options": options,
        "data": {"name": data.name, "sha256": data.sha256, "num_classes": data.num_classes,
                 "input_shape": list(data.input_shape), "train_examples": data.size("train")},
        # A longer run may resume a shorter one unless the schedule depends on the length.
        "recipe": {k: v for k, v in recipe.to_dict().items()
                   if k != "epochs" or recipe.schedule not in LENGTH_FREE_SCHEDULES},
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
    return {**described, "digest": digest,
            "summary": f"{described['model']} on {data.name}, recipe {recipe.name}, seed {seed}"}


def _describe_model(model):
    """A registry name as is; a keras.Model by name and size; a .keras file by path and hash."""
    if isinstance(model, keras.Model):
        return f"{model.name} ({model.count_params()} parameters)"
    if str(model).endswith(".keras"):
        return f"{os.path.abspath(model)} (sha256 {sha256_file(model)[:16]})"
    return model


def _network(model, name, options, data, recipe, mixed):
    policy = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        if name:
            shape = network.network_input_shape(name, data.input_shape, options)
            backbone = build_model(name, input_shape=shape, num_classes=data.num_classes, **options)
        else:
            backbone = model if isinstance(model, keras.Model) else keras.models.load_model(model)
            if network.has_preprocessing(backbone):
                return backbone
        return network.wrap(backbone, data, recipe.normalization, mixed)
    finally:
        keras.config.set_dtype_policy(policy)


def build_optimizer(recipe, learning_rate, steps_per_epoch):
    """The recipe's Keras optimizer with `learning_rate` (a float or a schedule)."""
    ema = recipe.ema
    if ema:  # keep the average's time constant under a tenth of the run
        ema = min(ema, 1 - 10 / max(20, steps_per_epoch * recipe.epochs))
    common = dict(learning_rate=learning_rate, weight_decay=recipe.weight_decay or None,
                  clipnorm=recipe.gradient_clip, use_ema=bool(ema), ema_momentum=ema or 0.99)
    return {
        "sgd": lambda: keras.optimizers.SGD(momentum=recipe.momentum, nesterov=recipe.nesterov, **common),
        "adam": lambda: keras.optimizers.Adam(**common),
        "adamw": lambda: keras.optimizers.AdamW(**{**common, "weight_decay": recipe.weight_decay}),
        "rmsprop": lambda: keras.optimizers.RMSprop(momentum=recipe.momentum, **common),
    }[recipe.optimizer]()


def _compile(net, recipe, steps_per_epoch, make_optimizer=None):
    lr = schedules.learning_rate(recipe, steps_per_epoch, recipe.epochs)
    optimizer = (make_optimizer(recipe, lr, steps_per_epoch) if make_optimizer
                 else build_optimizer(recipe, lr, steps_per_epoch))
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    n = len(net.outputs)
    net.compile(
        optimizer=optimizer,
        loss=[loss] * n if n > 1 else loss,
        loss_weights=[1.0] + [AUX_LOSS_WEIGHT] * (n - 1) if n > 1 else None,
        metrics=[["accuracy"]] + [[] for _ in range(n - 1)] if n > 1 else ["accuracy"],
        jit_compile=recipe.jit_compile,
    )


def _repeat_targets(dataset, outputs):
    if dataset is None:
        return None
    return dataset.map(lambda x, y: (x, (y,) * outputs))


def _backbone(net):
    nested = [layer for layer in net.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else net


def _test_metrics(net, data, history, out):
    """Test metrics of the main output, with the full evaluation report when `out` is set."""
    from kerascnn.evaluation import evaluate

    single = net if len(net.outputs) == 1 else keras.Model(net.inputs, net.outputs[0])
    report = evaluate(single, data, history=history, out=out)
    return report.metrics
