"""`train`: a model and a data set in; a trained model, its history, test report and run out.

The steps: resolve the arguments into a training job (`kerascnn.training.Job`), load the
data, enter the run folder, fit (`kerascnn.training.fit`), evaluate the test split
(`kerascnn.evaluation`), write the run record (run.json). Training sits below evaluation,
this module above both.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn import losses
from kerascnn.data import Data, load
from kerascnn.data.preprocessing import split_network
from kerascnn.errors import InputError
from kerascnn.evaluation import evaluate
from kerascnn.evaluation.metrics import headline
from kerascnn.models.registry import get_model_entry
from kerascnn.run_folder import RunFolder
from kerascnn.training import distribute, multi_worker, network, precision
from kerascnn.training.loop import Clock, Job, fit
from kerascnn.training.recipes import get_recipe

TEST_SPLIT = 0.2  # load()'s default


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


@dataclasses.dataclass
class DataSource:
    """How `train` reads its data: `load`'s arguments, recorded so that `evaluate(run_dir)`
    reads the data again the same way."""

    data: object
    data_dir: str = None
    kind: str = None
    stream: object = "auto"
    cache: str = None

    def load(self, recipe, seed):
        """(The Data, the record of its source for run.json)."""
        if isinstance(self.data, Data):
            self._refuse_load_options()
            self.data.check_task(recipe.task)
            # Loaded by the caller: its arguments are unknown, its name and split seed are not.
            return self.data, {"source": self.data.name, "loaded_by": "caller",
                               "seed": self.data.seed, "kind": self.data.kind,
                               "task": self.data.task}
        validation_split = recipe.validation_split or None
        loaded = load(self.data, data_dir=self.data_dir, validation_split=validation_split,
                      test_split=TEST_SPLIT, seed=seed, task=recipe.task, kind=self.kind,
                      stream=self.stream, cache=self.cache)
        return loaded, self._record(loaded, validation_split, seed, recipe.task)

    def _refuse_load_options(self):
        given = {key: getattr(self, key) for key in ("kind", "stream", "cache")
                 if getattr(self, key) is not None
                 and not (key == "stream" and getattr(self, key) == "auto")}
        if given:
            listed = ", ".join(f"{key}={value!r}" for key, value in given.items())
            verb = "tells" if len(given) == 1 else "tell"
            raise InputError(f"{listed} {verb} how to read a data source, but `data` is a "
                             "Data already read; pass them to kerascnn.data.load instead.")

    def _record(self, loaded, validation_split, seed, task):
        named = isinstance(self.data, (str, os.PathLike))
        source = os.fspath(self.data) if named else None
        if named and os.path.exists(source):
            source = os.path.abspath(source)
        return {"source": source, "loaded_by": "train" if named else "arrays",
                "data_dir": os.path.abspath(self.data_dir) if self.data_dir else None,
                "validation_split": validation_split, "test_split": TEST_SPLIT,
                "seed": seed, "kind": loaded.kind, "task": task, "stream": self.stream,
                "cache": os.path.abspath(self.cache) if self.cache else None}


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

    The arguments come in four groups: what to train (model, model_options), the data
    (data, data_dir, kind, stream, cache), the recipe (recipe, then its fields to override:
    epochs, batch_size, augment, learning_rate, optimizer, **recipe_overrides) and the run
    (out, seed, strategy, resume, deterministic, verbose, callbacks).

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
        InputError: (a ValueError) an unknown model, recipe field or data source; a model
            whose outputs do not fit the loss (probabilities for cross-entropy, scores for
            hinge, one value per target for regression); labels that do not fit the task.
        RunFolderError: (an InputError) a run folder in use by another process, holding
            files kerascnn did not write, holding a different run, or naming paths outside
            itself.
        TrainingDivergedError: (an InputError) the loss became NaN or infinite; the run
            folder keeps its last finite epoch.
    """
    recipe, optimizer = _recipe(recipe, optimizer, epochs=epochs, batch_size=batch_size,
                                augment=augment, learning_rate=learning_rate, **recipe_overrides)
    job = _job(model, model_options, recipe, seed, strategy, optimizer, callbacks=callbacks,
               resume=resume, deterministic=deterministic, verbose=verbose)
    source = DataSource(data, data_dir, kind, stream, cache)
    with _run_folders(out, job.strategy) as (run, state_run):
        clock = Clock()
        data, source_record = source.load(job.recipe, job.seed)
        clock.mark("load")
        fitted = fit(job, data, run, state_run, persist=bool(out), clock=clock)
        metrics = _test_metrics(fitted, data, job.recipe, run if out else None)
        clock.mark("evaluate")
        if out:
            _write_run_record(run, job, data, source_record, fitted, metrics, clock)
        clock.mark("save")
    return TrainResult(fitted.net, fitted.history, metrics, run.path if out else None,
                       job.recipe, fitted.seconds, clock.timings)


def _recipe(recipe, optimizer, *, augment, **overrides):
    """(The Recipe with its overrides, the optimizer callable or None)."""
    if isinstance(optimizer, str):  # a recipe's optimizer by name
        overrides["optimizer"], optimizer = optimizer, None
    elif optimizer is not None and not callable(optimizer):
        raise InputError(
            "optimizer must be None, a name (sgd, adam, adamw, rmsprop) or a callable "
            f"(recipe, learning_rate, steps_per_epoch) -> Optimizer; got {optimizer!r}.")
    no_augment = augment in ("none", False)
    recipe = get_recipe(recipe, augment=None if no_augment else augment, **overrides)
    return (recipe.replace(augment=None) if no_augment else recipe), optimizer


def _job(model, model_options, recipe, seed, strategy, optimizer, **settings):
    """The checked training job: the model by name or object, its options, the precision,
    the seed and the strategy."""
    name = _check_model(model)
    options = network.model_options(name, recipe, model_options) if name else {}
    chosen = precision.choose_precision(recipe.precision)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got seed={seed!r}.")
    return Job(model, name, options, recipe, int(seed), distribute.get_strategy(strategy),
               chosen, optimizer, **settings)


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
    raise InputError(
        f"model must be a registry name, a keras.Model or a .keras path; got {model!r}.")


@contextlib.contextmanager
def _run_folders(out, strategy):
    """(The run folder written, the one holding the state to resume), entered.

    Every worker of a multi-worker run saves (saving reads variables the workers reduce
    together): the others write to a scratch folder of their own, removed at the end, and
    read the chief's state to resume with it, writing nothing there.
    """
    chief = multi_worker.is_chief(strategy)
    scratch = None if out and chief else tempfile.mkdtemp(prefix="kerascnn-")
    folder = RunFolder(out if out and chief else scratch, "train")
    shared = RunFolder(out, "train", exclusive=False) if out and not chief else None
    try:
        with folder as run, shared or contextlib.nullcontext() as state_run:
            yield run, state_run or run
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _test_metrics(fitted, data, recipe, out):
    """Test metrics of the main output, with the full evaluation report when `out` is set."""
    if not data.size("test"):
        return {}
    net = fitted.net
    single = net if len(net.outputs) == 1 else keras.Model(net.inputs, net.outputs[0])
    history = fitted.history
    # The fit diagnosis compares training and validation loss: none without validation data.
    report = evaluate(single, data, history=history if "val_loss" in history else None, out=out,
                      tta=recipe.tta)
    return report.metrics


def _write_run_record(run, job, data, source_record, fitted, metrics, clock):
    """run.json: what was trained on what, how, for how long, and its test figures."""
    recipe, history = job.recipe, fitted.history
    previous = run.read_json("run.json") if fitted.finished else {}
    run.write_json("run.json", {
        "kerascnn": kerascnn.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "model": fitted.fingerprint["model"],
        "model_options": job.options,
        "data": {**fitted.fingerprint["data"], "source": source_record,
                 "splits": data.split_digests()},
        "network_input_shape": list(split_network(fitted.net)[1].inputs[0].shape[1:]),
        "recipe": recipe.to_dict(),
        "precision": fitted.precision.to_dict(),
        "seed": job.seed,
        "epochs_completed": len(next(iter(history.values()), [])),
        "train_seconds": round(fitted.train_seconds, 2),
        "train_seconds_this_call": (previous.get("train_seconds_this_call")
                                    if fitted.finished else round(fitted.seconds, 2)),
        "task": recipe.task,
        "loss": losses.loss_name(recipe.task, recipe.loss),
        "test_accuracy": metrics.get("accuracy"),
        **headline(metrics, "test_"),
        "timings": clock.timings,
    })
