"""`train`: a model and a data set in, a trained model, its history, metrics and run folder out."""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.data.errors import reading_files
from kerascnn.data.pipeline import steps_per_epoch
from kerascnn.data.preprocessing import split_network
from kerascnn.errors import InputError
from kerascnn.evaluation import evaluate
from kerascnn import losses
from kerascnn.files import sha256_file
from kerascnn.models.googlenet import LOSS_WEIGHTS as GOOGLENET_LOSS_WEIGHTS
from kerascnn.models.inception_v3 import LOSS_WEIGHTS as INCEPTION_V3_LOSS_WEIGHTS
from kerascnn.models.registry import build_model, get_model_entry
from kerascnn.run_folder import TENSORBOARD_FILES, RunFolder, RunFolderError
from kerascnn.training import (
    checkpoints,
    distribute,
    multi_worker,
    network,
    precision,
    schedules,
)
from kerascnn.training.recipes import get_recipe

LENGTH_FREE_SCHEDULES = ("constant", "plateau", "inverse_time")
# The loss weight of an auxiliary output, by its layer name: GoogLeNet's 0.3 (Szegedy et al.,
# 2015, section 5), Inception-v3's 0.4 (TF-slim); AUX_LOSS_WEIGHT for any other extra output.
AUX_LOSS_WEIGHTS = {**GOOGLENET_LOSS_WEIGHTS, **INCEPTION_V3_LOSS_WEIGHTS}
AUX_LOSS_WEIGHT = 0.3
PROBABILITY_TOLERANCE = 1e-3  # rows of a softmax output sum to 1 within this


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained keras.Model (preprocessing included), computing in float32
            whatever the precision it was trained in.
        history: metric name -> one value per epoch (resumed epochs included).
        metrics: the test-split metrics (empty when the data has no test split).
        run_dir: the run folder, or None when `out` was None.
        recipe: the Recipe used.
        seconds: wall time spent in `fit` by this call.
        timings: seconds of each step of this call: "load" (the data), "build" (the
            network, its checks and compiling), "pipeline" (the tf.data pipelines and the
            callbacks), "first_step" (tracing the training step and running it once), "fit"
            (all of `fit`, the first step included), "save" (model.keras and run.json) and
            "evaluate" (the test metrics and report); run.json keeps them.
    """

    model: keras.Model
    history: dict
    metrics: dict
    run_dir: str
    recipe: object
    seconds: float
    timings: dict = None


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
    kind=None,
    stream="auto",
    cache=None,
    resume=True,
    deterministic=True,
    verbose="auto",
    callbacks=None,
    optimizer=None,
    **recipe_overrides,
):
    """Trains a model on a data set with a recipe; resumes an interrupted run in `out`.

    Args:
        model: a registry name (e.g. "lenet5"), a keras.Model (ending in a softmax for
            cross-entropy, in a linear layer for the hinge losses and regression), or a path
            to a .keras file. A model without a kerascnn Preprocessing layer gets one
            (resizing, channels, normalisation with statistics of the training split only).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data` (one fold, say).
        recipe: a name from `kerascnn.training.RECIPES`, a Recipe or a dict of its fields.
            Its `task` ("classification", or "regression" on float targets) and `loss`
            ("categorical_crossentropy", "hinge", "squared_hinge"; "mse", "mae") are fields
            too: `train(model, data, task="regression")`, `train(..., loss="hinge")`.
        epochs, batch_size, augment, learning_rate, **recipe_overrides: recipe fields to
            override (augment="none" switches augmentation off). `precision` ("auto",
            "float32", "bfloat16", "float16") sets the layers' compute type while training;
            run.json records the one chosen and why, a resumed run keeps it, and the model
            returned and saved computes in float32.
        out: the run folder (model.keras, best.keras, metrics.json, history.csv, run.json,
            logs/ for TensorBoard, checkpoints/), kept as a `kerascnn.run_folder.RunFolder`
            of kind "train": locked while training, listing every file it writes, refused
            when it holds files kerascnn did not write. None keeps nothing on disk: the result is
            only the returned TrainResult (no checkpoint, no report, no resume).
        seed: seeds weights, shuffling, augmentation and the validation split. Each epoch's
            shuffle and augmentation depend only on (seed, epoch), and the checkpoints keep
            the optimizer and dropout states, so on a CPU a run killed and resumed ends with
            the weights of an uninterrupted one (in one process; a multi-worker run resumes
            after its last epoch without that promise).
        strategy: None, "mirrored", "multi_worker" or a tf.distribute.Strategy (see
            get_strategy). Under "multi_worker" every worker runs `train` with the same
            arguments; only the chief writes `out`, and resuming needs `out` on a file
            system every worker sees.
        model_options: builder options when `model` is a name (norm, width_multiplier, ...),
            over the recipe's own `model_options`; checked against the builder first.
        data_dir: where offline copies of named data sets lie (else $KERASCNN_DATA_DIR).
        kind: how `load` reads arrays ("image", "signal", "volume"; default: from their
            shape); recorded so that `evaluate(run_dir)` reads them the same way.
        stream, cache: whether `load` streams an image folder (or a TFDS set, TFRecord
            shards) from its files instead of reading it into memory ("auto": when it would
            not fit), and a folder for its decoded images; recorded like `kind`.
        resume: continue the run saved in `out` when its configuration matches. False
            deletes the run's own files (only those) and starts over.
        deterministic: TensorFlow op determinism: the same seed gives the same weights on CPU.
            True calls `tf.config.experimental.enable_op_determinism()`, which is
            process-wide and stays on after `train` returns (TensorFlow has no public call
            to switch it off): later TensorFlow work in the process runs deterministic
            kernels, some slower, and ops without one raise. Pass False to leave it alone.
        verbose: Keras' progress display ("auto", 0, 1 or 2); 0 also silences the notes on
            resuming.
        callbacks: extra Keras callbacks, run after kerascnn's own (checkpoints, TensorBoard,
            schedules).
        optimizer: None (the recipe's, see `build_optimizer`), a name overriding the
            recipe's ("sgd", "adam", "adamw", "rmsprop"), or a callable
            `(recipe, learning_rate, steps_per_epoch) -> Optimizer` given the recipe and its
            learning-rate schedule (fine-tuning scales rates per group).

    Returns:
        A TrainResult.

    Raises:
        ValueError: an unknown model, recipe field or data source; a model whose outputs
            do not fit the loss (probabilities for cross-entropy, scores for hinge, one
            value per target for regression); labels that do not fit the task.
        RunFolderError: (a ValueError) a run folder in use by another process, holding
            files kerascnn did not write, holding a different run, or naming paths outside
            itself.
        TrainingDivergedError: (a ValueError) the loss became NaN or infinite; the run
            folder keeps its last finite epoch.
    """
    if augment in ("none", False):
        augment, no_augment = None, True
    else:
        no_augment = False
    if isinstance(optimizer, str):  # a recipe's optimizer by name
        recipe_overrides["optimizer"], optimizer = optimizer, None
    elif optimizer is not None and not callable(optimizer):
        raise InputError(
            "optimizer must be None, a name (sgd, adam, adamw, rmsprop) or a callable "
            f"(recipe, learning_rate, steps_per_epoch) -> Optimizer; got {optimizer!r}.")
    recipe = get_recipe(recipe, epochs=epochs, batch_size=batch_size, augment=augment,
                        learning_rate=learning_rate, **recipe_overrides)
    if no_augment:
        recipe = recipe.replace(augment=None)
    name = _check_model(model)
    options = network.model_options(name, recipe, model_options) if name else {}
    run_precision = precision.choose_precision(recipe.precision)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got seed={seed!r}.")
    seed = int(seed)
    strategy = distribute.get_strategy(strategy)
    chief = multi_worker.is_chief(strategy)
    # Every worker saves (saving reads variables the workers reduce together); the others
    # write to a folder of their own, which goes at the end.
    scratch = None if out and chief else tempfile.mkdtemp(prefix="kerascnn-")
    folder = RunFolder(out if out and chief else scratch, "train")
    # The other workers read the chief's state to resume with it, and write nothing there.
    shared = RunFolder(out, "train", exclusive=False) if out and not chief else None
    try:
        with folder as run, shared or contextlib.nullcontext() as state_run:
            return _train(run, state_run or run, model, name, data, recipe, seed=seed,
                          strategy=strategy, out=out, options=options,
                          data_dir=data_dir, load_options={"kind": kind, "stream": stream,
                                                           "cache": cache},
                          run_precision=run_precision,
                          resume=resume, deterministic=deterministic, verbose=verbose,
                          callbacks=callbacks, optimizer=optimizer)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _train(run, state_run, model, name, data, recipe, *, seed, strategy, out, options,
           data_dir, load_options, run_precision, resume, deterministic, verbose, callbacks,
           optimizer):
    """`train` inside its (entered) run folder `run`; `state_run` holds the state to resume
    (`run` itself, except on the workers of a multi-worker run that are not the chief)."""
    clock = _Clock()
    data, source = _load_data(data, data_dir, load_options, recipe, seed)
    clock.mark("load")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    say = print if verbose != 0 else (lambda *args, **kwargs: None)

    state = _read_state(state_run, resume and out is not None)
    run_precision = _resumed_precision(run_precision, recipe, state)
    # A new run's precision depends on its network: its fingerprint follows the build.
    fingerprint = _fingerprint(model, options, data, recipe, seed, run_precision) if state else None
    if state and state["fingerprint"]["digest"] != fingerprint["digest"]:
        raise RunFolderError(
            f"{run.path} holds another run ({state['fingerprint']['summary']}; it differs in "
            f"{fingerprint_differences(state['fingerprint'], fingerprint)}); use another `out` "
            "folder, or resume=False (--fresh) to start this one over.")
    if not resume:
        run.clear()

    steps = steps_per_epoch(data.size("train"), recipe.batch_size)
    initial_epoch = state["epoch"] if state else 0
    finished = bool(state) and initial_epoch >= recipe.epochs
    with strategy.scope():
        if finished and run.owns("model.keras") and os.path.isfile(run.path_of("model.keras")):
            net = keras.models.load_model(run.path_of("model.keras"))
        elif state:
            net = checkpoints.load_checkpoint(checkpoints.state_model_path(state_run, state),
                                              run_precision.policy)
            checkpoints.restore_seed_states(net, state.get("seed_states"))
            if finished and checkpoints.ema_optimizer(net.optimizer):
                net.optimizer.finalize_variable_values(net.trainable_weights)
        else:
            net, run_precision = _network(model, name, options, data, recipe, run_precision)
            fingerprint = _fingerprint(model, options, data, recipe, seed, run_precision)
            _check_outputs(net, data, recipe)
            _compile(net, recipe, steps, optimizer)
    say(f"precision: {run_precision.name} ({run_precision.reason})")
    clock.mark("build")
    if finished:
        say(f"{run.path} holds this run, finished after {initial_epoch} epochs: nothing to "
            "train; its model is evaluated again.")
    elif state:
        say(f"resuming the run in {run.path} after epoch {initial_epoch} of {recipe.epochs}.")
    if state and out and run is state_run:
        # The state is the one source of the history: a kill between writing it and
        # history.csv must not leave the CSV an epoch short.
        run.write_text("history.csv", checkpoints.history_csv(state["history"]))

    multi = multi_worker.is_multi_worker(strategy)
    # Under multi_worker each worker reads only its share of every global batch, one epoch's
    # dataset per epoch.
    worker = multi_worker.worker_input_context(strategy) if multi else None
    if multi:
        train_ds = data.pipeline("train", recipe.batch_size, augment=recipe.augment, seed=seed,
                                 input_context=worker)
    else:
        train_ds = data.pipeline("train", recipe.batch_size, augment=recipe.augment, seed=seed,
                                 epochs=recipe.epochs,
                                 initial_epoch=min(initial_epoch, recipe.epochs))
    val_ds = (data.pipeline("validation", recipe.batch_size, input_context=worker)
              if data.size("validation") else None)
    outputs = len(net.outputs)
    if outputs > 1:
        train_ds, val_ds = (_repeat_targets(d, outputs) for d in (train_ds, val_ds))

    diverged = checkpoints.StopOnNonFiniteLoss()
    ema = checkpoints.SwapEMAWeights() if checkpoints.ema_optimizer(net.optimizer) else None
    checkpoint = checkpoints.RunCheckpoint(
        run, fingerprint, history=state["history"] if state else None,
        best=state["best"] if state else None,
        best_epoch=state.get("best_epoch") if state else None,
        monitor="val_loss" if val_ds is not None else "loss", ema=ema,
        train_seconds=state.get("train_seconds", 0.0) if state else 0.0, persist=bool(out))
    recipe_callbacks = _recipe_callbacks(recipe, run, bool(out), checkpoint.monitor)
    checkpoint.stateful = [c for c in recipe_callbacks
                           if isinstance(c, (keras.callbacks.ReduceLROnPlateau,
                                             keras.callbacks.EarlyStopping))]
    if state and checkpoint.stateful:
        best = run.path_of("best.keras") if run.owns("best.keras") else None
        recipe_callbacks.append(checkpoints.RestoreCallbackStates(
            checkpoint.stateful, state.get("callback_states"),
            best if best and os.path.isfile(best) else None))
    first_step = checkpoints.FirstStepTimer()
    run_callbacks = [first_step, diverged, *([ema] if ema else []), checkpoint, *recipe_callbacks,
                     *list(callbacks or []), *([checkpoints.FinalizeEMA(ema)] if ema else [])]
    seconds = 0.0
    clock.mark("pipeline")
    if not finished:
        start = time.perf_counter()
        with reading_files():  # a streamed file deleted or changed since loading: one line
            if multi:
                multi_worker.fit(net, train_ds, val_ds, epochs=recipe.epochs,
                                 initial_epoch=initial_epoch, callbacks=run_callbacks,
                                 verbose=verbose, input_context=worker)
            else:
                net.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs,
                        initial_epoch=initial_epoch, steps_per_epoch=steps,
                        callbacks=run_callbacks, verbose=verbose, shuffle=False)
        seconds = time.perf_counter() - start
    clock.mark("fit")
    if first_step.seconds is not None:
        clock.timings["first_step"] = round(first_step.seconds - start, 3)
    history = checkpoint.history
    if diverged.diverged is not None or not checkpoints.finite_weights(net):
        raise checkpoints.TrainingDivergedError(
            _divergence_message(diverged.diverged, checkpoint, recipe, run.path if out else None))

    # Keras loads a model saved under a mixed policy computing in it (bfloat16 is emulated,
    # slowly, on CPUs without bfloat16 units): model.keras and the result are float32 copies.
    net = precision.with_policy(net, "float32")
    metrics = {}
    if out:
        run.save_model(net, "model.keras")
    clock.mark("save")
    if data.size("test"):
        metrics = _test_metrics(net, data, history, run if out else None)
    clock.mark("evaluate")
    if out:
        previous = run.read_json("run.json") if finished else {}
        run.write_json("run.json", {
            "kerascnn": kerascnn.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "model": fingerprint["model"],
            "model_options": options,
            "data": {**fingerprint["data"], "source": source, "splits": data.split_digests()},
            "network_input_shape": list(split_network(net)[1].inputs[0].shape[1:]),
            "recipe": recipe.to_dict(),
            "precision": run_precision.to_dict(),
            "seed": seed,
            "epochs_completed": len(next(iter(history.values()), [])),
            "train_seconds": round(checkpoint.train_seconds, 2),
            "train_seconds_this_call": (previous.get("train_seconds_this_call")
                                        if finished else round(seconds, 2)),
            "task": recipe.task,
            "loss": losses.loss_name(recipe.task, recipe.loss),
            "test_accuracy": metrics.get("accuracy"),
            **{f"test_{key}": metrics[key] for key in ("mae", "rmse", "r2") if key in metrics},
            "timings": clock.timings,
        })
    clock.mark("save")
    return TrainResult(net, history, metrics, run.path if out else None, recipe, seconds,
                       clock.timings)


class _Clock:
    """Seconds of each named step of a call, from one mark to the next (a step marked twice
    adds up)."""

    def __init__(self):
        self.timings = {}
        self._last = time.perf_counter()

    def mark(self, step):
        now = time.perf_counter()
        self.timings[step] = round(self.timings.get(step, 0.0) + now - self._last, 3)
        self._last = now


def _read_state(run, resume):
    """The run state saved in `run` (None when there is none or resume is off)."""
    if not resume:
        return None
    return checkpoints.read_state(run.path_of(checkpoints.CHECKPOINTS))


def _divergence_message(where, checkpoint, recipe, out):
    epoch, batch, loss = where if where else (len(next(iter(checkpoint.history.values()), [])),
                                              None, float("nan"))
    at = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
    kept = len(next(iter(checkpoint.history.values()), []))
    if out:
        folder = (f" {out} keeps the {kept} finite epoch(s) (best.keras from epoch "
                  f"{checkpoint.best_epoch}); model.keras was not written."
                  if kept else f" {out} holds no finite epoch; model.keras was not written.")
    else:
        folder = ""
    return (f"training diverged in {at}: the loss became {loss}. Likely causes: a learning "
            f"rate too high ({recipe.learning_rate}: try 10 times lower), or inputs or an "
            f"augmentation giving NaN or infinite values.{folder} Rerun with a lower "
            "--learning-rate and --fresh (resume=False).")


def _check_outputs(net, data, recipe):
    """Refuses, before training, a model whose outputs do not fit the task and loss: class
    probabilities for cross-entropy, raw class scores for the hinge losses, one value per
    target for regression."""
    x, _ = next(iter(data.pipeline("train", 8, shuffle=False)))
    outputs = net(x, training=False)
    softmax = losses.output_activation(recipe.task, recipe.loss) == "softmax"
    loss = losses.loss_name(recipe.task, recipe.loss)
    for output in keras.tree.flatten(outputs):
        values = keras.ops.convert_to_numpy(output).astype(np.float64)
        width = values.shape[-1]
        if width != data.num_outputs:
            what = (f"{data.num_outputs} regression target(s); end it in Dense("
                    f"{data.num_outputs}) with no activation" if recipe.task == "regression"
                    else f"{data.num_classes} classes; end it in Dense({data.num_classes}, "
                    f"activation={'softmax' if softmax else None!r})")
            raise InputError(
                f"the model gives {width} outputs per example but {data.name} has {what}.")
        if recipe.task == "regression":
            continue
        low, high = np.nanmin(values), np.nanmax(values)
        sums = values.sum(axis=-1)
        probabilities = (low >= -PROBABILITY_TOLERANCE and high <= 1 + PROBABILITY_TOLERANCE
                         and np.all(np.abs(sums - 1) <= PROBABILITY_TOLERANCE * width))
        if softmax and not probabilities:
            raise InputError(
                f"the model's outputs are not class probabilities (values from {low:.3g} to "
                f"{high:.3g}, rows summing to {sums.min():.3g}..{sums.max():.3g}): it ends in "
                "logits. kerascnn trains with cross-entropy on probabilities: end the model in "
                "activation='softmax' (or add keras.layers.Softmax()), or train with "
                "loss='hinge' on raw scores.")
        if not softmax and probabilities:
            raise InputError(
                f"loss={loss!r} is the multiclass SVM loss on raw class scores, but the model "
                "ends in a softmax (its rows sum to 1, so no margin of 1 can be met): end it "
                "in a linear layer (classifier_activation=None).")


def _recipe_callbacks(recipe, run, tensorboard, monitor):
    """TensorBoard, the plateau schedule and early stopping, as the recipe asks."""
    callbacks = []
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(
            run.claim("logs", delegate=TENSORBOARD_FILES), write_graph=False))
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
            raise InputError(f"model file {model!r} does not exist.")
        return None
    if isinstance(model, str):
        get_model_entry(model)
        return model
    raise InputError(f"model must be a registry name, a keras.Model or a .keras path; got {model!r}.")


def _load_data(data, data_dir, load_options, recipe, seed):
    """(Data, the record of its source for run.json: what `evaluate(run_dir)` reloads).

    `load_options`: `load`'s kind, stream and cache, as `train` got them.
    """
    from kerascnn.data import Data, load

    given = {key: value for key, value in load_options.items()
             if value is not None and not (key == "stream" and value == "auto")}
    if isinstance(data, Data) and given:
        listed = ", ".join(f"{key}={value!r}" for key, value in given.items())
        verb = "tells" if len(given) == 1 else "tell"
        raise InputError(f"{listed} {verb} how to read a data source, but `data` is a Data "
                         "already read; pass them to kerascnn.data.load instead.")
    if isinstance(data, Data):
        data.check_task(recipe.task)
        # Loaded by the caller: its arguments are unknown, its name and split seed are not.
        return data, {"source": data.name, "loaded_by": "caller", "seed": data.seed,
                      "kind": data.kind, "task": data.task}
    test_split = 0.2  # load()'s default
    validation_split = recipe.validation_split or None
    loaded = load(data, data_dir=data_dir, validation_split=validation_split,
                  test_split=test_split, seed=seed, task=recipe.task, **load_options)
    named = isinstance(data, (str, os.PathLike))
    source = os.fspath(data) if named else None
    if named and os.path.exists(source):
        source = os.path.abspath(source)
    return loaded, {"source": source, "loaded_by": "train" if named else "arrays",
                    "data_dir": os.path.abspath(data_dir) if data_dir else None,
                    "validation_split": validation_split, "test_split": test_split,
                    "seed": seed, "kind": loaded.kind, "task": recipe.task,
                    "stream": load_options["stream"],
                    "cache": os.path.abspath(load_options["cache"]) if load_options["cache"]
                    else None}


def _fingerprint(model, options, data, recipe, seed, run_precision):
    """What must match for a run folder to be resumed."""
    described = {
        "model": _describe_model(model),
        "options": options,
        "data": {"name": data.name, "sha256": data.sha256, "num_classes": data.num_classes,
                 "input_shape": list(data.input_shape), "train_examples": data.size("train")},
        # A longer run may resume a shorter one unless the schedule depends on the length.
        "recipe": {k: v for k, v in recipe.to_dict().items()
                   if k != "epochs" or recipe.schedule not in LENGTH_FREE_SCHEDULES},
        "precision": run_precision.name,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
    return {**described, "digest": digest,
            "summary": f"{described['model']} on {data.name}, recipe {recipe.name}, seed {seed}"}


def fingerprint_differences(saved, new, limit=4):
    """What differs between two fingerprints, as "recipe.learning_rate 0.01 -> 0.1, ..."."""
    def leaves(value, prefix=""):
        if isinstance(value, dict):
            return {k: v for key, item in value.items()
                    for k, v in leaves(item, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): value}

    old_leaves, new_leaves = (leaves(json.loads(json.dumps(f, default=str))) for f in (saved, new))
    changed = [f"{key} {old_leaves.get(key, '(unset)')} -> {new_leaves.get(key, '(unset)')}"
               for key in sorted(set(old_leaves) | set(new_leaves))
               if key not in ("digest", "summary") and old_leaves.get(key) != new_leaves.get(key)]
    if not changed:  # same settings, another digest: a fingerprint of an older kerascnn
        return "how kerascnn describes it (an older version wrote it)"
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(changed[:limit]) + more


def _resumed_precision(chosen, recipe, state):
    """The precision of a resumed run: under "auto", the one it started with."""
    started = state["fingerprint"].get("precision") if state else None
    if recipe.precision != "auto" or started in (None, chosen.name):
        return chosen
    return precision.Precision(started, precision.POLICIES[started],
                               f"the run being resumed started in {started}")


def _describe_model(model):
    """A registry name as is; a keras.Model by name and size; a .keras file by path and hash."""
    if isinstance(model, keras.Model):
        return f"{model.name} ({model.count_params()} parameters)"
    if str(model).endswith(".keras"):
        return f"{os.path.abspath(model)} (sha256 {sha256_file(model)[:16]})"
    return model


def _network(model, name, options, data, recipe, chosen):
    """(The network to train, its `Precision`): built (or taken) in float32, wrapped, then
    computing in the precision `chosen`, revised for the network (`precision.for_model`)."""
    if name:
        shape = network.network_input_shape(name, data.input_shape, options)
        # A softmax for cross-entropy; a linear output of scores (hinge) or values.
        head = {"classifier_activation": losses.output_activation(recipe.task, recipe.loss)}
        backbone = build_model(name, input_shape=shape, num_classes=data.num_outputs,
                               **{**head, **options})
    else:
        backbone = model if isinstance(model, keras.Model) else keras.models.load_model(model)
    if not network.has_preprocessing(backbone):
        backbone = network.wrap(backbone, data, recipe.normalization)
    chosen = precision.for_model(recipe.precision, chosen, backbone)
    return precision.with_policy(backbone, chosen.policy), chosen


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


def _loss_weights(net):
    """1 for the main output, then each auxiliary output's weight (AUX_LOSS_WEIGHTS)."""
    names = split_network(net)[1].output_names  # the backbone's: a wrapper renames them
    return [1.0] + [AUX_LOSS_WEIGHTS.get(name, AUX_LOSS_WEIGHT) for name in names[1:]]


def _compile(net, recipe, steps_per_epoch, make_optimizer=None):
    lr = schedules.learning_rate(recipe, steps_per_epoch, recipe.epochs)
    optimizer = (make_optimizer(recipe, lr, steps_per_epoch) if make_optimizer
                 else build_optimizer(recipe, lr, steps_per_epoch))
    loss = losses.get_loss(recipe.task, recipe.loss, recipe.label_smoothing)
    metric = "accuracy" if recipe.task == "classification" else "mae"
    n = len(net.outputs)
    net.compile(
        optimizer=optimizer,
        loss=[loss] * n if n > 1 else loss,
        loss_weights=_loss_weights(net) if n > 1 else None,
        metrics=[[metric]] + [[] for _ in range(n - 1)] if n > 1 else [metric],
        jit_compile=recipe.jit_compile,
    )


def _repeat_targets(dataset, outputs):
    if dataset is None:
        return None
    return dataset.map(lambda x, y: (x, (y,) * outputs))


def _test_metrics(net, data, history, out):
    """Test metrics of the main output, with the full evaluation report when `out` is set."""
    single = net if len(net.outputs) == 1 else keras.Model(net.inputs, net.outputs[0])
    # The fit diagnosis compares training and validation loss: none without validation data.
    report = evaluate(single, data, history=history if "val_loss" in history else None, out=out)
    return report.metrics
