"""Training-step time of VGG-16, ResNet-50, MobileNet, DenseNet-121: kerascnn vs keras.applications.

Run from the repository root:

    PYTHONPATH=. python benchmarks/bench_models.py [--size 64] [--vgg-size 32] [--batch 16]
        [--rounds 5] [--steps 5] [--threads N] [--models vgg16,...] [--jit] [--profile]
        [--control] [--quick]

Each network is built twice in the same process, ours with `kerascnn.build_model(name,
input_shape=(S, S, 3), num_classes=10)` and the peer with `keras.applications.<Net>(weights=None,
input_shape=(S, S, 3), classes=10)`; both are compiled alike (SGD with momentum 0.9,
categorical cross-entropy, `jit_compile` off unless --jit) and trained with
`model.train_on_batch` on one fixed in-memory batch. After warm-up steps (the first traces the
step), the models of a group take turns step by step (ABAB...), `--steps` timed steps each in
each of `--rounds` rounds, the order rotating every round, so that load from other processes
hits them alike. The table gives each model's median step time and images/s, the ratio
keras / ours (>= 1: ours is at least as fast; the goal is >= 0.98) as the median over turns of
the keras step's time over ours taken just before or after it, which cancels load that changes
slower than a step, with a 90% bootstrap interval; the same ratio on process CPU time (steadier
than wall-clock time on a shared machine); and the parameter counts. --profile adds each
model's layers by class and the TensorFlow op types in which its traced training step differs
from the peer's: the same ops on the same shapes do the same work, however the Keras layers
that emit them differ. --control adds a second keras.applications model timed as if it were
ours (an A/A test): its ratio, which should be 1, shows how far noise alone moves a ratio.

Rows beside the default configurations make the comparison like for like where our defaults
differ from keras.applications in ways that change the work done: ResNet-50 with the stride on
the first 1×1 convolution (keras'; ours defaults to torchvision's v1.5, stride on the 3×3), and
VGG-16 without the head's dropout (keras' has none). Our ResNets have no convolution bias
before BatchNorm; keras' have one. BatchNorm momentum and epsilon differ and cost nothing.
"""

import argparse
import collections
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerascnn  # noqa: E402

NUM_CLASSES = 10
GOAL = 0.98
WARMUP_STEPS = 3

# network: (keras.applications builder, our variants as (label, build_model options)).
GROUPS = {
    "vgg16": (keras.applications.VGG16, (("vgg16", {}), ("vgg16 dropout=0", {"dropout": 0.0}))),
    "resnet50": (
        keras.applications.ResNet50,
        (("resnet50", {}), ("resnet50 stride_on=1x1", {"stride_on": "1x1"})),
    ),
    "mobilenet": (keras.applications.MobileNet, (("mobilenet", {}),)),
    "densenet121": (keras.applications.DenseNet121, (("densenet121", {}),)),
}

Timed = collections.namedtuple("Timed", "label model wall cpu")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64,
                        help="image side for ResNet-50, MobileNet and DenseNet-121 (default 64)")
    parser.add_argument("--vgg-size", type=int, default=32,
                        help="image side for VGG-16 (default 32, its smallest input)")
    parser.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed steps per model and round (default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow intra- and inter-op threads (default: TensorFlow's)")
    parser.add_argument("--models", default=",".join(GROUPS),
                        help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--jit", action="store_true", help="compile both with XLA (jit_compile)")
    parser.add_argument("--profile", action="store_true",
                        help="print each model's layers by class and the op types in which "
                        "its training step differs from the peer's")
    parser.add_argument("--control", action="store_true",
                        help="also time a second keras model as if it were ours: its ratio "
                        "should be 1 and shows what noise alone does")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 round of 2 steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")
    args = parser.parse_args(argv)
    for option in ("size", "vgg_size", "batch", "rounds", "steps", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive int; got {value}.")
    if min(args.size, args.vgg_size) < 32:
        parser.error(f"--size and --vgg-size must be at least 32 (keras.applications' minimum); "
                     f"got {args.size} and {args.vgg_size}.")
    args.models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(args.models) - set(GROUPS))
    if unknown or not args.models:
        parser.error(f"--models {','.join(unknown) or '(empty)'} unknown; choose from "
                     f"{','.join(GROUPS)}.")
    if args.quick:
        args.rounds, args.steps = 1, 2
    return args


def compiled(model, jit):
    """`model`, compiled as every model here is: SGD with momentum 0.9, cross-entropy."""
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="categorical_crossentropy", jit_compile=jit)
    return model


def batch(size, batch_size, seed):
    """One fixed batch of uniform images and one-hot labels, as tensors."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, size, size, 3), dtype=np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, batch_size)]
    return tf.constant(x), tf.constant(y)


def build_group(network, size, args):
    """The peer first, then our variants (and the control), compiled, as Timed with no times."""
    peer_builder, variants = GROUPS[network]
    shape = (size, size, 3)

    def peer():
        keras.utils.set_random_seed(args.seed)
        model = peer_builder(weights=None, input_shape=shape, classes=NUM_CLASSES)
        return compiled(model, args.jit)

    timed = [Timed(f"keras {peer_builder.__name__}", peer(), [], [])]
    for label, options in variants:
        keras.utils.set_random_seed(args.seed)
        model = kerascnn.build_model(network, input_shape=shape, num_classes=NUM_CLASSES,
                                     **options)
        timed.append(Timed(label, compiled(model, args.jit), [], []))
    if args.control:
        timed.append(Timed(f"control: keras {peer_builder.__name__} again", peer(), [], []))
    return timed


def time_step(entry, x, y):
    """Appends the wall-clock and process CPU seconds of one training step."""
    wall, cpu = time.perf_counter(), time.process_time()
    entry.model.train_on_batch(x, y)
    entry.wall.append(time.perf_counter() - wall)
    entry.cpu.append(time.process_time() - cpu)


def run_group(timed, x, y, args):
    """Warms every model up, then times them step by step in turns (ABAB...).

    The order rotates every round, so that no model always follows the same one.
    """
    for entry in timed:
        for _ in range(WARMUP_STEPS):
            entry.model.train_on_batch(x, y)
    for round_ in range(args.rounds):
        shift = round_ % len(timed)
        for _ in range(args.steps):
            for entry in timed[shift:] + timed[:shift]:
                time_step(entry, x, y)


def layer_counts(model):
    """The model's layers counted by class, most frequent first, as text."""
    counts = collections.Counter(type(layer).__name__ for layer in model.layers)
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())


def step_op_counts(model, x, y):
    """The TensorFlow ops of one traced training step (forward, gradients, update) by type."""
    step = tf.function(lambda x, y: model.train_step((x, y)))
    graph = step.get_concrete_function(x, y).graph.as_graph_def()
    counts = collections.Counter(node.op for node in graph.node)
    for function in graph.library.function:
        counts.update(node.op for node in function.node_def)
    return counts


def profile(timed, x, y):
    """Prints each model's layers, and the op types in which its step differs from the peer's."""
    peer_ops = step_op_counts(timed[0].model, x, y)
    print(f"  {timed[0].label}: {layer_counts(timed[0].model)}; "
          f"{sum(peer_ops.values())} ops in a training step")
    for entry in timed[1:]:
        ops = step_op_counts(entry.model, x, y)
        differing = {op: (ops[op], peer_ops[op]) for op in sorted(ops | peer_ops)
                     if ops[op] != peer_ops[op]}
        print(f"  {entry.label}: {layer_counts(entry.model)}; {sum(ops.values())} ops; op types "
              f"that differ (ours, keras): {differing or 'none'}")


def paired_ratios(peer, ours):
    """peer / ours for each turn: the two steps ran back to back, under the same load."""
    return np.asarray(peer) / np.asarray(ours)


def median_interval(values, seed, resamples=2000, level=0.9):
    """Bootstrap interval of the median of `values`."""
    samples = np.random.default_rng(seed).choice(values, (resamples, len(values)))
    return tuple(np.quantile(np.median(samples, axis=1), [(1 - level) / 2, (1 + level) / 2]))


Row = collections.namedtuple(
    "Row", "label size ours_wall peer_wall ratio interval cpu_ratio ours_params peer_params")


def summarise(size, peer, ours, seed):
    """A Row of median step times, paired ratios and parameter counts of `ours` against `peer`."""
    ratios = paired_ratios(peer.wall, ours.wall)
    return Row(
        ours.label, size, statistics.median(ours.wall), statistics.median(peer.wall),
        float(np.median(ratios)), median_interval(ratios, seed),
        float(np.median(paired_ratios(peer.cpu, ours.cpu))), ours.model.count_params(),
        peer.model.count_params(),
    )


def verdict(ratio, interval):
    """"met" when the ratio reaches GOAL; otherwise says whether its interval does."""
    if ratio >= GOAL:
        return "met"
    return f"MISSED{f' (interval reaches {GOAL})' if interval[1] >= GOAL else ''}"


def table(rows, batch_size):
    """The rows as a Markdown table."""
    lines = [
        "| model | input | ours ms/step | keras ms/step | ratio keras/ours | 90% interval "
        "| CPU-time ratio | ours img/s | keras img/s | ours params | keras params | goal >= "
        f"{GOAL} |",
        "|" + " --- |" * 2 + " ---: |" * 9 + " --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.size}×{r.size} | {1e3 * r.ours_wall:.1f} | {1e3 * r.peer_wall:.1f} "
            f"| {r.ratio:.3f} | {r.interval[0]:.3f}–{r.interval[1]:.3f} | {r.cpu_ratio:.3f} "
            f"| {batch_size / r.ours_wall:.1f} | {batch_size / r.peer_wall:.1f} "
            f"| {r.ours_params:,} | {r.peer_params:,} | {verdict(r.ratio, r.interval)} |"
        )
    return "\n".join(lines)


def load_average():
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv=None):
    args = parse_args(argv)
    # Every model traces its own training step once; TensorFlow's retracing warning counts
    # these first traces together and would report them as retracing.
    tf.get_logger().setLevel("ERROR")
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, "
          f"threads {args.threads or 'TensorFlow default'}, jit_compile={args.jit}")
    print(f"batch {args.batch}, {WARMUP_STEPS} warm-up steps, {args.rounds} rounds of "
          f"{args.steps} timed steps per model")
    print(f"load average at start (1, 5, 15 min): {load_average()}", flush=True)
    rows = []
    for network in args.models:
        size = args.vgg_size if network == "vgg16" else args.size
        x, y = batch(size, args.batch, args.seed)
        started = time.perf_counter()
        timed = build_group(network, size, args)
        run_group(timed, x, y, args)
        print(f"{network}: {time.perf_counter() - started:.0f} s", flush=True)
        if args.profile:
            profile(timed, x, y)
        rows.extend(summarise(size, timed[0], ours, args.seed) for ours in timed[1:])
        del timed
        keras.backend.clear_session()
    print()
    print(table(rows, args.batch))
    print()
    print(f"load average at end (1, 5, 15 min): {load_average()}")


if __name__ == "__main__":
    main()
