"""CIFAR-10 time to accuracy: kerascnn's cifar_fast against keras-io's ConvMixer example.

    PYTHONPATH=. KERASCNN_DATA_DIR=DIR python benchmarks/cifar_vs_convmixer.py
        [--example-epochs 10] [--example-precision float32] [--kerascnn-epochs N]
        [--subset N] [--seed 0]

DIR holds cifar10.npz (or the other copies `kerascnn.data.load("cifar10")` reads); a copy
sorted by class is first put in one fixed random order, as keras.datasets' is. The peer is
the example Keras users copy for CIFAR-10: "Image classification with ConvMixer" by Sayak Paul
(https://keras.io/examples/vision/convmixer/, keras-team/keras-io,
examples/vision/convmixer.py), in its Keras 3 form. `example_model`, `example_datasets` and
`run_example` follow it unchanged except for the data source (kerascnn.data's arrays, not
keras.datasets): ConvMixer-256/8, AdamW (1e-3, weight decay 1e-4), batch 128, 10 epochs, the
first 10% of the training images for validation, random crops and flips per batch, the best
val_accuracy weights restored before testing.

One process, the same arrays, the example first (as written: no op determinism, float32
unless --example-precision mixed_bfloat16 sets Keras' global policy), then
`kerascnn.train("airbench94", data, recipe="cifar_fast")` with its defaults (op determinism,
the precision "auto" picks: bfloat16 on a CPU with bfloat16 units). After every epoch each
side's test accuracy is measured with its time kept off the clock (`TestAccuracy` of
cifar_time_to_accuracy.py): for the example, that of the weights it would report then (its
best-val checkpoint so far); for kerascnn, that of the weights, and from 85% (TTA_FROM) the
better of that and the recipe's test-time augmentation. Clocks run from building the model
(the example) or calling `train` (kerascnn) to the epoch's end. Printed: each epoch of both,
the example's final accuracy (its last epoch's) and time, kerascnn's time to that accuracy
(its first epoch reaching it), the ratio example / kerascnn (goal >= 8) and the command to
reproduce it.

Duration: the example costs about 0.9 GFLOP per training image (45,000 per epoch); on a
2-core AMD EPYC its float32 step took 3.42 s for 128 images (20 minutes an epoch, about 3.4
hours for its 10), then kerascnn's 14 epochs at about 2.5 minutes each: about 4 hours in all.
`--subset 300 --example-epochs 1 --kerascnn-epochs 1` is a smoke run (3 minutes, mostly tracing).
"""

import argparse
import os
import shlex
import sys
import tempfile
import time

import keras
from keras import layers
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.training import precision as precisions
from cifar_time_to_accuracy import TestAccuracy

# The example's hyperparameters.
LEARNING_RATE = 0.001
WEIGHT_DECAY = 0.0001
BATCH_SIZE = 128
NUM_EPOCHS = 10
VAL_SPLIT = 0.1
IMAGE_SIZE = 32
KERASCNN = ("airbench94", "cifar_fast")  # model, recipe


class BestCheckpointAccuracy(TestAccuracy):
    """TestAccuracy of the weights in the example's best-val_accuracy checkpoint so far."""

    def __init__(self, x, y, start, path):
        super().__init__(x, y, start, tta=None)
        self.path = path

    def _accuracy(self, model):
        trained = model.get_weights()
        model.load_weights(self.path)
        accuracy = super()._accuracy(model)
        model.set_weights(trained)
        return accuracy


def _gelu_batchnorm(x):
    return layers.BatchNormalization()(layers.Activation("gelu")(x))


def example_model(filters=256, depth=8, kernel_size=5, patch_size=2, num_classes=10):
    """The example's ConvMixer-256/8: patch stem, `depth` depthwise/pointwise mixer blocks."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = layers.Rescaling(scale=1.0 / 255)(inputs)
    x = _gelu_batchnorm(layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x))
    for _ in range(depth):
        mixed = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
        x = layers.Add()([_gelu_batchnorm(mixed), x])
        x = _gelu_batchnorm(layers.Conv2D(filters, kernel_size=1)(x))
    x = layers.GlobalAvgPool2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def example_datasets(x_train, y_train):
    """The example's (train, validation) tf.data pipelines: the first VAL_SPLIT of the images
    validate; the rest are shuffled, batched and augmented batch by batch."""
    augmentation = keras.Sequential(
        [layers.RandomCrop(IMAGE_SIZE, IMAGE_SIZE), layers.RandomFlip("horizontal")],
        name="data_augmentation")
    held_out = int(len(x_train) * VAL_SPLIT)

    def dataset(images, labels, train):
        data = tf.data.Dataset.from_tensor_slices((images, labels))
        if train:
            data = data.shuffle(BATCH_SIZE * 10)
        data = data.batch(BATCH_SIZE)
        if train:
            data = data.map(lambda x, y: (augmentation(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE)

    return (dataset(x_train[held_out:], y_train[held_out:], True),
            dataset(x_train[:held_out], y_train[:held_out], False))


def run_example(data, epochs, seed, policy):
    """Trains the example under Keras' `policy`; returns its TestAccuracy rows."""
    (x_train, y_train), (x_test, y_test) = data.arrays("train"), data.arrays("test")
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as folder, precisions.policy_scope(policy):
        path = os.path.join(folder, "checkpoint.keras")
        clock = BestCheckpointAccuracy(x_test, y_test, time.perf_counter(), path)
        model = example_model()
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE,
                                                       weight_decay=WEIGHT_DECAY),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        checkpoint = keras.callbacks.ModelCheckpoint(
            path, monitor="val_accuracy", save_best_only=True, save_weights_only=False)
        train, validation = example_datasets(x_train, y_train)
        model.fit(train, validation_data=validation, epochs=epochs,
                  callbacks=[checkpoint, clock], verbose=2)
        model.load_weights(path)
        _, accuracy = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE, verbose=0)
    print(f"  the example's own test accuracy (model.evaluate): {accuracy:.4f}")
    return clock.rows


def run_kerascnn(data, epochs, seed):
    """Trains kerascnn's cifar_fast recipe; returns (its TestAccuracy rows, its precision)."""
    model, recipe = KERASCNN
    chosen = precisions.for_model("auto", precisions.choose_precision("auto"),
                                  kerascnn.build_model(model))
    clock = TestAccuracy(*data.arrays("test"), time.perf_counter(),
                         kerascnn.training.get_recipe(recipe).tta)
    kerascnn.train(model, data, recipe=recipe, epochs=epochs, seed=seed, callbacks=[clock],
                   verbose=2)
    return clock.rows, f"{chosen.name} ({chosen.reason})"


def load(subset):
    """CIFAR-10's arrays as kerascnn.data reads them, each split in a mixed order (`_mixed`);
    with `subset`, its first N training and N/5 test images."""
    data = kerascnn.data.load("cifar10", validation_split=None)
    splits = [_mixed(*data.arrays(split)) for split in ("train", "test")]
    if subset:
        splits = [(x[:n], y[:n]) for (x, y), n in zip(splits, (subset, subset // 5))]
    return kerascnn.data.load(tuple(splits), class_names=data.class_names)


def _mixed(x, y):
    """(x, y) in one fixed random order if sorted by class (a copy made from the JPEG folder
    is), else as they are: the example's split (the first 10% validate) and its 1,280-image
    shuffle buffer assume keras.datasets' mixed order."""
    if np.any(np.diff(y) < 0):
        return x, y
    order = np.random.default_rng(0).permutation(len(y))
    return x[order], y[order]


def summary(example, ours, example_precision, our_precision):
    """The comparison's closing lines."""
    _, total, final = example[-1]
    hit = next((row for row in ours if row[2] >= final), None)
    lines = [f"example (precision {example_precision}): final test accuracy {final:.4f} "
             f"after {len(example)} epochs, {total:.1f} s",
             f"kerascnn (precision {our_precision}): " + (
                 f"{final:.4f} reached in epoch {hit[0]}, {hit[1]:.1f} s" if hit else
                 f"{final:.4f} not reached (best {max(r[2] for r in ours):.4f} in "
                 f"{ours[-1][1]:.1f} s)")]
    lines.append(f"ratio example / kerascnn: {total / hit[1]:.2f} (goal >= 8)" if hit
                 else f"ratio example / kerascnn: < {total / ours[-1][1]:.2f} (not reached)")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example-epochs", type=int, default=NUM_EPOCHS)
    parser.add_argument("--example-precision", choices=("float32", "mixed_bfloat16"),
                        default="float32", help="Keras' global dtype policy for the example")
    parser.add_argument("--kerascnn-epochs", type=int, help="default: the recipe's")
    parser.add_argument("--subset", type=int,
                        help="only N training and N/5 test images (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load(args.subset)
    print(f"data: {data.size('train')} training, {data.size('test')} test images; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"example: ConvMixer-256/8, {args.example_epochs} epochs, {args.example_precision}")
    example = run_example(data, args.example_epochs, args.seed, args.example_precision)
    print(f"kerascnn: {KERASCNN[0]}, recipe {KERASCNN[1]}")
    ours, our_precision = run_kerascnn(data, args.kerascnn_epochs, args.seed)
    for line in summary(example, ours, args.example_precision, our_precision):
        print(line)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print("reproduce: PYTHONPATH=. KERASCNN_DATA_DIR="
          f"{shlex.quote(os.environ.get(kerascnn.data.DATA_DIR_ENV, ''))} "
          f"python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
