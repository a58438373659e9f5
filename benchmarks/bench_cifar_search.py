"""Hyperband against random search on CIFAR-10: does Hyperband reach random search's best score
in less than a third of random search's epochs (the Hyperband paper's claim)? If not, what
costs the time?

    PYTHONPATH=. KERASCNN_DATA_DIR=DIR python benchmarks/bench_cifar_search.py
        [--train-size 5000] [--folds 1] [--validation-split 0.2] [--max-epochs 9]
        [--batch-size 256] [--seed 0] [--out runs/bench_cifar_search]

DIR holds cifar10.npz (or cifar10/, or cifar10-jpg.tar.gz). A stratified subset of
--train-size images of CIFAR-10's training split is searched, each trial scored on a held-out
part of it (--folds 1: a stratified --validation-split; k >= 2: k-fold); the test split is
never read (no refit). The network is airbench94 with its recipe (batch size --batch-size),
searching the learning rate, label smoothing and weight decay around the recipe's (SPACE).
First Hyperband (max --max-epochs epochs a trial, factor 3, one iteration), then random search
with the same seed and the same budget of trained epochs: budget // (max epochs × folds)
trials of --max-epochs epochs. Printed: each search's trials, epochs, seconds and best score;
the epochs and seconds each needed to reach random search's best (cumulative over trials in
the order they ran); Hyperband's epochs to it over random search's total, against 1/3; and
where the time went (each fold's run.json). Both searches stay in --out/hyperband and
--out/random (results.json, cv_results.csv, scores.png); a rerun needs a fresh --out.

With the defaults (4,000 training images, 9 epochs): Hyperband trains 75 epochs in 23 trials,
random search 72 in 8; at about 8 s an epoch on two CPU cores plus each training's building
and tracing, about 25 minutes in all.
"""

import argparse
import json
import math
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import kerascnn  # noqa: E402
from bench_tuning import time_to, trained_epochs  # noqa: E402
from kerascnn.data import DATA_DIR_ENV, Data, load  # noqa: E402
from kerascnn.data.dataset import Pool, Split  # noqa: E402
from kerascnn.data.splits import stratified_split  # noqa: E402
from kerascnn.training.recipes import get_recipe  # noqa: E402

SPACE = {
    "learning_rate": {"min": 0.3, "max": 5.0, "sampling": "log"},  # the recipe's: 1.3
    "label_smoothing": [0.0, 0.1, 0.2],  # the recipe's: 0.2
    "weight_decay": {"min": 5e-4, "max": 5e-3, "sampling": "log"},  # the recipe's: 1.53e-3
}
SEARCHES = ("hyperband", "random")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=5000,
                        help="images of CIFAR-10's training split searched (stratified)")
    parser.add_argument("--folds", type=int, default=1,
                        help="1: one held-out part of --validation-split; k >= 2: k-fold")
    parser.add_argument("--validation-split", type=float, default=0.2)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_cifar_search")
    return parser.parse_args(argv)


def command(args):
    """The command line that reproduces this run."""
    data_dir = os.environ.get(DATA_DIR_ENV, "DIR")
    return (f"PYTHONPATH=. {DATA_DIR_ENV}={shlex.quote(data_dir)} python "
            f"benchmarks/bench_cifar_search.py --train-size {args.train_size} --folds "
            f"{args.folds} --validation-split {args.validation_split} --max-epochs "
            f"{args.max_epochs} --batch-size {args.batch_size} --seed {args.seed} --out "
            f"{shlex.quote(args.out)}")


def training_subset(size, seed):
    """A Data of `size` images of CIFAR-10's training split, stratified, and nothing else."""
    try:
        full = load("cifar10", seed=seed, download=False)
    except FileNotFoundError:
        raise SystemExit(f"cifar10 not found: set {DATA_DIR_ENV} to a folder holding "
                         "cifar10.npz (or cifar10/, or cifar10-jpg.tar.gz).") from None
    x, y = full.arrays("train")
    positions = np.arange(len(y))
    if size < len(y):
        _, positions = stratified_split(y, size / len(y), seed, argument="--train-size")
    return Data(name=f"cifar10 train[{len(positions)}]", class_names=full.class_names,
                kind=full.kind, value_range=full.value_range, sha256=full.sha256, seed=seed,
                splits={"train": Split(Pool(x[positions], y[positions]))})


def search(data, args, tuner, **options):
    """Runs one search into --out/<tuner>; returns (TuneResult, wall seconds)."""
    recipe = get_recipe("airbench94", batch_size=args.batch_size,
                        validation_split=args.validation_split)
    start = time.perf_counter()
    result = kerascnn.tune("airbench94", data, space=SPACE, tuner=tuner, folds=args.folds,
                           epochs=args.max_epochs, recipe=recipe, refit=False, seed=args.seed,
                           out=str(pathlib.Path(args.out) / tuner), verbose=0, **options)
    return result, time.perf_counter() - start


def epochs_of(trial):
    """Epoch-folds a trial trained (`trained_epochs`; 0 for a trial that failed in fold 0)."""
    return trained_epochs(trial) if trial["folds"] else 0


def scored(trials):
    """The trials with a failed one's score as -inf (so `time_to` passes over it)."""
    return [{**t, "score": -math.inf if t["score"] is None else t["score"]} for t in trials]


def epochs_to(trials, target):
    """Cumulative epoch-folds until the first trial scoring at least `target` (or None)."""
    elapsed = 0
    for trial in scored(trials):
        elapsed += epochs_of(trial)
        if trial["score"] >= target - 1e-12:
            return elapsed
    return None


def breakdown(out, trials, wall):
    """Where a search's wall seconds went, from each fold's record and run.json."""
    parts = dict.fromkeys(("steady", "first_step", "train_rest", "fold_rest", "scoring"), 0.0)
    for trial in trials:
        for j, record in enumerate(trial["folds"]):
            run = json.loads((pathlib.Path(out) / "trials" / trial["trial_id"] / f"fold-{j}" /
                              "run.json").read_text())
            timings = run["timings"]
            first = timings.get("first_step", 0.0)
            in_train = sum(v for k, v in timings.items() if k != "first_step")
            parts["steady"] += run["train_seconds_this_call"] - first
            parts["first_step"] += first
            parts["train_rest"] += in_train - run["train_seconds_this_call"]
            parts["fold_rest"] += record["seconds"] - in_train
            parts["scoring"] += record["score_seconds"]
    parts["around"] = wall - sum(t["seconds"] for t in trials)
    return parts


ROWS = (
    ("steady", "Keras fit after its first step"),
    ("first_step", "first step: tracing, first batch"),
    ("train_rest", "rest of train: build, pipelines, saving"),
    ("fold_rest", "rest of the folds: fold data, parent copy"),
    ("scoring", "scoring the held-out part"),
    ("around", "around the folds: Oracle, results, plot"),
)


def report_time(runs):
    """Prints the wall seconds of each search, part by part, and per epoch and training."""
    names = list(runs)
    print(f"{'where the time went (s)':44s}" + "".join(f"{n:>11s}" for n in names))
    parts = {n: breakdown(r["result"].out, r["result"].trials, r["wall"])
             for n, r in runs.items()}
    for key, label in ROWS:
        print(f"  {label:42s}" + "".join(f"{parts[n][key]:11.1f}" for n in names))
    print(f"  {'wall':42s}" + "".join(f"{runs[n]['wall']:11.1f}" for n in names))
    trainings = {n: sum(len(t["folds"]) for t in runs[n]["result"].trials) for n in names}
    per_epoch = {n: parts[n]["steady"] / max(1, runs[n]["epochs"]) for n in names}
    overhead = {n: (runs[n]["wall"] - parts[n]["steady"]) / max(1, trainings[n]) for n in names}
    print(f"  {'steady seconds per epoch':42s}" + "".join(f"{per_epoch[n]:11.2f}" for n in names))
    print(f"  {'trainings (trial folds)':42s}" + "".join(f"{trainings[n]:11d}" for n in names))
    print(f"  {'the rest of the wall time per training':42s}"
          + "".join(f"{overhead[n]:11.1f}" for n in names))
    for n in names:
        share = 1 - parts[n]["steady"] / runs[n]["wall"]
        print(f"{n}: {share:.0%} of the wall time outside steady epochs "
              f"({trainings[n]} trainings × {overhead[n]:.1f} s)")


def report_target(runs):
    """Prints the epochs and seconds each search needed to reach random search's best."""
    band, random = runs["hyperband"], runs["random"]
    target = random["result"].best_score
    print(f"to reach random search's best {target:.4f} (cumulative over trials in run order):")
    for name, run in runs.items():
        epochs = epochs_to(run["result"].trials, target)
        seconds = time_to(scored(run["result"].trials), target)
        print(f"  {name:9s} " + ("not reached" if epochs is None else
                                 f"{epochs} of its {run['epochs']} epochs, {seconds:.0f} s of "
                                 f"its {run['fold_seconds']:.0f} s in folds"))
    epochs = epochs_to(band["result"].trials, target)
    if epochs is None:
        print(f"Hyperband never reached it (its best {band['result'].best_score:.4f}): the "
              "claim does not hold here")
        return
    ratio = epochs / random["epochs"]
    seconds = time_to(scored(band["result"].trials), target) / random["fold_seconds"]
    print(f"Hyperband's epochs to it / random search's epochs = {epochs} / {random['epochs']} "
          f"= {ratio:.2f}: {'below' if ratio < 1 / 3 else 'not below'} 1/3 (seconds: "
          f"{seconds:.2f})")


def summary(name, result, wall):
    """A search's figures: its result, epochs, fold seconds and wall seconds."""
    trials = result.trials
    failed = sum(t["status"] == "failed" for t in trials)
    epochs = sum(epochs_of(t) for t in trials)
    fold_seconds = sum(t["seconds"] for t in trials)
    print(f"{name:9s} {len(trials)} trials ({failed} failed), {epochs} epoch-folds, "
          f"{wall:.0f} s ({fold_seconds:.0f} s in folds), best {result.best_score:.4f} "
          f"(trial {result.trials[result.best_index]['trial_id']})", flush=True)
    return {"result": result, "wall": wall, "epochs": epochs, "fold_seconds": fold_seconds}


def main(argv):
    args = parse_args(argv)
    taken = [p for p in (pathlib.Path(args.out) / n for n in SEARCHES) if p.exists()]
    if taken:
        raise SystemExit(f"{taken[0]} exists: remove it or pass another --out (a rerun there "
                         "would resume the search, not time it).")
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    data = training_subset(args.train_size, args.seed)
    print(f"{data!r}; airbench94, recipe airbench94 at batch {args.batch_size}, folds "
          f"{args.folds}, max {args.max_epochs} epochs, seed {args.seed}", flush=True)
    runs = {"hyperband": summary("hyperband", *search(data, args, "hyperband"))}
    trials = max(1, runs["hyperband"]["epochs"] // (args.max_epochs * args.folds))
    runs["random"] = summary("random", *search(data, args, "random", max_trials=trials))
    report_target(runs)
    report_time(runs)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"reproduce: {command(args)}")
    for name in SEARCHES:
        folder = pathlib.Path(args.out) / name
        print(f"{name}: {folder / 'cv_results.csv'}, {folder / 'scores.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
