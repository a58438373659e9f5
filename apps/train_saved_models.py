"""Trains the models shipped in saved_models/ on the offline MNIST copy and writes their manifests.

    PYTHONPATH=. python apps/train_saved_models.py     # every model: minutes on 2 CPU cores
    PYTHONPATH=. python apps/train_saved_models.py --only lenet5_mnist

Each model is trained with `kerascnn.train` on the official 60,000 / 10,000 split, a stratified
10% of the training images held out for validation (seeded), and written as:
- `<name>.keras`: an inference copy, rebuilt from the model's config with the trained weights,
  so no optimizer state is saved; its Preprocessing layer takes raw uint8 digits, (28, 28) or
  (28, 28, 1), and it loads with `keras.models.load_model(path, safe_mode=True)` once
  `kerascnn` is imported (which registers that layer);
- `<name>.json`: the manifest: architecture and options, data set and its SHA-256, the full
  recipe, epochs, seed, test accuracy of the written file on the 10,000 raw test images, the
  package versions, the file's SHA-256 and the command that reproduces it.
The same seed gives the same weights (TensorFlow op determinism on CPU): a second run of
lenet5_mnist gave bit-identical weights.

The models:
- `lenet5_mnist`: LeNet-5 as in the paper (LeCun et al. 1998; tanh, average pooling, 61,706
  weights), trained with the "quick" recipe on batches of 128: 99.20% after 15 epochs.
- `resnet18_mnist`: ResNet-18 (He et al. 2016) adapted to 28×28×1. The "cifar" stem (one 3×3/1
  convolution, no max-pool) keeps the digits' resolution, so the four stages see 28, 14, 7 and
  4 pixel maps; the ImageNet stem would divide 28 pixels by 4 before the first stage and leave
  the last stage a 1×1 map. Width multiplier 0.25 (stages of 16, 32, 64 and 128 filters,
  703,578 weights, a 3.1 MB file) already reaches 99.49% after 4 epochs of a one-cycle schedule
  (4.5 to 6.5 minutes on 2 shared CPU cores); half width would cost 4× the multiply-adds and an
  11 MB file for the last tenths of a percent MNIST has to give.
"""

import argparse
import dataclasses
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

import kerascnn
from kerascnn.files import atomic_save_model, atomic_write_json, atomic_write_text, sha256_file
from kerascnn.models.registry import get_model_entry
from kerascnn.training import get_recipe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "mnist"
COMMAND = "PYTHONPATH=. python apps/train_saved_models.py"


@dataclasses.dataclass(frozen=True)
class SavedModel:
    """One shipped model: what to build, and how to train it."""

    name: str
    architecture: str
    model_options: dict
    recipe: str
    recipe_overrides: dict
    epochs: int
    seed: int = 0


MODELS = (
    SavedModel("lenet5_mnist", "lenet5", {}, "quick", {"batch_size": 128}, epochs=15),
    SavedModel(
        "resnet18_mnist", "resnet18", {"stem": "cifar", "width_multiplier": 0.25}, "quick",
        {"batch_size": 128, "schedule": "one_cycle", "learning_rate": 4e-3},
        epochs=4,
    ),
)


def inference_copy(model):
    """Returns an uncompiled copy of `model` (same config and weights, no optimizer)."""
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def file_accuracy(path, x_test, y_test):
    """Accuracy of the .keras file at `path` (loaded in safe mode) on raw test images."""
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    predictions = model.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
    return float(np.mean(predictions == y_test))


def train_and_save(spec, data_dir, out):
    """Trains one model, writes `<name>.keras` and `<name>.json` to `out`; returns the manifest."""
    npz = os.path.join(data_dir, f"{DATA}.npz")
    with np.load(npz) as mnist:
        x_test, y_test = mnist["x_test"], mnist["y_test"]
    start = time.perf_counter()
    result = kerascnn.train(
        spec.architecture, DATA, recipe=spec.recipe, epochs=spec.epochs, seed=spec.seed,
        model_options=spec.model_options, data_dir=data_dir, verbose=2, **spec.recipe_overrides,
    )
    seconds = time.perf_counter() - start
    path = os.path.join(out, f"{spec.name}.keras")
    atomic_save_model(inference_copy(result.model), path)
    accuracy = file_accuracy(path, x_test, y_test)
    if abs(accuracy - result.metrics["accuracy"]) > 1e-4:
        raise RuntimeError(
            f"{spec.name}: the saved copy scores {accuracy:.4f} on the test set, the trained "
            f"model {result.metrics['accuracy']:.4f}; the inference copy is not faithful."
        )
    manifest = {
        "name": spec.name,
        "file": os.path.basename(path),
        "file_sha256": sha256_file(path),
        "file_bytes": os.path.getsize(path),
        "architecture": spec.architecture,
        "paper": get_model_entry(spec.architecture).paper,
        "model_options": spec.model_options,
        "parameters": result.model.count_params(),
        "input": {"shape": list(x_test.shape[1:]), "dtype": str(x_test.dtype),
                  "note": "raw digits; the model's Preprocessing layer normalises them"},
        "data": {"name": DATA, "file": os.path.basename(npz), "sha256": sha256_file(npz),
                 "split": "official: 60,000 train (validation_split held out, stratified, "
                          "seeded) / 10,000 test"},
        "recipe": result.recipe.to_dict(),
        "epochs": spec.epochs,
        "seed": spec.seed,
        "test_accuracy": accuracy,
        "test_examples": int(len(y_test)),
        "train_seconds": round(result.seconds, 1),
        "total_seconds": round(seconds, 1),
        "versions": {"kerascnn": kerascnn.__version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "command": f"{COMMAND} --only {spec.name}",
    }
    atomic_write_json(os.path.join(out, f"{spec.name}.json"), manifest)
    return manifest


def _training(manifest):
    """'recipe + the fields that differ from it, N epochs, seed S' for the README table."""
    recipe = manifest["recipe"]
    named = json.loads(json.dumps(get_recipe(recipe["name"]).to_dict()))  # tuples as lists
    changed = ", ".join(f"{k}={v}" for k, v in recipe.items() if k != "epochs" and v != named[k])
    return (f"`{recipe['name']}`" + (f" with {changed}" if changed else "")
            + f"; {manifest['epochs']} epochs, seed {manifest['seed']}")


def readme(manifests):
    """The saved_models/README.md text: a table of the shipped models."""
    rows = "\n".join(
        f"| `{m['file']}` | {m['architecture']}"
        + "".join(f", {k}={v!r}" for k, v in m["model_options"].items())
        + f" | {m['parameters']:,} | {m['file_bytes'] / 1e6:.1f} MB | {m['test_accuracy']:.2%} "
        f"| {_training(m)} | `{m['command']}` |"
        for m in manifests
    )
    return f"""# Saved models

Small models trained on MNIST (offline copy, official split, 10% of the training images held out
for validation) by `{COMMAND}`; each row's command retrains that model alone.
Each `<name>.keras` is an inference copy (no optimizer state) whose first layer takes raw uint8
digits, shaped (28, 28) or (28, 28, 1): one layout per loaded model, as Keras 3.15's `predict`
fails on the second rank once traced on the first. `<name>.json` is its manifest (architecture,
data SHA-256, full recipe, seed, versions, file SHA-256). `tests/test_saved_models.py` checks the
file checksums and re-measures the test accuracy.

| file | architecture | weights | size | test accuracy (10,000 images) | training | command |
| ---- | ------------ | ------: | ---: | ----------------------------: | -------- | ------- |
{rows}

```python
import keras, numpy as np
import kerascnn  # registers kerascnn's layers (Preprocessing) for loading
model = keras.models.load_model("kerascnn/saved_models/resnet18_mnist.keras", safe_mode=True)
with np.load("mnist.npz") as mnist:  # the keras.datasets file: uint8 digits, (N, 28, 28)
    digits = model.predict(mnist["x_test"][:8]).argmax(axis=1)
```
"""


def write_readme(out):
    """Writes `out`/README.md from the manifests found there."""
    manifests = []
    for spec in MODELS:
        path = os.path.join(out, f"{spec.name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                manifests.append(json.load(f))
    atomic_write_text(os.path.join(out, "README.md"), readme(manifests))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[m.name for m in MODELS],
                        help="train only this model (repeatable); default: all")
    parser.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR")
                        or os.path.join(REPO, "..", "shared", "datasets"))
    parser.add_argument("--out", default=os.path.join(REPO, "kerascnn", "saved_models"))
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.data_dir, f"{DATA}.npz")):
        parser.error(f"no {DATA}.npz in --data-dir {args.data_dir!r}; pass the folder holding the "
                     "offline copy (keras.datasets layout) or set KERASCNN_DATA_DIR.")
    for spec in MODELS:
        if args.only and spec.name not in args.only:
            continue
        manifest = train_and_save(spec, args.data_dir, args.out)
        print(f"{spec.name}: test accuracy {manifest['test_accuracy']:.4f}, "
              f"{manifest['file_bytes'] / 1e6:.1f} MB, trained in {manifest['train_seconds']} s")
    write_readme(args.out)


if __name__ == "__main__":
    main()
