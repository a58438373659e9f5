"""EMA under mixed float16 (issue 24, item 21): Keras wraps the optimizer in a
LossScaleOptimizer, and the averages still score validation, best.keras and the final model."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.training import checkpoints, precision
from training_helpers import KillAfterFirstEpoch, Killed


@pytest.fixture
def gpu_precision(monkeypatch):
    """precision="auto" answers as on a GPU (mixed float16), which the CPU then emulates."""
    choose = precision.choose_precision
    monkeypatch.setattr(precision, "choose_precision", lambda p="auto", gpu=None: choose(p, gpu=True))


def _close(a, b):
    return all(np.allclose(x, y, rtol=1e-4, atol=1e-6) for x, y in zip(a, b))


def test_ema_optimizer_looks_through_the_loss_scale_optimizer():
    averaged = keras.optimizers.Adam(use_ema=True)
    assert checkpoints.ema_optimizer(averaged) is averaged
    assert checkpoints.ema_optimizer(keras.optimizers.LossScaleOptimizer(averaged)) is averaged
    plain = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    assert checkpoints.ema_optimizer(plain) is None
    assert checkpoints.ema_optimizer(None) is None


def test_mixed_float16_ema_scores_and_saves_the_averaged_weights(tmp_path, gpu_precision):
    class Record(keras.callbacks.Callback):
        raw, averaged, ends = [], [], []  # per applied step; per epoch, as callbacks see them

        def on_train_batch_end(self, batch, logs=None):
            assert isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)
            # A step whose scaled gradients overflow is skipped: no update, no average.
            if int(self.model.optimizer.inner_optimizer.iterations) > len(self.raw):
                self.raw.append([w.copy() for w in self.model.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            self.averaged.append([w.copy() for w in self.model.get_weights()])
            self.ends.append(len(self.raw))

    momentum = 0.8
    out = tmp_path / "run"
    result = kerascnn.train("lenet1", "digits", epochs=2, ema=momentum, schedule="constant",
                            out=out, verbose=0, callbacks=[Record()])
    assert result.run_dir and "float16" in (out / "run.json").read_text()
    # Keras' EMA: the first average is the first updated weights, then m * avg + (1 - m) * w.
    averages = [Record.raw[0]]
    for raw in Record.raw[1:]:
        averages.append([momentum * a + (1 - momentum) * w for a, w in zip(averages[-1], raw)])
    final = result.model.get_weights()
    assert _close(final, averages[-1])
    assert not _close(final, Record.raw[-1])
    for seen, end in zip(Record.averaged, Record.ends):  # the callbacks saw the average
        assert _close(seen, averages[end - 1])
    # best.keras holds the average at the end of its epoch, not the raw weights.
    best_epoch = int(np.argmin(result.history["val_loss"]))
    best = keras.models.load_model(out / "best.keras", compile=False).get_weights()
    assert _close(best, averages[Record.ends[best_epoch] - 1])
    assert not _close(best, Record.raw[Record.ends[best_epoch] - 1])
    # Validation scored the averaged model: its val_loss is the saved model's loss (the run
    # computed it in float16, the saved model in float32).
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    x, y = data.arrays("validation")
    probabilities = keras.models.load_model(out / "model.keras").predict(x, verbose=0)
    loss = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert result.history["val_loss"][-1] == pytest.approx(loss, rel=2e-3)


@pytest.mark.slow
def test_mixed_float16_ema_run_resumes_exactly(tmp_path, gpu_precision):
    # The checkpoint keeps the inner optimizer's moments and averages and the loss scale;
    # loaded under float32, Keras would drop them all (an unwrapped optimizer).
    options = dict(epochs=2, ema=0.8, schedule="constant", batch_size=64, seed=3, verbose=0)
    whole = kerascnn.train("lenet1", "digits", **options)
    with pytest.raises(Killed):
        kerascnn.train("lenet1", "digits", out=tmp_path, callbacks=[KillAfterFirstEpoch()],
                       **options)
    state = checkpoints.read_state(tmp_path / "checkpoints")
    saved = checkpoints.load_checkpoint(tmp_path / "checkpoints" / state["model"],
                                        "mixed_float16").optimizer
    assert isinstance(saved, keras.optimizers.LossScaleOptimizer)
    assert int(saved.inner_optimizer.iterations) > 0 and float(saved.dynamic_scale) > 1
    resumed = kerascnn.train("lenet1", "digits", out=tmp_path, **options)
    assert resumed.history == whole.history
    assert all(np.array_equal(a, b)
               for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()))
