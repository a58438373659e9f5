"""Time to 90/93/94% CIFAR-10 test accuracy on this machine's CPU cores, for a kerascnn recipe.

    PYTHONPATH=. KERASCNN_DATA_DIR=DIR python benchmarks/cifar_time_to_accuracy.py
        [--model airbench94] [--recipe airbench94] [--epochs N] [--seeds 0] [--precision auto]

DIR holds cifar10-jpg.tar.gz (or the folder cifar10/, or cifar10.npz). The data are loaded
once (kerascnn.data.load("cifar10")); each seed is one `kerascnn.train(model, data,
recipe=...)` call, with a callback that measures the accuracy on the 10,000 test images after
every epoch, its time kept off the clock. Printed per epoch: the training seconds so far (all
of `train` before the epoch ended: building, the whitening's statistics, tracing, steps) and the
test accuracy, without test-time augmentation and, once that reaches TTA_FROM, with the
recipe's (as airbench counts); then `train`'s own test accuracy (with the recipe's), the time
to each target (the first epoch whose better figure reaches it) and the training step's achieved FLOP/s
(kerascnn.inspect's multiply-adds × 2 × 3 for forward and backward, per image) beside a
large matmul's in the same process and precision.
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.evaluation.tta import with_tta
from kerascnn.training import precision as precisions

TARGETS = (0.90, 0.93, 0.94)
TTA_FROM = 0.85  # plain test accuracy from which an epoch is also tested with the recipe's TTA


class TestAccuracy(keras.callbacks.Callback):
    """After each epoch: the test accuracy (and with `tta` from TTA_FROM) and the seconds since
    `start`, less its own time."""

    def __init__(self, x, y, start, tta):
        super().__init__()
        self.x, self.y, self.start, self.tta, self.paused, self.rows = x, y, start, tta, 0.0, []

    def on_epoch_end(self, epoch, logs=None):
        clock = time.perf_counter()
        seconds = clock - self.start - self.paused
        accuracy = self._accuracy(self.model)
        line = f"  epoch {epoch + 1}: {seconds:7.1f} s, test accuracy {accuracy:.4f}"
        best = accuracy
        if self.tta and accuracy >= TTA_FROM:
            best = max(best, self._accuracy(with_tta(self.model, self.tta)))
            line += f", with tta={self.tta} {best:.4f}"
        self.rows.append((epoch + 1, seconds, best))
        print(line, flush=True)
        self.paused += time.perf_counter() - clock

    def _accuracy(self, model):
        predicted = np.argmax(model.predict(self.x, batch_size=1000, verbose=0), axis=-1)
        return float(np.mean(predicted == self.y))


def peak_flops(dtype, size=2048, repeats=10):
    """FLOP/s of a size×size matmul in `dtype`, the best of `repeats`."""
    a = tf.cast(tf.random.normal((size, size)), dtype)
    matmul = tf.function(lambda a: tf.matmul(a, a))
    matmul(a).numpy()
    best = min(_timed(lambda: matmul(a).numpy()) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="airbench94")
    parser.add_argument("--recipe", default="airbench94")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    data = kerascnn.data.load("cifar10", validation_split=None)
    x_test, y_test = data.arrays("test")
    chosen = precisions.choose_precision(args.precision)
    macs = kerascnn.inspect(kerascnn.build_model(args.model)).macs
    peak = peak_flops(tf.bfloat16 if chosen.name == "bfloat16" else tf.float32)
    finals = []
    for seed in (int(s) for s in args.seeds.split(",")):
        print(f"seed {seed}: {args.model}, recipe {args.recipe}, precision {chosen.name}")
        tta = kerascnn.training.get_recipe(args.recipe).tta
        callback = TestAccuracy(x_test, y_test, time.perf_counter(), tta)
        result = kerascnn.train(args.model, data, recipe=args.recipe, epochs=args.epochs,
                                seed=seed, precision=args.precision, callbacks=[callback],
                                verbose=2)
        rows = callback.rows
        finals.append(result.metrics["accuracy"])
        print(f"  train's test accuracy: {result.metrics['accuracy']:.4f}"
              + (f" (test-time augmentation: {result.recipe.tta})" if result.recipe.tta else ""))
        for target in TARGETS:
            hit = next((seconds for _, seconds, accuracy in rows if accuracy >= target), None)
            print(f"  time to {target:.0%}: " + (f"{hit:.0f} s" if hit else "not reached"))
        images = data.size("train") * len(rows)
        fit = result.timings["fit"] - callback.paused  # Keras' fit, less the testing
        achieved = 6 * macs * images / fit
        print(f"  fit: {fit:.0f} s for {len(rows)} epochs (less the per-epoch testing); "
              f"{achieved / 1e9:.0f} GFLOP/s achieved, {achieved / peak:.0%} of a "
              f"{chosen.name} matmul's {peak / 1e9:.0f} GFLOP/s")
    print(f"final test accuracy over {len(finals)} seed(s): {np.mean(finals):.4f} ± "
          f"{np.std(finals):.4f}")


if __name__ == "__main__":
    main()
