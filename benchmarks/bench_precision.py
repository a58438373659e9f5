"""bfloat16 against float32 on the same recipe, and a saved model's inference against plain Keras.

Run from the repository root (each part alone takes the times shown on 2 shared cores):

    PYTHONPATH=. python benchmarks/bench_precision.py steps       # ~5-20 min; --networks for a subset
    PYTHONPATH=. python benchmarks/bench_precision.py inference   # ~1 min
    PYTHONPATH=. python benchmarks/bench_precision.py accuracy [--epochs 2] [--recipe mnist_fast]
    PYTHONPATH=. python benchmarks/bench_precision.py all [--quick]
    # on a GPU: ResNet-50 in float32, mixed float16, and mixed float16 compiled by XLA
    PYTHONPATH=. python benchmarks/bench_precision.py steps --networks resnet50 --half float16 \
        --jit --batch 128

Three parts, each printing ratios measured in the same process:

`steps`: training images/s of one network in float32 and in mixed bfloat16 (`--half float16`:
mixed float16, Keras' loss scaling included, for GPUs; `--jit`: also the mixed copy compiled by
XLA), as
`kerascnn.training.precision.with_policy` makes it (float32 weights, bfloat16 layers, the
softmax in float32), both compiled alike (Adam, categorical cross-entropy), trained with
`train_on_batch` on one fixed batch of synthetic images, the two taking turns step by step
(ABAB..., the order rotating every round) so that load from other processes hits both alike.
Networks: LeNet-5 with BatchNorm (RECIPE's options, 28×28), LeNet-5 as the `mnist_fast` recipe
builds it today (no BatchNorm, twice as wide), the network of
Keras's "Simple MNIST convnet" example (28×28), ResNet-18 at 64×64, and throughput only for
the networks with depthwise convolutions (MobileNet, EfficientNet-B0 and Xception at 96×96,
ConvNeXt-Tiny at 64×64: why "auto" keeps them in float32) and for stacks of four plain or
four depthwise 3×3 convolutions on 48×48×64 inputs. The ratio is bfloat16 images/s / float32 images/s, the median of
the per-turn ratios, with the same ratio on process CPU time.

`accuracy`: the whole `kerascnn.train` call on MNIST (offline copy: --data-dir, else
KERASCNN_DATA_DIR) with RECIPE (`mnist_fast` with BatchNorm, see below) for LeNet-5 and for the
Keras example's network (a keras.Model, which `train` wraps with its Preprocessing layer),
once with precision="float32" and once with precision="bfloat16", the order alternating
between the networks: test accuracy (from the saved float32 model), training images/s (fit
time) and the wall time of the call. Goal: accuracy within 0.1 pp.

`inference`: a LeNet-5 trained one epoch on MNIST in bfloat16 by `kerascnn.train`, saved
(model.keras, float32); on the 10,000 test images, in turns: `kerascnn.evaluate(model, (x,
y))` (predict and every metric), the saved model's `predict` on raw uint8 images (its
Preprocessing layer normalises), and plain Keras: the same network without the Preprocessing
layer, `predict` on images standardised in NumPy (that NumPy time counted; a row without it
shows where the time goes). Also the saved model made to compute in bfloat16 again. Ratios:
plain Keras time / this path's (goal >= 1.0).

Timings depend on the load: the load average is printed with them.
"""

import argparse
import collections
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.training import precision
from mnist_time_to_accuracy import CONFIGURATIONS, keras_example_model  # this folder is on sys.path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = (("float32", "float32"), ("bfloat16", "mixed_bfloat16"))
# The recipe of the measurements below: mnist_fast as issue 17 first measured it (LeNet-5 with
# BatchNorm, 1.5 times as wide, two epochs at 8.9e-3), where bfloat16 gains least.
RECIPE = CONFIGURATIONS["fast_batchnorm"][1]
INFERENCE_BATCH = 256
WARMUP_STEPS = 3


def layer_stack(shape, layer):
    """Four 3×3 `layer`s ("conv": Conv2D 64, "depthwise": DepthwiseConv2D) with ReLU, pooled,
    then a softmax: one kind of convolution alone, to see what bfloat16 does to it."""
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(4):
        x = (keras.layers.Conv2D(64, 3, padding="same") if layer == "conv"
             else keras.layers.DepthwiseConv2D(3, padding="same"))(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


# name: (input shape, batch size, builder of the float32 network).
NETWORKS = {
    "lenet5": ((28, 28, 1), 256, lambda shape: kerascnn.build_model(
        "lenet5", input_shape=shape, num_classes=10,
        **dict(RECIPE.model_options))),
    # The network of today's mnist_fast recipe (no BatchNorm, twice as wide).
    "lenet5_fast": ((28, 28, 1), 256, lambda shape: kerascnn.build_model(
        "lenet5", input_shape=shape, num_classes=10,
        **dict(kerascnn.training.get_recipe("mnist_fast").model_options))),
    "keras_example": ((28, 28, 1), 256, lambda shape: keras_example_model(shape, 10)),
    # The network of the cifar_fast recipe (issue 23), at half its batch.
    "airbench94": ((32, 32, 3), 512, lambda shape: kerascnn.build_model(
        "airbench94", input_shape=shape, num_classes=10,
        **dict(kerascnn.training.get_recipe("cifar_fast").model_options))),
    "resnet18": ((64, 64, 3), 32, lambda shape: kerascnn.build_model(
        "resnet18", input_shape=shape, num_classes=10)),
    # For GPUs (issue 17): at 224×224 a CPU takes seconds a step.
    "resnet50": ((224, 224, 3), 64, lambda shape: kerascnn.build_model(
        "resnet50", input_shape=shape, num_classes=10)),
    "mobilenet": ((96, 96, 3), 32, lambda shape: kerascnn.build_model(
        "mobilenet", input_shape=shape, num_classes=10)),
    # Depthwise convolutions (why "auto" keeps these three in float32):
    "efficientnet_b0": ((96, 96, 3), 32, lambda shape: kerascnn.build_model(
        "efficientnet_b0", input_shape=shape, num_classes=10)),
    "convnext_tiny": ((64, 64, 3), 32, lambda shape: kerascnn.build_model(
        "convnext_tiny", input_shape=shape, num_classes=10)),
    "xception": ((96, 96, 3), 32, lambda shape: kerascnn.build_model(
        "xception", input_shape=shape, num_classes=10)),
    "conv_stack": ((48, 48, 64), 64, lambda shape: layer_stack(shape, "conv")),
    "depthwise_stack": ((48, 48, 64), 64, lambda shape: layer_stack(shape, "depthwise")),
}

Timed = collections.namedtuple("Timed", "label model wall cpu")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("steps", "accuracy", "inference", "all"))
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"steps: comma-separated subset of {','.join(NETWORKS)}")
    parser.add_argument("--rounds", type=int, default=5, help="steps/inference: alternating "
                        "rounds (default 5)")
    parser.add_argument("--steps", type=int, default=4,
                        help="steps: timed steps per network, precision and round (default 4)")
    parser.add_argument("--half", choices=("bfloat16", "float16"), default="bfloat16",
                        help="steps: the 16-bit type of the mixed copy (float16: GPUs)")
    parser.add_argument("--jit", action="store_true",
                        help="steps: also time the mixed copy compiled by XLA")
    parser.add_argument("--batch", type=int, default=None,
                        help="steps: batch size for every network (default each one's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="accuracy: epochs of each run (default the recipe's)")
    parser.add_argument("--recipe", default=None, choices=sorted(kerascnn.training.RECIPES),
                        help="accuracy: a named recipe instead of RECIPE (e.g. mnist_fast)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 round of 2 steps, 1 epoch")
    parser.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR")
                        or os.path.join(REPO, "..", "shared", "datasets"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for option in ("rounds", "steps", "epochs", "batch"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive int; got {value}.")
    args.networks = [n for n in args.networks.split(",") if n]
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown or not args.networks:
        parser.error(f"--networks {','.join(unknown) or '(empty)'} unknown; choose from "
                     f"{','.join(NETWORKS)}.")
    if args.part in ("accuracy", "inference", "all") and not os.path.isfile(
            os.path.join(args.data_dir, "mnist.npz")):
        parser.error(f"no mnist.npz in --data-dir {args.data_dir!r}; pass the folder holding the "
                     "offline copy or set KERASCNN_DATA_DIR.")
    if args.quick:
        args.rounds, args.steps, args.epochs = 1, 2, 1
    return args


def load_average():
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def median_ratio(numerators, denominators):
    """The median of the per-turn ratios: both sides ran back to back, under the same load."""
    return float(np.median(np.asarray(numerators) / np.asarray(denominators)))


def timed_turns(entries, rounds, repeats, call):
    """Runs `call(entry)` for every entry in turns, the order rotating every round, and
    appends the wall-clock and process CPU seconds of each call to the entry."""
    for round_ in range(rounds):
        shift = round_ % len(entries)
        for _ in range(repeats):
            for entry in entries[shift:] + entries[:shift]:
                wall, cpu = time.perf_counter(), time.process_time()
                call(entry)
                entry.wall.append(time.perf_counter() - wall)
                entry.cpu.append(time.process_time() - cpu)


def steps(args):
    """Training images/s, float32 against the mixed `--half` type (and XLA), per network
    (Markdown table)."""
    half = precision.POLICIES[args.half]
    short = {"bfloat16": "bf16", "float16": "fp16"}[args.half]
    variants = [("float32", "float32", False), (args.half, half, False)]
    if args.jit:
        variants.append((f"{args.half} + XLA", half, True))
    columns = ([f"{label} img/s" for label, _, _ in variants]
               + [f"ratio {short}/fp32", "CPU-time ratio"] + [f"ratio {short}+XLA/fp32"] * args.jit)
    lines = ["| network | input | batch | " + " | ".join(columns) + " |",
             "| --- | --- | ---: |" + " ---: |" * len(columns)]
    for name in args.networks:
        shape, batch, build = NETWORKS[name]
        batch = args.batch or batch
        rng = np.random.default_rng(args.seed)
        x = tf.constant(rng.random((batch, *shape), dtype=np.float32))
        y = tf.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)])
        keras.utils.set_random_seed(args.seed)
        network = build(shape)
        entries = []
        for label, policy, jit in variants:
            model = precision.with_policy(network, policy)
            model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
            for _ in range(WARMUP_STEPS):
                model.train_on_batch(x, y)
            entries.append(Timed(label, model, [], []))
        started = time.perf_counter()
        timed_turns(entries, args.rounds, args.steps,
                    lambda e, x=x, y=y: e.model.train_on_batch(x, y))
        single, mixed, *compiled = entries
        speeds = " | ".join(f"{batch / statistics.median(e.wall):,.0f}" for e in entries)
        cells = [f"{median_ratio(single.wall, mixed.wall):.2f}",
                 f"{median_ratio(single.cpu, mixed.cpu):.2f}"]
        cells += [f"{median_ratio(single.wall, e.wall):.2f}" for e in compiled]
        side = "×".join(map(str, shape[:-1]))
        lines.append(f"| {name} | {side} | {batch} | {speeds} | {' | '.join(cells)} |")
        print(f"{name}: {time.perf_counter() - started:.0f} s timed", flush=True)
        keras.backend.clear_session()
    return "\n".join(lines)


def accuracy(args, out):
    """Test accuracy and training speed of whole `kerascnn.train` calls (Markdown table)."""
    models = {"lenet5": "lenet5", "keras_example": None}
    lines = [("| network | precision | test accuracy | training img/s | fit s | call s "
              "| ratio img/s bf16/fp32 | accuracy bf16 - fp32 (pp) |"),
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, (name, model) in enumerate(models.items()):
        results = {}
        order = POLICIES if number % 2 == 0 else POLICIES[::-1]
        for label, _ in order:
            keras.utils.set_random_seed(args.seed)
            network = model or keras_example_model((28, 28, 1), 10)
            folder = os.path.join(out, f"{name}-{label}")
            started = time.perf_counter()
            result = kerascnn.train(network, "mnist", recipe=args.recipe or RECIPE,
                                    epochs=args.epochs,
                                    precision=label, out=folder,
                                    data_dir=args.data_dir, seed=args.seed, verbose=0)
            call = time.perf_counter() - started
            images = int(0.9 * 60000) * result.recipe.epochs  # the recipe holds out 10%
            results[label] = (result.metrics["accuracy"], images / result.seconds,
                              result.seconds, call)
            print(f"{name} {label}: {results[label][0]:.4f}, {call:.0f} s", flush=True)
        (acc32, speed32, *_), (acc16, speed16, *_) = results["float32"], results["bfloat16"]
        for label, _ in POLICIES:
            acc, speed, fit, call = results[label]
            extra = (f"{speed16 / speed32:.2f} | {100 * (acc16 - acc32):+.2f}"
                     if label == "bfloat16" else " | ")
            lines.append(f"| {name} | {label} | {100 * acc:.2f}% | {speed:,.0f} | {fit:.1f} "
                         f"| {call:.1f} | {extra} |")
    return "\n".join(lines)


def inference(args, out):
    """The saved model's predict and `kerascnn.evaluate` against plain Keras (Markdown table)."""
    folder = os.path.join(out, "inference")
    kerascnn.train("lenet5", "mnist", recipe=RECIPE, epochs=1, precision="bfloat16", out=folder, data_dir=args.data_dir, seed=args.seed,
                   verbose=0)
    saved = keras.models.load_model(os.path.join(folder, "model.keras"))
    with np.load(os.path.join(args.data_dir, "mnist.npz")) as archive:
        x, y = archive["x_test"][..., None], archive["y_test"]
    preprocessing = saved.get_layer("preprocessing")
    backbone = saved.get_layer("lenet5")
    assert tuple(backbone.inputs[0].shape[1:]) == x.shape[1:], "the plain side would need resizing"
    mean, std = (keras.ops.convert_to_numpy(v) for v in (preprocessing.mean, preprocessing.std))
    plain = keras.models.clone_model(backbone)  # the same network, plain Keras, no Preprocessing
    plain.set_weights(backbone.get_weights())

    def plain_predict():
        return plain.predict((x.astype(np.float32) - mean) / std, batch_size=INFERENCE_BATCH,
                             verbose=0)

    mixed = precision.with_policy(saved, "mixed_bfloat16")
    standardised = (x.astype(np.float32) - mean) / std
    calls = {
        "plain Keras predict (NumPy standardisation)": plain_predict,
        "plain Keras predict alone (standardised beforehand, not timed)": lambda: plain.predict(
            standardised, batch_size=INFERENCE_BATCH, verbose=0),
        "saved model.keras predict (uint8 in)": lambda: saved.predict(
            x, batch_size=INFERENCE_BATCH, verbose=0),
        "kerascnn.evaluate (predict + metrics)": lambda: kerascnn.evaluate(
            saved, (x, y), batch_size=INFERENCE_BATCH),
        "saved model in bfloat16 predict": lambda: mixed.predict(
            x, batch_size=INFERENCE_BATCH, verbose=0),
    }
    reference = plain_predict().argmax(1)
    agree = (saved.predict(x, batch_size=INFERENCE_BATCH, verbose=0).argmax(1) == reference)
    entries = [Timed(label, call, [], []) for label, call in calls.items()]
    for entry in entries:
        entry.model()  # warm-up: traces the predict function
    timed_turns(entries, args.rounds, 1, lambda e: e.model())
    lines = ["| path | images/s | ratio plain Keras / this | goal >= 1.0 |",
             "| --- | ---: | ---: | --- |"]
    for entry in entries:
        ratio = median_ratio(entries[0].wall, entry.wall)
        goal = "" if entry.label.startswith("plain") else ("met" if ratio >= 1.0 else "MISSED")
        lines.append(f"| {entry.label} | {len(x) / statistics.median(entry.wall):,.0f} "
                     f"| {ratio:.2f} | {goal} |")
    lines.append(f"\nsaved model and plain Keras agree on {agree.mean():.2%} of the classes; "
                 f"test accuracy {np.mean(reference == y):.4f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    found, why = precision.cpu_bfloat16_support()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores; "
          f"bfloat16 units: {found} ({why})")
    print(f"load average at start (1, 5, 15 min): {load_average()}", flush=True)
    parts = ("steps", "inference", "accuracy") if args.part == "all" else (args.part,)
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as out:
        for part in parts:
            started = time.perf_counter()
            if part == "steps":
                text = steps(args)
            elif part == "inference":
                text = inference(args, out)
            else:
                text = accuracy(args, out)
            print(f"\n## {part} ({time.perf_counter() - started:.0f} s, load average "
                  f"{load_average()})\n\n{text}\n", flush=True)


if __name__ == "__main__":
    main()
