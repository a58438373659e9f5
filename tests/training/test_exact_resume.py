"""A run killed after an epoch and resumed ends bitwise where an uninterrupted run ends (CPU)."""

import keras
import numpy as np
import pytest

import kerascnn
from training_helpers import KillAfterFirstEpoch, Killed


def test_killed_and_resumed_run_matches_the_uninterrupted_one_bitwise(tmp_path, capsys):
    # Dropout (seed generators), a shuffle, a stateless (rotate) and a Keras-layer
    # (brightness) augmentation, Adam's moments and a cosine schedule read from the step.
    options = dict(model_options={"dropout": 0.3}, augment="rotate=10,brightness=0.2",
                   epochs=2, batch_size=64, seed=3)
    whole = kerascnn.train("lenet1", "digits", verbose=0, **options)
    with pytest.raises(Killed):
        kerascnn.train("lenet1", "digits", out=tmp_path, verbose=0,
                       callbacks=[KillAfterFirstEpoch()], **options)
    capsys.readouterr()
    resumed = kerascnn.train("lenet1", "digits", out=tmp_path, verbose=2, **options)
    assert f"resuming the run in {tmp_path} after epoch 1 of 2" in capsys.readouterr().out
    assert resumed.history == whole.history
    assert len(resumed.model.get_weights()) == len(whole.model.get_weights())
    assert all(np.array_equal(a, b)
               for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()))


class KillAfterThirdEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            raise Killed


@pytest.mark.slow
def test_plateau_early_stopping_and_ema_resume_exactly(tmp_path):
    # The plateau schedule halves the rate and early stopping ends the run in epoch 4, after
    # the kill: both must count from the epochs before it (their counters are in the state).
    options = dict(schedule="plateau", patience=0, factor=0.5, early_stopping=1, ema=0.5,
                   learning_rate=0.02, epochs=6, batch_size=16, seed=3)
    whole = kerascnn.train("lenet1", "digits", verbose=0, **options)
    assert len(whole.history["loss"]) < 6  # stopped early
    with pytest.raises(Killed):
        kerascnn.train("lenet1", "digits", out=tmp_path, verbose=0,
                       callbacks=[KillAfterThirdEpoch()], **options)
    resumed = kerascnn.train("lenet1", "digits", out=tmp_path, verbose=0, **options)
    assert resumed.history == whole.history
    assert float(resumed.model.optimizer.learning_rate) == float(whole.model.optimizer.learning_rate) < 0.02
    assert all(np.array_equal(a, b)
               for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()))
