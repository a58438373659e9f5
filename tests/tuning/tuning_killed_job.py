"""A search that SIGKILLs itself after the first epoch of trial 0's second fold.

Usage: python tuning_killed_job.py OUT
"""

import os
import signal
import sys

from tuning_models import SPACE, tiny

import kerascnn
from kerascnn.training import checkpoints

KILL_IN = os.path.join("trials", "0", "fold-1")
original = checkpoints.RunCheckpoint.on_epoch_end


def on_epoch_end_then_die(self, epoch, logs=None):
    original(self, epoch, logs)  # the epoch is saved: then the process dies at once
    if self.run.path.endswith(KILL_IN) and epoch == 0:
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.RunCheckpoint.on_epoch_end = on_epoch_end_then_die
kerascnn.tune(tiny, "digits", space=SPACE, folds=3, max_trials=1, epochs=2, out=sys.argv[1],
              seed=0, refit=False, verbose=0)
