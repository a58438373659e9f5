"""Cross-validated search: its cost, its stability, Hyperband against random search, memory.

Run from the repository root (about 5 minutes on two CPU cores):

    PYTHONPATH=. python benchmarks/bench_tuning.py [cost] [stability] [hyperband] [memory]

Every search uses a one-hidden-layer network on scikit-learn's digits (a fold trains in about
a second), so the figures measure the search's machinery, not a large model:
1. cost: a 3-fold search against a single-split search (folds=1) at equal trials; the goal is
   at most 3 × single + 10%. Where the time goes: `fit` itself (run.json), the rest of each
   fold (building, adapting the normalisation, compiling, tracing, checkpoints, scoring) and
   the search around the folds (Oracle, results files, plot).
2. stability: the chosen configuration and its refit test accuracy over 3 seeds, 3-fold
   against single split.
3. hyperband: Hyperband against random search at an equal budget of trained epochs; the time
   each takes to reach the random search's best score.
4. memory: the resident memory of a 30-trial search, sampled during trials 5 to 30.
"""

import json
import os
import pathlib
import sys
import tempfile
import threading
import time

import keras
import numpy as np
import psutil

import kerascnn
from kerascnn.data import load

SPACE = {"learning_rate": {"min": 1e-4, "max": 3e-2, "sampling": "log"}, "batch_size": [64]}


def build(hp):
    """One hidden layer on 8×8 digits, its width a hyperparameter."""
    units = hp.Int("units", 8, 64, step=8)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="tiny")


def search(data, out, **options):
    start = time.perf_counter()
    result = kerascnn.tune(build, data, space=SPACE, out=out, verbose=0, **options)
    return result, time.perf_counter() - start


def breakdown(out, trials):
    """Seconds in fit, in the rest of the folds, and around the folds."""
    fit = fold = 0.0
    for trial in trials:
        for j, record in enumerate(trial["folds"]):
            run = json.loads((pathlib.Path(out) / "trials" / trial["trial_id"] / f"fold-{j}" /
                              "run.json").read_text())
            fit += run["train_seconds_this_call"]
            fold += record["seconds"]
    return fit, fold - fit


def cost(data, root):
    print("== 1. cost: 3-fold against single split, 6 trials of 3 epochs ==")
    rows = {}
    for name, folds in (("single split", 1), ("3-fold", 3)):
        result, seconds = search(data, root / f"cost-{folds}", folds=folds, max_trials=6,
                                 epochs=3, refit=False, seed=0)
        fit, rest = breakdown(root / f"cost-{folds}", result.trials)
        trainings = sum(len(t["folds"]) for t in result.trials)
        rows[name] = seconds
        print(f"{name:13s} {seconds:6.1f} s for {trainings} trainings: fit {fit:5.1f} s, rest "
              f"of the folds {rest:5.1f} s ({rest / trainings:.2f} s each), around the folds "
              f"{seconds - fit - rest:4.1f} s")
    ratio = rows["3-fold"] / rows["single split"]
    print(f"3-fold / single split = {ratio:.2f} (goal <= 3 x 1.10 = 3.30)")


def stability(data, root):
    print("== 2. stability over 3 seeds: chosen configuration, refit test accuracy ==")
    for name, folds in (("single split", 1), ("3-fold", 3)):
        chosen, tests = [], []
        for seed in range(3):
            result, seconds = search(data, root / f"stability-{folds}-{seed}", folds=folds,
                                     max_trials=6, epochs=3, seed=seed)
            best = result.best_hyperparameters
            score = max(result.trials, key=lambda t: t["score"])
            chosen.append(f"lr={best['learning_rate']:.4f} units={best['units']} (cv "
                          f"{score['score']:.3f}±{score['std']:.3f} over "
                          f"{len(score['fold_scores'])} folds, {seconds:.0f} s)")
            tests.append(result.test_metrics["accuracy"])
        print(f"{name:13s} refit test accuracy {np.mean(tests):.4f} ± {np.std(tests):.4f} "
              f"({', '.join(f'{t:.4f}' for t in tests)})")
        for seed, text in enumerate(chosen):
            print(f"    seed {seed}: {text}")


def trained_epochs(trial):
    values = trial["hyperparameters"]
    fresh = values.get("tuner/epochs", 0) - values.get("tuner/initial_epoch", 0)
    per_fold = fresh if "tuner/epochs" in values else trial["folds"][0]["epochs"]
    return per_fold * len(trial["folds"])


def time_to(trials, target):
    """Cumulative fold seconds until the first trial scoring at least `target` (or None)."""
    elapsed = 0.0
    for trial in trials:
        elapsed += trial["seconds"]
        if trial["score"] >= target - 1e-12:
            return elapsed
    return None


def hyperband(data, root):
    print("== 3. Hyperband (max 9 epochs, factor 3) against random search, equal epochs ==")
    band, band_seconds = search(data, root / "hyperband", tuner="hyperband", folds=2, epochs=9,
                                refit=False, seed=0)
    budget = sum(trained_epochs(t) for t in band.trials)
    trials = max(1, budget // (9 * 2))
    random, random_seconds = search(data, root / "random", tuner="random", folds=2, epochs=9,
                                    max_trials=trials, refit=False, seed=0)
    target = max(t["score"] for t in random.trials)
    best = max(t["score"] for t in band.trials)
    print(f"hyperband: {len(band.trials)} trials, {budget} epoch-folds, {band_seconds:.1f} s, "
          f"best {best:.4f}")
    print(f"random:    {len(random.trials)} trials of 9 epochs, "
          f"{sum(trained_epochs(t) for t in random.trials)} epoch-folds, {random_seconds:.1f} s, "
          f"best {target:.4f}")
    reached = time_to(band.trials, target)
    print(f"time to random's best {target:.4f}: random {time_to(random.trials, target):.1f} s, "
          f"hyperband {'not reached' if reached is None else f'{reached:.1f} s'}")


def memory(data, root):
    print("== 4. memory: resident set size during a 30-trial search (2 folds, 1 epoch) ==")
    out = root / "memory"
    samples, done = [], threading.Event()
    process = psutil.Process()

    def sample():
        while not done.is_set():
            finished = len(list(out.glob("trials/*/trial.json"))) if out.exists() else 0
            samples.append((finished, process.memory_info().rss / 2**20))
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    search(data, out, folds=2, max_trials=30, epochs=1, refit=False, seed=0)
    done.set()
    thread.join()
    for first, last in ((5, 10), (25, 30)):
        window = [rss for finished, rss in samples if first <= finished < last]
        print(f"trials {first:2d}-{last:2d}: resident memory {np.median(window):7.1f} MiB "
              f"(max {max(window):7.1f})")


def main(argv):
    sections = {"cost": cost, "stability": stability, "hyperband": hyperband, "memory": memory}
    chosen = argv or list(sections)
    data = load("digits", seed=0)
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as folder:
        for name in chosen:
            start = time.perf_counter()
            sections[name](data, pathlib.Path(folder))
            print(f"({name}: {time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main(sys.argv[1:])
