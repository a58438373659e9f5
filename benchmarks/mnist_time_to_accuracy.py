"""Time to accuracy on MNIST on a few CPU threads: two kerascnn configurations and Keras's example.

    PYTHONPATH=. python benchmarks/mnist_time_to_accuracy.py [--quick] [--threads 2] [--seed 0]

Three runs in one process, on the same threads, seeded, with TensorFlow op determinism for all:
(a) kerascnn "fast", for 99.0%: `kerascnn.train("lenet5", "mnist", recipe="mnist_fast",
    model_options=MNIST_FAST_OPTIONS)`, the public API;
(b) kerascnn "best", for 99.5%: `kerascnn.train("lenet5", "mnist", recipe="mnist_best",
    model_options=MNIST_BEST_OPTIONS)` (a wider LeNet-5 with light rotations and shifts);
(c) Keras's "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet, fchollet): two
    3×3 convolutions (32, 64, ReLU) each with a 2×2 max-pool, dropout 0.5, a softmax layer;
    inputs scaled to [0, 1], Adam, batch 128, 15 epochs, validation_split 0.1, plain Keras.
All hold out 10% of the training images for validation, evaluated every epoch as part of
training. After every epoch a callback measures the accuracy on the 10,000 test images; its
time is kept off the training clock. The table gives test accuracy against training seconds,
then the time to 99.0% and 99.5% for each run and, for each kerascnn configuration, the ratio
Keras example / kerascnn.

Timings depend on the machine's load; the load average is printed with them.
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.training.recipes import MNIST_BEST_OPTIONS, MNIST_FAST_OPTIONS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = (0.990, 0.995)
EVALUATION_BATCH = 1000

# name: (model, model options, named recipe).
CONFIGURATIONS = {
    # LeNet-5 with ReLU, max-pooling and BatchNorm, trained by the "mnist_fast" recipe.
    "fast": ("lenet5", MNIST_FAST_OPTIONS, "mnist_fast"),
    # The same LeNet-5 three times as wide, dropout before the classifier; one-cycle Adam,
    # label smoothing, small random rotations and shifts ("mnist_best").
    "best": ("lenet5", MNIST_BEST_OPTIONS, "mnist_best"),
}
EXAMPLE = "keras_example"
EXAMPLE_EPOCHS = 15


class TestAccuracyClock(keras.callbacks.Callback):
    """Records (epoch, training seconds, test accuracy) after every epoch.

    The clock runs from the start of `fit` and stops while the test set is evaluated.

    Args:
        x_test: test inputs as the model takes them.
        y_test: integer class labels.
    """

    def __init__(self, x_test, y_test):
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.points = []

    def on_train_begin(self, logs=None):
        self.points, self.seconds = [], 0.0
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.started
        predictions = self.model.predict(self.x_test, batch_size=EVALUATION_BATCH, verbose=0)
        accuracy = float(np.mean(predictions.argmax(axis=1) == self.y_test))
        self.points.append((epoch + 1, self.seconds, accuracy))
        print(f"  epoch {epoch + 1}: {self.seconds:.1f} s of training, test accuracy "
              f"{accuracy:.4f}", flush=True)
        self.started = time.perf_counter()


def run_kerascnn(configuration, data_dir, x_test, y_test, epochs, seed):
    """Trains one of CONFIGURATIONS with `kerascnn.train`; returns the clock's points."""
    model, options, recipe = CONFIGURATIONS[configuration]
    clock = TestAccuracyClock(x_test, y_test)
    kerascnn.train(model, "mnist", recipe=recipe, epochs=epochs, seed=seed, model_options=options,
                   data_dir=data_dir, verbose=0, callbacks=[clock])
    return clock.points


def keras_example_model(input_shape=(28, 28, 1), num_classes=10):
    """The model of Keras's "Simple MNIST convnet" example, as published."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def run_keras_example(mnist, epochs, seed):
    """Trains the Keras example as published; returns the clock's points."""
    scale = lambda x: np.expand_dims(x.astype("float32") / 255, -1)
    x_train, y_train = scale(mnist["x_train"]), keras.utils.to_categorical(mnist["y_train"], 10)
    clock = TestAccuracyClock(scale(mnist["x_test"]), mnist["y_test"])
    keras.utils.set_random_seed(seed)
    model = keras_example_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1,
              callbacks=[clock], verbose=0)
    return clock.points


def time_to(points, target):
    """Training seconds and epoch of the first point at or above `target`, or None."""
    return next(((seconds, epoch) for epoch, seconds, accuracy in points if accuracy >= target),
                None)


def ratio(runs, name, target):
    """The Keras example's time to `target` over `name`'s, as text ("> x" or "< x" when one
    run misses the target: it would have needed more than its whole training time)."""
    mine, theirs = time_to(runs[name], target), time_to(runs[EXAMPLE], target)
    text = f"{EXAMPLE} / {name} "
    if mine and theirs:
        return text + f"= {theirs[0] / mine[0]:.2f}"
    if mine:
        return text + f"> {runs[EXAMPLE][-1][1] / mine[0]:.2f}"
    if theirs:
        return text + f"< {theirs[0] / runs[name][-1][1]:.2f}"
    return text + "undefined"


def report(runs, loads):
    """The accuracy-vs-seconds table and the time-to-accuracy summary, as text."""
    names = list(runs)
    epochs = max(len(points) for points in runs.values())
    header = "| epoch | " + " | ".join(f"{n} s | {n} test acc" for n in names) + " |"
    lines = [header, "|" + " ---: |" * (1 + 2 * len(names))]
    for i in range(epochs):
        cells = [f"{runs[n][i][1]:.1f} | {runs[n][i][2]:.4f}" if i < len(runs[n]) else " | "
                 for n in names]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    lines.append("")
    for target in TARGETS:
        parts = []
        for n in names:
            reached = time_to(runs[n], target)
            best, total = max(a for _, _, a in runs[n]), runs[n][-1][1]
            parts.append(f"{n} {reached[0]:.1f} s (epoch {reached[1]})" if reached else
                         f"{n} not reached (best {best:.4f} in {total:.1f} s)")
        ratios = [ratio(runs, n, target) for n in names if n != EXAMPLE]
        lines.append(f"time to {target:.1%}: " + "; ".join(parts) + "; ratio " + ", ".join(ratios))
    lines.append("load average (1, 5, 15 min): " + "; ".join(
        f"{when} {a:.2f}, {b:.2f}, {c:.2f}" for when, (a, b, c) in loads))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs each: a smoke run")
    parser.add_argument("--threads", type=int, default=2,
                        help="TensorFlow intra- and inter-op threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR")
                        or os.path.join(REPO, "..", "shared", "datasets"))
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer; got {args.threads}.")
    path = os.path.join(args.data_dir, "mnist.npz")
    if not os.path.isfile(path):
        parser.error(f"no mnist.npz in --data-dir {args.data_dir!r}; pass the folder holding the "
                     "offline copy or set KERASCNN_DATA_DIR.")
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.experimental.enable_op_determinism()  # kerascnn.train's default, for every run
    with np.load(path) as archive:
        mnist = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}

    print(f"threads: {args.threads}; cores: {os.cpu_count()}")
    loads = [("start", os.getloadavg())]
    runs = {}
    for name, (model, options, recipe) in CONFIGURATIONS.items():
        recipe = kerascnn.training.get_recipe(recipe)
        epochs = 2 if args.quick else recipe.epochs
        print(f"kerascnn {name}: {model} {options}, {recipe.replace(epochs=epochs)}")
        # kerascnn's models take the digits as kerascnn.data stores them: uint8 with a channel axis.
        runs[f"kerascnn_{name}"] = run_kerascnn(name, args.data_dir, mnist["x_test"][..., None],
                                                mnist["y_test"], epochs, args.seed)
        loads.append((f"after {name}", os.getloadavg()))
    print("Keras example: simple MNIST convnet")
    runs[EXAMPLE] = run_keras_example(mnist, 2 if args.quick else EXAMPLE_EPOCHS, args.seed)
    loads.append(("end", os.getloadavg()))
    print(report(runs, loads))


if __name__ == "__main__":
    main()
