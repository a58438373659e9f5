"""`finetune`: a trained network, a new data set, a new head; phases of unfreezing."""

import contextlib
import json
import os
import sys
import time

import keras
import numpy as np

import kerascnn
from kerascnn.data import KERAS_DATASETS, Data
from kerascnn.files import atomic_write_bytes
from kerascnn.run_folder import RunFolder
from kerascnn.training import TrainResult, train
from kerascnn.training.checkpoints import history_csv
from kerascnn.training.recipes import get_recipe
from kerascnn.transfer import batchnorm, features, freezing, lr_groups, surgery
from kerascnn.transfer.source import TransferError, load_source

REPORT_FILES = ("metrics.json", "report.md", "report.html")  # and the report's PNGs

# Later phases learn at a tenth of the head phase's rate: the features are already good, and
# a high rate would wreck them before the new head settles (Yosinski et al. 2014; fastai).
UNFREEZE_FACTOR = 0.1
MANIFEST = "finetune.json"
# The headline test metrics: a classifier's, then a regressor's (kerascnn.evaluate's keys).
SUMMARY_METRICS = ("accuracy", "macro_f1", "log_loss", "r2", "mae", "rmse")


def finetune(
    source,
    data,
    *,
    freeze="base",
    head_epochs=None,
    epochs=None,
    learning_rate=None,
    lr_mult=None,
    bn="frozen",
    recipe="quick",
    adapt_input=True,
    renormalize=False,
    out=None,
    seed=0,
    data_dir=None,
    safe_mode=True,
    verbose="auto",
    **recipe_overrides,
):
    """Fine-tunes a trained network on a new data set: a new head, then unfreezing by phases.

    Phase 1 trains the new head with the base frozen for `head_epochs`; then each phase that
    `freeze` asks for unfreezes more of the base and trains at the rate × 0.1, recompiled,
    as its own `kerascnn.train` run in `out`/phase-N (so an interrupted fine-tune resumes
    phase by phase). Regression data (a `Data` loaded with task="regression", or
    `task="regression"` among the recipe overrides) turn a classifier into a regressor: the
    new head is a linear Dense with one unit per target (no softmax), trained with the
    recipe's loss ("mse" unless loss="mae"), and the freeze="all" baseline is a ridge
    regression scored by R².

    Args:
        source: a `.keras` file, the name of a model in `saved_models/` (e.g.
            "resnet18_mnist"), a run folder holding `model.keras`, or a keras.Model (a
            keras.applications network included).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data`.
        freeze: "base" (train the head only), "none" (head, then everything), an int N
            (head, then the top N stages too), a stage name (head, then that stage and all
            above it), "gradual" (one stage more per phase, fastai style) or "all" (no
            training: a scikit-learn logistic regression on the extracted features, the
            baseline; for regression a ridge regression, RidgeCV). Stages are the architecture's own for kerascnn models, else where the
            map size changes.
        head_epochs: epochs of the head phase (default: `epochs`; 0 skips it unless
            freeze="base").
        epochs: epochs of each unfreezing phase (default: the recipe's).
        learning_rate: the head phase's rate (default: the recipe's).
        lr_mult: learning-rate multipliers per group (stem, stages, head): a dict, a list in
            group order, or "low..high" spread geometrically from the stem to the head.
        bn: BatchNorm policy: "frozen", "train_affine" or "train" (see
            kerascnn.transfer.batchnorm).
        recipe: the training recipe (name, Recipe or dict); `**recipe_overrides` override
            its fields (task="regression" loads `data` as float targets; a `Data` brings its
            own task).
        adapt_input: convert the first convolution to the data's channel count (grey <->
            RGB, N channels); False lets the Preprocessing layer convert the images instead.
        renormalize: recompute the input normalisation on the new training split instead of
            keeping the source's statistics (which its features expect).
        out: the run folder: model.keras, metrics.json, history.csv, the report
            (report.md, report.html, figures), run.json, the manifest finetune.json, and each
            phase's `kerascnn.train` run folder phase-N/; None keeps nothing on disk.
        seed: seeds the new head, shuffling and the validation split.
        data_dir: where offline copies of named data sets lie.
        safe_mode: load files in Keras' safe mode (Lambda layers refused).
        verbose: Keras' progress display; 0 also silences the weight report.

    Returns:
        A `kerascnn.training.TrainResult`: the fine-tuned model (an inference copy, Keras'
        own BatchNormalization), the history of every phase (with a "phase" column), the
        test metrics, the run folder, the recipe and the training seconds. For
        freeze="all", the model is the feature extractor and the metrics are the
        logistic (ridge) regression's.

    Raises:
        ValueError (TransferError, RunFolderError): a bad option, source, stage or folder,
            raised before anything is written.
    """
    batchnorm.check_policy(bn)
    if not isinstance(adapt_input, bool):
        raise TransferError(f"adapt_input must be True or False; got {adapt_input!r}.")
    recipe = get_recipe(recipe, epochs=epochs, learning_rate=learning_rate, **recipe_overrides)
    head_epochs = recipe.epochs if head_epochs is None else head_epochs
    if isinstance(head_epochs, bool) or not isinstance(head_epochs, int) or head_epochs < 0 \
            or (head_epochs == 0 and freeze == "base"):
        raise TransferError(f"head_epochs must be a positive int (0 skips the head phase when "
                            f"freeze is not 'base'); got {head_epochs!r}.")
    if isinstance(data, Data) and recipe_overrides.get("task") not in (None, data.task):
        raise TransferError(f"task={recipe_overrides['task']!r}, but {data.name} was loaded for "
                            f"{data.task}; pass task={data.task!r}, or load the data with "
                            f"task={recipe_overrides['task']!r}.")
    model, provenance = load_source(source, safe_mode=safe_mode)
    data = features.load_data(data, data_dir, recipe.validation_split, seed, task=recipe.task)
    recipe = get_recipe(recipe, task=data.task)
    groups = freezing.layer_groups(model)
    multipliers = lr_groups.group_multipliers(lr_mult, groups)
    phases = [] if freeze == "all" else freezing.plan_phases(
        freeze, groups, head_epochs=head_epochs, epochs=recipe.epochs,
        learning_rate=recipe.learning_rate, unfreeze_factor=UNFREEZE_FACTOR)
    say = print if verbose != 0 else (lambda *a, **k: None)

    keras.utils.set_random_seed(seed)
    net, rows, adaptation = adapt(model, data, bn=bn, adapt_input=adapt_input,
                                  renormalize=renormalize)
    say(f"weights from {provenance.get('path', provenance.get('name'))}:\n"
        f"{surgery.report_table(rows)}", file=sys.stderr)
    manifest = {
        "kerascnn": kerascnn.__version__,
        "source": provenance,
        "data": data.describe(),
        "classes": {"source": _source_classes(model, provenance),
                    "target": dict(enumerate(data.class_names)) if data.task == "classification"
                    else f"{data.num_outputs} regression target(s)"},
        "input_adaptation": adaptation,
        "freeze": freeze,
        "bn": bn,
        "groups": groups,
        "lr_mult": multipliers,
        "unfreeze_factor": UNFREEZE_FACTOR,
        "recipe": recipe.to_dict(),
        "seed": seed,
        "weights": rows,
        "phases": [],
    }
    folder = RunFolder(out, "finetune") if out else contextlib.nullcontext()
    with folder:
        if freeze == "all":
            return _feature_baseline(net, data, folder if out else None, manifest, recipe, seed)
        history, result, seconds = {}, None, 0.0
        scales = lr_groups.variable_multipliers(net, groups, multipliers)
        lr_groups.register_recipe(recipe)
        for phase in phases:
            frozen = freezing.set_trainable(net, groups, phase.trainable, bn)
            result = _train_phase(net, data, recipe, phase, scales, seed,
                                  folder.claim(f"phase-{phase.number}") if out else None,
                                  verbose)
            net, seconds = result.model, seconds + result.seconds
            _append(history, result.history, phase.number)
            manifest["phases"].append({
                "phase": phase.number,
                "run_folder": f"phase-{phase.number}" if out else None,
                "trainable_groups": phase.trainable,
                "frozen_layers": frozen,
                "trainable_parameters": int(sum(np.prod(v.shape)
                                                for v in net.trainable_weights)),
                "epochs": phase.epochs,
                "learning_rates": {g: phase.learning_rate * multipliers[g]
                                   for g in phase.trainable},
                "history": result.history,
                "test_metrics": _summary(result.metrics),
                "seconds": round(result.seconds, 2),
            })
        final = inference_copy(net)
        metrics = _plain(result.metrics)
        manifest["test_accuracy"] = metrics.get("accuracy")
        manifest["test_metrics"] = _summary(metrics)
        if out:
            _write_outputs(folder, final, history, metrics, manifest, f"phase-{phase.number}")
    return TrainResult(final, history, metrics, folder.path if out else None, recipe, seconds)


def adapt(model, data, *, bn, adapt_input=True, renormalize=False):
    """Returns (the model rebuilt for `data`, the weight report rows, the input adaptation).

    A new head for the data's classes (a linear one per target for regression data), the
    first convolution for its channels (when `adapt_input`), the BatchNorm class the policy
    needs; every other weight copied.
    """
    preprocessing, backbone = surgery.split_network(model)
    source_channels = backbone.inputs[0].shape[-1]
    data_channels = data.input_shape[-1]
    change = adapt_input and data_channels != source_channels
    if data_channels != source_channels and not change and \
            {source_channels, data_channels} != {1, 3}:
        raise TransferError(
            f"the source takes {source_channels} channels and the data has {data_channels}; "
            "only grey <-> RGB converts without adapting the first convolution: pass "
            "adapt_input=True.")
    classifiers = surgery.find_classifiers(model)
    first = surgery.first_convolution(model) if change else None
    if change and first is None:
        raise TransferError(f"{model.name!r} has no convolution to adapt to {data_channels} "
                            "input channels.")
    new = surgery.rebuild(
        model, classes=data.num_outputs, linear_head=data.task == "regression",
        input_shape=data.input_shape if preprocessing is not None else None,
        input_channels=data_channels if change else None,
        layer_classes=batchnorm.layer_classes(bn))
    rows = surgery.transfer_weights(model, new, replaced=classifiers, first_conv=first)
    if data.task == "regression":
        _start_at_the_mean(new, data)
    new_preprocessing, _ = surgery.split_network(new)
    if renormalize and new_preprocessing is not None:
        new_preprocessing.adapt(data.x_train)
    adaptation = {
        "source_input": list(model.inputs[0].shape[1:]),
        "data_input": list(data.input_shape),
        "backbone_input": list(surgery.split_network(new)[1].inputs[0].shape[1:]),
        "first_convolution": (f"{first}: {source_channels} -> {data_channels} channels "
                              "(sum for 1, repeat × C/N for N)") if change else None,
        "normalisation": ("re-adapted on the new training split" if renormalize
                          else "the source's statistics") if preprocessing is not None
        else "adapted on the new training split by kerascnn.train",
    }
    return new, rows, adaptation


def _start_at_the_mean(model, data):
    """Sets the new linear heads' biases to the training targets' mean: the head starts as the
    mean predictor (R² 0) instead of predicting about 0, which targets far from 0 (digit
    values 5-9, prices) would take most of a short head phase to unlearn."""
    _, backbone = surgery.split_network(model)
    mean = np.mean(data.arrays("train")[1], axis=0)
    for name in surgery.find_classifiers(model):
        bias = getattr(backbone.get_layer(name), "bias", None)
        if bias is not None and tuple(bias.shape) == mean.shape:
            bias.assign(mean.astype(bias.dtype))


def inference_copy(model):
    """A copy with the same weights, every layer trainable, Keras' own BatchNormalization and
    no optimizer: loads with plain Keras (+ kerascnn's layers)."""
    copy = surgery.rebuild(model, layer_classes=batchnorm.RESTORE)
    surgery.transfer_weights(model, copy)
    copy.trainable = True
    for _, layer in surgery.flat_layers(copy):
        layer.trainable = True
    return copy


def _train_phase(net, data, recipe, phase, scales, seed, out, verbose):
    return train(net, data, recipe=recipe, epochs=phase.epochs,
                 learning_rate=phase.learning_rate, out=out, seed=seed,
                 optimizer=lr_groups.optimizer_factory(scales), verbose=verbose)


def _feature_baseline(net, data, folder, manifest, recipe, seed):
    start = time.perf_counter()
    extractor = features.feature_model(net)
    found = features.split_features(extractor, data)
    if data.task == "regression":
        regressor, metrics = features.ridge_regression(found)
        baseline = {"regressor": "StandardScaler + RidgeCV (scikit-learn)",
                    "alpha": float(regressor[-1].alpha_)}
    else:
        classifier, metrics = features.logistic_regression(found, seed=seed)
        baseline = {"classifier": "StandardScaler + LogisticRegression (scikit-learn)",
                    "max_iter": classifier[-1].max_iter}
    seconds = time.perf_counter() - start
    manifest["feature_baseline"] = {"features": int(extractor.outputs[0].shape[-1]), **baseline}
    manifest["test_accuracy"] = metrics.get("accuracy")
    manifest["test_metrics"] = _summary(metrics)
    if folder is not None:
        folder.write_json("metrics.json", metrics)
        folder.write_json(MANIFEST, manifest)
    return TrainResult(extractor, {}, metrics, folder.path if folder else None, recipe, seconds)


def _write_outputs(folder, final, history, metrics, manifest, last_phase):
    """Writes the fine-tune's model, history, report, run.json and manifest to `folder`.

    The report (metrics.json, report.md/html, figures) is the last phase's: the same weights,
    so the same predictions, without evaluating twice.
    """
    folder.save_model(final, "model.keras")
    folder.write_text("history.csv", history_csv(history))
    phase = folder.path_of(last_phase)
    for name in sorted(os.listdir(phase)):
        if name in REPORT_FILES or name.endswith(".png"):
            with open(os.path.join(phase, name), "rb") as f:
                atomic_write_bytes(folder.claim(name), f.read())
    if "metrics.json" not in os.listdir(phase):
        folder.write_json("metrics.json", metrics)
    with open(os.path.join(phase, "run.json"), encoding="utf-8") as f:
        run = json.load(f)
    folder.write_json("run.json", {
        **run, "kind": "finetune", "manifest": MANIFEST, "model": manifest["source"],
        "epochs_completed": len(history.get("phase", [])),
        "train_seconds": round(sum(p["seconds"] for p in manifest["phases"]), 2),
        "test_accuracy": metrics.get("accuracy"),
    })
    folder.write_json(MANIFEST, manifest)


def _append(history, phase_history, number):
    length = len(next(iter(phase_history.values()), []))
    for key, values in phase_history.items():
        history.setdefault(key, [None] * len(history.get("phase", []))).extend(values)
    history.setdefault("phase", []).extend([number] * length)


def _summary(metrics):
    """The headline test metrics of a phase."""
    return {k: float(metrics[k]) for k in SUMMARY_METRICS if k in metrics}


def _plain(metrics):
    """Metrics as JSON-ready floats (drops arrays such as confusion matrices)."""
    return {k: float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v
            for k, v in (metrics or {}).items() if not isinstance(v, np.ndarray)}


def _source_classes(model, provenance):
    _, backbone = surgery.split_network(model)
    count = int(backbone.get_layer(surgery.find_classifiers(model)[0]).output.shape[-1])
    data = (provenance.get("manifest") or {}).get("data") or {}
    names = KERAS_DATASETS.get(data.get("name")) if isinstance(data, dict) else None
    if names and len(names) == count:
        return dict(enumerate(names))
    return f"{count} classes (names not recorded with the source)"
