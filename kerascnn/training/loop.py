"""`fit`: a training job run in its run folder, step by step, from its data to a saved network.

The steps, each a function below: seed, read the saved state (resume or refuse another run),
build or restore the network, its pipelines, its callbacks, Keras' `fit`, the divergence
check, the float32 copy saved as model.keras. `kerascnn.workflow.train` puts a job together
and adds the test report and the run record.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kerascnn import losses
from kerascnn.data.errors import reading_files
from kerascnn.data.pipeline import steps_per_epoch
from kerascnn.data.preprocessing import split_network
from kerascnn.errors import InputError
from kerascnn.models.registry import auxiliary_loss_weight, build_model
from kerascnn.run_folder import TENSORBOARD_FILES, RunFolderError
from kerascnn.training import (checkpoints, fingerprints, multi_worker, network, precision,
                               schedules)
from kerascnn.training.optimizers import build_optimizer, scale_biases

PROBABILITY_TOLERANCE = 1e-3  # rows of a softmax output sum to 1 within this


@dataclasses.dataclass
class Job:
    """What to train and how, as `train` resolved and checked it.

    Attributes:
        model: a registry name, a keras.Model or a .keras path.
        name: the registry name when `model` is one, else None.
        options: the builder options (registry models).
        recipe: the Recipe.
        seed: the seed of weights, shuffling, augmentation and splits.
        strategy: the tf.distribute.Strategy.
        precision: the `Precision` chosen for the recipe (revised for the network).
        optimizer: None or a callable (recipe, learning_rate, steps_per_epoch) -> Optimizer.
        callbacks: the caller's extra Keras callbacks.
        resume: continue a saved run; False clears the run's files first.
        deterministic: enable TensorFlow's op determinism.
        verbose: Keras' progress display; 0 also silences the notes.
    """

    model: object
    name: str
    options: dict
    recipe: object
    seed: int
    strategy: object
    precision: object
    optimizer: object = None
    callbacks: list = None
    resume: bool = True
    deterministic: bool = True
    verbose: object = "auto"

    def say(self, *args):
        if self.verbose != 0:
            print(*args)


@dataclasses.dataclass
class Fitted:
    """What `fit` gives back: the float32 network, its history and how the run went."""

    net: keras.Model
    history: dict
    fingerprint: dict
    precision: object
    seconds: float  # in Keras' fit, this call
    train_seconds: float  # in Keras' fit, every call of the run
    finished: bool  # the run was finished before this call: nothing was trained


class Clock:
    """Seconds of each named step of a call, from one mark to the next (a step marked twice
    adds up)."""

    def __init__(self):
        self.timings = {}
        self._last = time.perf_counter()

    def mark(self, step):
        now = time.perf_counter()
        self.timings[step] = round(self.timings.get(step, 0.0) + now - self._last, 3)
        self._last = now


def fit(job, data, run, state_run, *, persist, clock):
    """Trains `job` on `data` in the entered run folder `run`; returns a `Fitted`.

    `state_run` holds the state to resume (`run` itself, except on the workers of a
    multi-worker run that are not the chief); `persist` False keeps nothing on disk.
    `clock` gets the marks "build", "pipeline", "fit", "first_step" and "save".
    """
    _seed(job)
    resumed = _resumed(job, run, state_run, data, persist)
    state = resumed.state if resumed else {}
    net, chosen, fingerprint = _network_to_train(job, data, run, state_run, resumed)
    clock.mark("build")
    _announce(job, run, state_run, state, chosen, persist)
    initial_epoch = state.get("epoch", 0)
    finished = bool(state) and initial_epoch >= job.recipe.epochs
    pipelines = _pipelines(job, data, net, initial_epoch)
    checkpoint, guards, callbacks = _callbacks(job, run, state, fingerprint, persist, net, data,
                                               validation=pipelines[1] is not None)
    clock.mark("pipeline")
    seconds = 0.0 if finished else _fit(job, net, pipelines, initial_epoch, callbacks, guards)
    clock.mark("fit")
    if guards.first_step.seconds is not None:
        clock.timings["first_step"] = round(guards.first_step.seconds - guards.start, 3)
    _check_finite(job, net, guards.diverged, checkpoint, run.path if persist else None)
    # Keras loads a model saved under a mixed policy computing in it (bfloat16 is emulated,
    # slowly, on CPUs without bfloat16 units): model.keras and the result are float32 copies.
    net = precision.with_policy(net, "float32")
    if persist:
        run.save_model(net, "model.keras")
    clock.mark("save")
    return Fitted(net, checkpoint.history, fingerprint, chosen, seconds,
                  checkpoint.train_seconds, finished)


def _seed(job):
    keras.utils.set_random_seed(job.seed)
    if job.deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass
class _Resumed:
    """A saved run this call continues: its state, precision and fingerprint."""

    state: dict
    precision: object
    fingerprint: dict


def _resumed(job, run, state_run, data, persist):
    """The saved run to continue (None for a new run); refuses a folder holding another run,
    and clears the run's files when `job.resume` is False."""
    state = (checkpoints.read_state(state_run.path_of(checkpoints.CHECKPOINTS))
             if job.resume and persist else None)
    resumed = None
    if state:
        chosen = fingerprints.resumed_precision(job.precision, job.recipe, state)
        resumed = _Resumed(state, chosen, fingerprints.fingerprint(
            job.model, job.options, data, job.recipe, job.seed, chosen))
        if state["fingerprint"]["digest"] != resumed.fingerprint["digest"]:
            raise RunFolderError(
                f"{run.path} holds another run ({state['fingerprint']['summary']}; it differs "
                f"in {fingerprints.differences(state['fingerprint'], resumed.fingerprint)}); "
                "use another `out` folder, or resume=False (--fresh) to start this one over.")
    if not job.resume:
        run.clear()
    return resumed


def _network_to_train(job, data, run, state_run, resumed):
    """(The network, its `Precision`, the run's fingerprint): the finished run's model, the
    resumed run's last checkpoint, or a new network built and compiled."""
    recipe = job.recipe
    with job.strategy.scope():
        if resumed:
            net = _restored(recipe, run, state_run, resumed.state, resumed.precision)
            return net, resumed.precision, resumed.fingerprint
        net, chosen = _built(job, data)
        fingerprint = fingerprints.fingerprint(job.model, job.options, data, recipe, job.seed,
                                               chosen)
        _check_outputs(net, data, recipe)
        _compile(net, recipe, steps_per_epoch(data.size("train"), recipe.batch_size),
                 job.optimizer)
        return net, chosen, fingerprint


def _restored(recipe, run, state_run, state, chosen):
    """The model of a finished run, or the checkpoint a run resumes from (with its seeds)."""
    finished = state["epoch"] >= recipe.epochs
    if finished and run.owns("model.keras") and os.path.isfile(run.path_of("model.keras")):
        return keras.models.load_model(run.path_of("model.keras"))
    net = checkpoints.load_checkpoint(checkpoints.state_model_path(state_run, state),
                                      chosen.policy)
    checkpoints.restore_seed_states(net, state.get("seed_states"))
    if finished and checkpoints.ema_optimizer(net.optimizer):
        net.optimizer.finalize_variable_values(net.trainable_weights)
    return net


def _built(job, data):
    """(The network to train, its `Precision`): built (or taken) in float32, wrapped, then
    computing in the precision chosen, revised for the network (`precision.for_model`)."""
    recipe = job.recipe
    if job.name:
        shape = network.network_input_shape(job.name, data.input_shape, job.options)
        # A softmax for cross-entropy; a linear output of scores (hinge) or values.
        head = {"classifier_activation": losses.output_activation(recipe.task, recipe.loss)}
        backbone = build_model(job.name, input_shape=shape, num_classes=data.num_outputs,
                               **{**head, **job.options})
    elif isinstance(job.model, keras.Model):
        backbone = job.model
    else:
        backbone = keras.models.load_model(job.model)
    if not network.has_preprocessing(backbone):
        backbone = network.wrap(backbone, data, recipe.normalization)
    chosen = precision.for_model(recipe.precision, job.precision, backbone)
    return precision.with_policy(backbone, chosen.policy), chosen


def _announce(job, run, state_run, state, chosen, persist):
    """Says the precision and whether the run resumes; rewrites history.csv from the state."""
    job.say(f"precision: {chosen.name} ({chosen.reason})")
    epochs = job.recipe.epochs
    if state and state["epoch"] >= epochs:
        job.say(f"{run.path} holds this run, finished after {state['epoch']} epochs: nothing "
                "to train; its model is evaluated again.")
    elif state:
        job.say(f"resuming the run in {run.path} after epoch {state['epoch']} of {epochs}.")
    if state and persist and run is state_run:
        # The state is the one source of the history: a kill between writing it and
        # history.csv must not leave the CSV an epoch short.
        run.write_text("history.csv", checkpoints.history_csv(state["history"]))


def _pipelines(job, data, net, initial_epoch):
    """(train, validation or None, the worker's input context or None): the tf.data pipelines;
    under multi_worker each worker reads only its share of every global batch, one epoch's
    dataset per epoch."""
    recipe = job.recipe
    multi = multi_worker.is_multi_worker(job.strategy)
    worker = multi_worker.worker_input_context(job.strategy) if multi else None
    if multi:
        train_ds = data.pipeline("train", recipe.batch_size, augment=recipe.augment,
                                 seed=job.seed, input_context=worker)
    else:
        train_ds = data.pipeline("train", recipe.batch_size, augment=recipe.augment,
                                 seed=job.seed, epochs=recipe.epochs,
                                 initial_epoch=min(initial_epoch, recipe.epochs))
    val_ds = (data.pipeline("validation", recipe.batch_size, input_context=worker)
              if data.size("validation") else None)
    outputs = len(net.outputs)
    if outputs > 1:
        train_ds, val_ds = (_repeat_targets(d, outputs) for d in (train_ds, val_ds))
    return train_ds, val_ds, worker


@dataclasses.dataclass
class _Guards:
    """The callbacks `fit` reads after training: divergence and the first step's time."""

    diverged: checkpoints.StopOnNonFiniteLoss
    first_step: checkpoints.FirstStepTimer
    steps: int  # per epoch
    start: float = 0.0  # when fit began


def _callbacks(job, run, state, fingerprint, persist, net, data, *, validation):
    """(The RunCheckpoint, the _Guards, every callback in order): the first-step timer, the
    divergence stop, EMA swaps, the checkpoint, TensorBoard, the recipe's schedule and early
    stopping (their states restored on resuming), then the caller's."""
    ema = checkpoints.SwapEMAWeights() if checkpoints.ema_optimizer(net.optimizer) else None
    checkpoint = checkpoints.RunCheckpoint(
        run, fingerprint, history=state.get("history"), best=state.get("best"),
        best_epoch=state.get("best_epoch"), monitor="val_loss" if validation else "loss",
        ema=ema, train_seconds=state.get("train_seconds", 0.0), persist=persist)
    recipe_callbacks = _recipe_callbacks(job.recipe, run, persist, checkpoint.monitor)
    checkpoint.stateful = [c for c in recipe_callbacks
                           if isinstance(c, (keras.callbacks.ReduceLROnPlateau,
                                             keras.callbacks.EarlyStopping))]
    if state and checkpoint.stateful:
        best = run.path_of("best.keras") if run.owns("best.keras") else None
        recipe_callbacks.append(checkpoints.RestoreCallbackStates(
            checkpoint.stateful, state.get("callback_states"),
            best if best and os.path.isfile(best) else None))
    guards = _Guards(checkpoints.StopOnNonFiniteLoss(), checkpoints.FirstStepTimer(),
                     steps_per_epoch(data.size("train"), job.recipe.batch_size))
    callbacks = [guards.first_step, guards.diverged, *([ema] if ema else []), checkpoint,
                 *recipe_callbacks, *list(job.callbacks or []),
                 *([checkpoints.FinalizeEMA(ema)] if ema else [])]
    return checkpoint, guards, callbacks


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


def _fit(job, net, pipelines, initial_epoch, callbacks, guards):
    """Keras' fit (or the multi-worker loop); returns its seconds."""
    recipe, (train_ds, val_ds, worker) = job.recipe, pipelines
    guards.start = time.perf_counter()
    with reading_files():  # a streamed file deleted or changed since loading: one line
        if worker is not None:
            multi_worker.fit(net, train_ds, val_ds, epochs=recipe.epochs,
                             initial_epoch=initial_epoch, callbacks=callbacks,
                             verbose=job.verbose, input_context=worker)
        else:
            net.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs,
                    initial_epoch=initial_epoch, steps_per_epoch=guards.steps,
                    callbacks=callbacks, verbose=job.verbose, shuffle=False)
    return time.perf_counter() - guards.start


def _check_finite(job, net, diverged, checkpoint, out):
    """Raises TrainingDivergedError when the loss or the weights became NaN or infinite."""
    if diverged.diverged is not None or not checkpoints.finite_weights(net):
        raise checkpoints.TrainingDivergedError(
            _divergence_message(diverged.diverged, checkpoint, job.recipe, out))


def _divergence_message(where, checkpoint, recipe, out):
    kept = len(next(iter(checkpoint.history.values()), []))
    epoch, batch, loss = where if where else (kept, None, float("nan"))
    at = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
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
    for output in keras.tree.flatten(net(x, training=False)):
        values = keras.ops.convert_to_numpy(output).astype(np.float64)
        _check_width(values.shape[-1], data, recipe)
        if recipe.task == "classification":
            _check_scores(values, recipe)


def _check_width(width, data, recipe):
    if width == data.num_outputs:
        return
    softmax = losses.output_activation(recipe.task, recipe.loss) == "softmax"
    what = (f"{data.num_outputs} regression target(s); end it in Dense({data.num_outputs}) "
            "with no activation" if recipe.task == "regression"
            else f"{data.num_classes} classes; end it in Dense({data.num_classes}, "
            f"activation={'softmax' if softmax else None!r})")
    raise InputError(f"the model gives {width} outputs per example but {data.name} has {what}.")


def _check_scores(values, recipe):
    """Probabilities for cross-entropy, anything but probabilities for the hinge losses."""
    softmax = losses.output_activation(recipe.task, recipe.loss) == "softmax"
    low, high = np.nanmin(values), np.nanmax(values)
    sums = values.sum(axis=-1)
    probabilities = (low >= -PROBABILITY_TOLERANCE and high <= 1 + PROBABILITY_TOLERANCE
                     and np.all(np.abs(sums - 1) <= PROBABILITY_TOLERANCE * values.shape[-1]))
    if softmax and not probabilities:
        raise InputError(
            f"the model's outputs are not class probabilities (values from {low:.3g} to "
            f"{high:.3g}, rows summing to {sums.min():.3g}..{sums.max():.3g}): it ends in "
            "logits. kerascnn trains with cross-entropy on probabilities: end the model in "
            "activation='softmax' (or add keras.layers.Softmax()), or train with "
            "loss='hinge' on raw scores.")
    if not softmax and probabilities:
        raise InputError(
            f"loss={losses.loss_name(recipe.task, recipe.loss)!r} is the multiclass SVM loss "
            "on raw class scores, but the model ends in a softmax (its rows sum to 1, so no "
            "margin of 1 can be met): end it in a linear layer (classifier_activation=None).")


def _loss_weights(net):
    """1 for the main output, then each auxiliary output's weight, as its family declares."""
    names = split_network(net)[1].output_names  # the backbone's: a wrapper renames them
    return [1.0] + [auxiliary_loss_weight(name) for name in names[1:]]


def _compile(net, recipe, steps, make_optimizer=None):
    lr = schedules.learning_rate(recipe, steps, recipe.epochs)
    optimizer = (make_optimizer(recipe, lr, steps) if make_optimizer
                 else build_optimizer(recipe, lr, steps))
    if recipe.bias_lr_scale != 1:
        scale_biases(optimizer, network.bias_paths(net), recipe.bias_lr_scale)
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
