"""Is the input pipeline ever the bottleneck? Pipeline throughput against training throughput.

On a subset of the offline MNIST copy, measured in the same run on the same machine:
1. the pipeline alone (shuffle, batch, flip/rotate/crop augmentation, then the model's
   normalisation) in images/s;
2. for LeNet-5, `mnist_fast`'s LeNet-5 (its recipe's model options, trained without
   augmentation, so also compared with the pipeline without it) and ResNet-18
   (kerascnn.build_model; a stand-in if the registry is missing):
   training throughput on pre-materialised tensors (the same augmented batches, already in
   memory as whole batches), and the time of the same training fed by the full pipeline.

Goals (issue 4): pipeline images/s >= 5x the model's training images/s, and training with the
pipeline within 5% of training on pre-materialised tensors. Wall-clock figures are the goals;
CPU-time figures (process CPU seconds, all threads) are printed beside them because they stay
stable when other processes load the machine, which wall-clock figures do not.

Usage: python benchmarks/bench_pipeline.py [--data-dir DIR] [--images 6016] [--rounds 3]
       [--precision float32|bfloat16]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerascnn.data import DATA_DIR_ENV, Preprocessing, load  # noqa: E402
from kerascnn.training.precision import POLICIES, with_policy  # noqa: E402

AUGMENT = "flip,rotate=5,crop=0.9"
BATCH_SIZE = 128
# name: (registry name, builder options, share of the images it trains on, augmented).
MODELS = {
    "lenet5": ("lenet5", {}, 1.0, True),
    "lenet5_fast": ("lenet5", {"activation": "relu", "pool_kind": "max", "norm": "none",
                               "filters": (24, 32), "kernel_size": (5, 3),
                               "hidden_units": (256,), "first_padding": "valid"}, 1.0, False),
    "resnet18": ("resnet18", {}, 0.25, True),
}


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared", "datasets")
    default_dir = os.environ.get(DATA_DIR_ENV) or shared
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_dir, help="folder holding mnist.npz")
    parser.add_argument("--images", type=int, default=47 * BATCH_SIZE, help="training images")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="the models' compute type (bfloat16: mixed, as train's 'auto' "
                        "picks on CPUs with bfloat16 units)")
    return parser.parse_args()


def subset(data_dir, images, seed=0):
    mnist = load("mnist", data_dir=data_dir, download=False)
    x, y = mnist.arrays("train")
    return load((x[:images], y[:images]), test_split=None, seed=seed)


def normaliser(data, target_shape=None):
    return Preprocessing(target_shape, mode="scale", value_range=data.value_range)


def pipeline_throughput(data, rounds, augment=AUGMENT):
    """(images/s, images per CPU-second) of the pipeline alone, normalisation included.

    Best epoch of `rounds`, after a warm-up epoch (tracing, first allocations).
    """
    normalise = normaliser(data)
    dataset = data.pipeline("train", BATCH_SIZE, augment=augment).map(
        lambda x, y: (normalise(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    walls, cpus = [], []
    for _ in range(rounds + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in dataset:
            pass
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return data.size("train") / min(walls[1:]), data.size("train") / min(cpus[1:])


def build(name, data, policy, options=None):
    """The model with its Preprocessing layer, as kerascnn trains it, computing in the Keras
    dtype `policy`; says what it built."""
    try:
        from kerascnn import build_model

        backbone = build_model(name, input_shape=data.input_shape, num_classes=data.num_classes,
                               **(options or {}))
        source = f"kerascnn.build_model({name!r}{', **options' if options else ''})"
    except ImportError:
        backbone = stand_in(name, data)
        source = f"stand-in {name} (kerascnn.build_model is not importable)"
    inputs = keras.Input(data.input_shape)
    outputs = backbone(normaliser(data, backbone.input_shape[1:])(inputs))
    model = keras.Model(inputs, outputs)
    model = with_policy(model, policy)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy"
    )
    return model, source


def stand_in(name, data):
    """LeNet-5 (LeCun et al., 1998) or a CIFAR-style ResNet-18, when the registry is missing."""
    inputs = keras.Input(data.input_shape)
    if name == "lenet5":
        x = keras.layers.ZeroPadding2D(2)(inputs)
        x = keras.layers.Conv2D(6, 5, activation="tanh")(x)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(16, 5, activation="tanh")(x)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(120, activation="tanh")(x)
        x = keras.layers.Dense(84, activation="tanh")(x)
    else:
        x = keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
        stages = [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]
        for filters, stride in stages:
            shortcut = x
            x = keras.layers.Conv2D(filters, 3, stride, padding="same", use_bias=False)(x)
            x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = keras.layers.Conv2D(filters, 1, stride, use_bias=False)(shortcut)
            x = keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))
        x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(data.num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def materialise(dataset):
    """One epoch of the pipeline's batches, stacked in memory and fed whole, prefetched."""
    batches = list(dataset.as_numpy_iterator())
    x = tf.constant(np.stack([b[0] for b in batches]))
    y = tf.constant(np.stack([b[1] for b in batches]))
    return tf.data.Dataset.from_tensor_slices((x, y)).prefetch(tf.data.AUTOTUNE)


class EpochTimes(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds of each epoch."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def epoch_times(model, dataset, epochs=2):
    """(wall, CPU) seconds of the best epoch after the first one (which traces the step).

    The best, not the mean: other processes only ever slow an epoch down.
    """
    timer = EpochTimes()
    model.fit(dataset, epochs=epochs + 1, verbose=0, callbacks=[timer])
    return min(timer.wall[1:]), min(timer.cpu[1:])


def compare(name, data, rounds, policy, options=None, augment=AUGMENT):
    """Training on pre-materialised tensors against training fed by the full pipeline."""
    model, source = build(name, data, policy, options)
    pipeline = data.pipeline("train", BATCH_SIZE, augment=augment)
    in_memory = materialise(data.pipeline("train", BATCH_SIZE, augment=augment))
    # Alternate the two feeds so that load from other processes hits both alike.
    fed, tensors = [], []
    for _ in range(rounds):
        tensors.append(epoch_times(model, in_memory))
        fed.append(epoch_times(model, pipeline))
    best = [min(times) for times in zip(*tensors)], [min(times) for times in zip(*fed)]
    return source, best[0], best[1]


def main():
    args = parse_args()
    if args.images % BATCH_SIZE:
        sys.exit(f"--images must be a multiple of the batch size {BATCH_SIZE}.")
    keras.utils.set_random_seed(0)
    data = subset(args.data_dir, args.images)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other processes share the cores)")
    print(f"MNIST subset: {data.size('train')} images, batch {BATCH_SIZE}, augment {AUGMENT!r}")
    pipeline_wall, pipeline_cpu = pipeline_throughput(data, 2 * args.rounds)
    print(
        f"pipeline alone (augmentation + normalisation): {pipeline_wall:,.0f} images/s, "
        f"{pipeline_cpu:,.0f} images per CPU-second"
    )
    # Where the pipeline's time goes: the same pipeline without its augmentation.
    plain_wall, plain_cpu = pipeline_throughput(data, 2 * args.rounds, augment=None)
    print(
        f"  without augmentation: {plain_wall:,.0f} images/s, {plain_cpu:,.0f} images per "
        f"CPU-second (augmentation: {1 / pipeline_cpu - 1 / plain_cpu:.1e} CPU-seconds per image)"
    )
    missed = []
    policy = POLICIES[args.precision]
    for name, (registry_name, options, share, augmented) in MODELS.items():
        images = int(args.images * share) // BATCH_SIZE * BATCH_SIZE
        source, tensors, fed = compare(registry_name, subset(args.data_dir, images),
                                       args.rounds, policy, options,
                                       AUGMENT if augmented else None)
        train_wall, train_cpu = images / tensors[0], images / tensors[1]
        feed_wall, feed_cpu = (pipeline_wall, pipeline_cpu) if augmented else (plain_wall,
                                                                               plain_cpu)
        headroom = feed_wall / train_wall
        slowdown = fed[0] / tensors[0]
        print(f"\n{name}: {source}, {images} images, {args.precision}, "
              f"{'augmented' if augmented else 'no augmentation'}")
        print(
            f"  training on pre-materialised tensors: {train_wall:,.0f} images/s, "
            f"{train_cpu:,.0f} images per CPU-second"
        )
        print(
            f"  pipeline / training throughput: {headroom:.1f}x wall-clock, "
            f"{feed_cpu / train_cpu:.1f}x CPU time (goal >= 5x)"
        )
        print(
            f"  epoch time, pipeline / pre-materialised: {slowdown:.3f} wall-clock, "
            f"{fed[1] / tensors[1]:.3f} CPU time (goal <= 1.05)"
        )
        if headroom < 5:
            missed.append(f"{name} throughput")
        if slowdown > 1.05:
            missed.append(f"{name} epoch time")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    verdict = f"missed: {', '.join(missed)}" if missed else "the pipeline is never the bottleneck"
    print("verdict:", verdict)


if __name__ == "__main__":
    main()
