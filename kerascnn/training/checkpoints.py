"""Crash-safe run state: every completed epoch is kept, every file is written atomically.

The run's history lives in one place, `checkpoints/state.json`; `history.csv` is rewritten
from it. Everything is written through the run's `RunFolder`, so every file is claimed as
kerascnn's, and every path read from the state stays inside the folder.
"""

import csv
import io
import json
import math
import os
import re
import time

import keras
import numpy as np

from kerascnn.data.pipeline import SEED_STATE
from kerascnn.errors import InputError
from kerascnn.run_folder import RunFolderError
from kerascnn.training.precision import policy_scope

CHECKPOINTS = "checkpoints"
STATE = "state.json"
STATE_PATH = f"{CHECKPOINTS}/{STATE}"
EPOCH_FILE = re.compile(r"^epoch-[1-9][0-9]*\.keras$")


def read_state(folder):
    """Returns the saved run state of a checkpoint folder, or None when there is none.

    Args:
        folder: the run's `checkpoints` folder.

    Raises:
        RunFolderError: for a state file that is not readable JSON of a run state.
    """
    path = os.path.join(folder, STATE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if not (isinstance(state, dict) and isinstance(state.get("epoch"), int)
                and isinstance(state.get("history"), dict)
                and isinstance(state.get("fingerprint"), dict)
                and isinstance(state["fingerprint"].get("digest"), str)):
            raise ValueError
    except (OSError, ValueError):
        raise RunFolderError(
            f"{path} is not a readable run state (a corrupt or hand-edited file); rerun with "
            "--fresh (resume=False) to start the run over.") from None
    return state


def state_model_path(run, state):
    """Returns the path of the checkpoint a run state names, checked to lie inside `run`.

    Args:
        run: the RunFolder (entered) holding the state.
        state: the dict `read_state` returned.

    Raises:
        RunFolderError: when the state names anything but one of the run's own epoch files.
    """
    name = state.get("model")
    if not isinstance(name, str) or not EPOCH_FILE.match(name):
        raise RunFolderError(
            f"{run.path_of(STATE_PATH)} names the checkpoint {name!r}, not an epoch file of the "
            "run (epoch-N.keras in checkpoints/); rerun with --fresh (resume=False).")
    relative = f"{CHECKPOINTS}/{name}"
    path = run.path_of(relative)
    if not run.owns(relative) or not os.path.isfile(path):
        raise RunFolderError(
            f"{path}, named by {run.path_of(STATE_PATH)}, is missing or was not written by "
            "kerascnn; rerun with --fresh (resume=False).")
    return path


def load_checkpoint(path, policy):
    """Loads an epoch checkpoint with its optimizer state, under the policy it was trained in.

    Keras wraps the optimizer in a LossScaleOptimizer only when the model's own dtype policy,
    the global one when it is rebuilt, is mixed_float16. Loaded under another, the optimizer
    comes back unwrapped, its saved variables (moments, iterations, the moving averages of
    the weights, the loss scale) no longer match and Keras skips them all with a warning.

    Args:
        path: the checkpoint's .keras file.
        policy: the Keras dtype policy of the run ("float32", "mixed_bfloat16", ...).
    """
    with policy_scope(policy):
        return keras.models.load_model(path)


def history_csv(history):
    """Formats a history dict (metric -> list per epoch) as CSV text with an epoch column."""
    names = sorted(history)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *names])
    for epoch in range(len(history[names[0]]) if names else 0):
        writer.writerow([epoch + 1, *(history[n][epoch] for n in names)])
    return out.getvalue()


def seed_states(model):
    """Returns the states of the model's seed generators (dropout, stochastic depth...)."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in model.variables if v.name == SEED_STATE]


def restore_seed_states(model, states):
    """Sets the model's seed generators to saved states (a loaded model draws new seeds)."""
    variables = [v for v in model.variables if v.name == SEED_STATE]
    if states is None or len(states) != len(variables):
        return
    for variable, state in zip(variables, states):
        variable.assign(np.asarray(state, dtype=variable.dtype))


def finite_weights(model):
    """Whether every weight of `model` is finite."""
    return all(np.isfinite(w).all() for w in model.get_weights()
               if np.issubdtype(w.dtype, np.floating))


class TrainingDivergedError(InputError):
    """Training stopped at a non-finite loss; the message names the epoch and likely causes."""


class FirstStepTimer(keras.callbacks.Callback):
    """Remembers when `fit`'s first training step ended (`time.perf_counter()`): the time to
    it is mostly tracing the step."""

    def __init__(self):
        super().__init__()
        self.seconds = None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None:
            self.seconds = time.perf_counter()


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened.

    Unlike Keras' TerminateOnNaN it keeps the epoch and batch for the error `train` raises,
    and it is first in the callback list, so the checkpoint callback sees the failure.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None  # (epoch index, batch index or None, loss)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged is None and loss is not None and not math.isfinite(float(loss)):
            self.diverged = (self._epoch, batch, float(loss))
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged is None and loss is not None and not math.isfinite(float(loss)):
            self.diverged = (epoch, None, float(loss))
            self.model.stop_training = True


def ema_optimizer(optimizer):
    """Returns the optimizer that keeps the moving averages of the weights, or None.

    Under mixed float16 Keras wraps the compiled optimizer in a LossScaleOptimizer, whose own
    `use_ema` is False: the averages live in its `inner_optimizer`, which is the one to ask.

    Args:
        optimizer: a model's optimizer (or None, for a model that was not compiled).
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer if getattr(optimizer, "use_ema", False) else None


class SwapEMAWeights(keras.callbacks.SwapEMAWeights):
    """Keras' SwapEMAWeights with exact swaps, finalised by `FinalizeEMA`.

    Validation runs on the averaged weights, and from the end of each epoch to the start of
    the next the model holds them, so the best-model checkpoint and early stopping see the
    averaged model. Keras swaps TensorFlow variables by additions, which round; swapping
    through a copy keeps both sets bitwise (an interrupted run resumes exactly). Lives here,
    the one module that touches the callback's private hooks.
    """

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    def _tf_swap_variables(self, optimizer):
        self._backend_swap_variables(optimizer)

    def _tf_finalize_ema_values(self, optimizer):
        self._backend_finalize_ema_values(optimizer)

    def on_epoch_end(self, epoch, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def raw_weights(self):
        """A context in which the model holds its raw (trained) weights."""
        return _RawWeights(self)

    def finalize(self):
        """Makes the averaged weights the ones `fit` leaves in the model."""
        if self._ema_weights_in_model:
            self._finalize_ema_values()


class _RawWeights:
    def __init__(self, swap):
        self.swap = swap
        self.swapped = False

    def __enter__(self):
        if self.swap._ema_weights_in_model:
            self.swap._swap_variables()
            self.swapped = True

    def __exit__(self, *exc):
        if self.swapped:
            self.swap._swap_variables()


class FinalizeEMA(keras.callbacks.Callback):
    """Last in the callback list: when training ends (last epoch or stopped), makes the
    averaged weights final, so `fit` leaves them in the model."""

    def __init__(self, swap):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training or epoch == self.params["epochs"] - 1:
            self.swap.finalize()


# What ReduceLROnPlateau and EarlyStopping count between epochs (Keras resets it when
# training begins): kept in the run state so that a resumed run decides as an uninterrupted one.
COUNTERS = ("wait", "best", "best_epoch", "cooldown_counter")


def callback_states(callbacks):
    """{class name: counters} of the stateful recipe callbacks."""
    return {type(c).__name__: {k: float(getattr(c, k)) for k in COUNTERS
                               if getattr(c, k, None) is not None}
            for c in callbacks}


class RestoreCallbackStates(keras.callbacks.Callback):
    """Placed after the recipe's ReduceLROnPlateau / EarlyStopping: gives them back, when
    training begins, the counters of the run being resumed (and early stopping its best
    weights, those of best.keras)."""

    def __init__(self, callbacks, states, best_model=None):
        super().__init__()
        self.callbacks, self.states, self.best_model = callbacks, states or {}, best_model

    def on_train_begin(self, logs=None):
        for callback in self.callbacks:
            for key, value in self.states.get(type(callback).__name__, {}).items():
                setattr(callback, key, int(value) if key != "best" else value)
            if getattr(callback, "restore_best_weights", False) and self.best_model:
                callback.best_weights = keras.models.load_model(
                    self.best_model, compile=False).get_weights()  # its weights only


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the model with its optimizer state after every epoch, then the run state.

    The epoch's model goes to `checkpoints/epoch-N.keras` first and `checkpoints/state.json`
    points to it only once that file is complete, so a process killed at any instant (even
    SIGKILL) leaves a consistent state from which `train` resumes after the last completed
    epoch. The state holds the history (the one source of `history.csv`), the best value of
    `monitor`, the model's seed-generator states and the training time. An epoch whose loss or
    weights are not finite is not recorded: the run keeps its last finite epoch.

    Args:
        run: the entered RunFolder of the run.
        fingerprint: a JSON-able description of the run, checked before resuming.
        history: the history of the epochs completed before a resume.
        monitor: the metric that chooses the best model ("val_loss" or "val_accuracy"...).
        best: the best value of `monitor` before a resume.
        ema: the run's SwapEMAWeights, or None: the checkpoint keeps the raw weights.
        train_seconds: training time before a resume.
        best_epoch: the epoch of `best`.
        stateful: callbacks whose counters the state keeps (see `RestoreCallbackStates`).
        persist: False keeps the history and the best epoch without writing any file (a run
            with no folder to resume from: `train(out=None)`).
    """

    def __init__(self, run, fingerprint, history=None, monitor="val_loss", best=None, ema=None,
                 train_seconds=0.0, best_epoch=None, stateful=(), persist=True):
        super().__init__()
        self.run = run
        self.persist = persist
        self.fingerprint = fingerprint
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.monitor = monitor
        self.mode = "max" if "acc" in monitor else "min"
        self.best = best
        self.best_epoch = best_epoch
        self.ema = ema
        self.train_seconds = float(train_seconds)
        self.stateful = list(stateful)
        self._started = None

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(v)) for k, v in logs.items() if "loss" in k) or not (
                finite_weights(self.model)):
            self.model.stop_training = True
            return  # never a non-finite checkpoint: the run keeps its last finite epoch
        if self._started is not None:
            self.train_seconds += time.perf_counter() - self._started
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = logs.get(self.monitor, logs.get(self.monitor.removeprefix("val_")))
        improved = self._improved(value)
        if improved:
            self.best, self.best_epoch = float(value), epoch + 1
        if not self.persist:
            return
        if improved:
            self.run.save_model(self.model, "best.keras")
        name = f"epoch-{epoch + 1}.keras"
        if self.ema is not None:
            with self.ema.raw_weights():
                self.run.save_model(self.model, f"{CHECKPOINTS}/{name}")
        else:
            self.run.save_model(self.model, f"{CHECKPOINTS}/{name}")
        self.run.write_json(STATE_PATH, {
            "epoch": epoch + 1,
            "model": name,
            "history": self.history,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "seed_states": seed_states(self.model),
            "callback_states": callback_states(self.stateful),
            "train_seconds": round(self.train_seconds, 3),
            "fingerprint": self.fingerprint,
        })
        # Every older epoch file goes, also one left by a kill between a state and this line.
        for old in os.listdir(self.run.path_of(CHECKPOINTS)):
            if EPOCH_FILE.match(old) and old != name and self.run.owns(f"{CHECKPOINTS}/{old}"):
                self.run.remove(f"{CHECKPOINTS}/{old}")
        self.run.write_text("history.csv", history_csv(self.history))
