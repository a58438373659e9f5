"""Crash-safe run state: every completed epoch is kept, every file is written atomically."""

import csv
import io
import json
import math
import os

import keras

from kerascnn.files import atomic_save_model, atomic_write_json, atomic_write_text

STATE = "state.json"


def read_state(folder):
    """Returns the saved run state of `folder`, or None when there is none."""
    path = os.path.join(folder, STATE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def history_csv(history):
    """Formats a history dict (metric -> list per epoch) as CSV text with an epoch column."""
    names = sorted(history)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *names])
    for epoch in range(len(history[names[0]]) if names else 0):
        writer.writerow([epoch + 1, *(history[n][epoch] for n in names)])
    return out.getvalue()


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the model with its optimizer state after every epoch, then the run state.

    The epoch's model goes to `epoch-N.keras` first and `state.json` points to it only once
    that file is complete, so a process killed at any instant (even SIGKILL) leaves a
    consistent state from which `train` resumes after the last completed epoch. Also keeps
    `history.csv` and the best model (`best.keras`, by `monitor`) up to date.

    Args:
        folder: the run's checkpoint folder.
        run_folder: where history.csv and best.keras go.
        fingerprint: a JSON-able description of the run, checked before resuming.
        history: the history of the epochs completed before a resume.
        monitor: the metric that chooses the best model ("val_loss" or "val_accuracy"...).
    """

    def __init__(self, folder, run_folder, fingerprint, history=None, monitor="val_loss",
                 best=None):
        super().__init__()
        self.folder, self.run_folder = folder, run_folder
        self.fingerprint = fingerprint
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.monitor = monitor
        self.mode = "max" if "acc" in monitor else "min"
        self.best = best

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = logs.get(self.monitor, logs.get(self.monitor.removeprefix("val_")))
        if self._improved(value):
            self.best = float(value)
            atomic_save_model(self.model, os.path.join(self.run_folder, "best.keras"))
        name = f"epoch-{epoch + 1}.keras"
        atomic_save_model(self.model, os.path.join(self.folder, name))
        previous = read_state(self.folder)
        atomic_write_json(os.path.join(self.folder, STATE), {
            "epoch": epoch + 1,
            "model": name,
            "history": self.history,
            "best": self.best,
            "monitor": self.monitor,
            "fingerprint": self.fingerprint,
        })
        if previous and previous["model"] != name:
            old = os.path.join(self.folder, previous["model"])
            if os.path.exists(old):
                os.remove(old)
        atomic_write_text(os.path.join(self.run_folder, "history.csv"), history_csv(self.history))
