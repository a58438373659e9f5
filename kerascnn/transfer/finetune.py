"""`finetune`: a trained network, a new data set, a new head; phases of unfreezing."""

import contextlib
import hashlib
import json
import os
import sys
import time

import keras
import numpy as np

import kerascnn
from kerascnn.compat import safe_mode_scope
from kerascnn.data import KERAS_DATASETS, Data
from kerascnn.evaluation import evaluate
from kerascnn.run_folder import RunFolder, RunFolderError
from kerascnn import losses
from kerascnn.training import TrainResult, train
from kerascnn.training.checkpoints import history_csv
# `kerascnn.train`'s own rerun machinery: clearing a run folder, naming what differs.
from kerascnn.training.loop import fingerprint_differences
from kerascnn.training.recipes import get_recipe
from kerascnn.transfer import (batchnorm, features, freezing, lr_groups, normalisation,
                               surgery)
from kerascnn.transfer.source import TransferError, load_source

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
    renormalize="auto",
    out=None,
    fresh=False,
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
    phase by phase). Every setting that changes what a phase trains is part of the
    fine-tune's fingerprint, kept in finetune.json: a rerun in the same `out` with other
    settings is refused before any training, naming what differs (fresh=True starts it
    over). Regression data (a `Data` loaded with task="regression", or `task="regression"`
    among the recipe overrides) turn a classifier into a regressor: the new head is a
    linear Dense with one unit per target (no softmax), trained with the recipe's loss
    ("mse" unless loss="mae"), and the freeze="all" baseline is a ridge regression scored
    by R². Class labels turn a regressor (a linear head) into a classifier with a softmax.

    Args:
        source: a `.keras` file, the name of a model in `saved_models/` (e.g.
            "resnet18_mnist"), a run folder holding `model.keras`, or a built keras.Model
            (a keras.applications network included).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data`.
        freeze: "base" (train the head only), "none" (head, then everything), an int N
            (head, then the top N stages too), a stage name (head, then that stage and all
            above it), "gradual" (one stage more per phase, fastai style) or "all" (no
            training: a scikit-learn logistic regression on the extracted features, the
            baseline; for regression a ridge regression, RidgeCV). Stages are the
            architecture's own for kerascnn models, else where the map size changes.
        head_epochs: epochs of the head phase (default: `epochs`; 0 skips it unless
            freeze="base").
        epochs: epochs of each unfreezing phase (default: the recipe's).
        learning_rate: the head phase's rate (default: the recipe's).
        lr_mult: learning-rate multipliers per group (stem, stages, head): a dict, a list in
            group order, or "low..high" spread geometrically from the stem to the head;
            finite numbers >= 0.
        bn: BatchNorm policy: "frozen", "train_affine" or "train" (see
            kerascnn.transfer.batchnorm); it holds at any depth, in nested base models too.
        recipe: the training recipe (name, Recipe or dict); `**recipe_overrides` override
            its fields (task="regression" loads `data` as float targets; a `Data` brings its
            own task).
        adapt_input: convert the first convolution to the data's channel count (grey <->
            RGB, N channels); False lets the Preprocessing layer convert the images instead.
        renormalize: the source's input normalisation on the new data. "auto" re-adapts it
            on the new training split when the data's values lie on another scale than the
            source's statistics (a factor of 4 or more apart, e.g. digits' 0-16 against
            MNIST's 0-255) and keeps it otherwise; True always re-adapts; False always keeps
            the source's statistics (which its features expect). The decision and the
            scales compared are printed and recorded in finetune.json's input_adaptation.
        out: the run folder: model.keras, metrics.json, history.csv, the report
            (report.md, report.html, figures; its learning curves span every phase),
            run.json, the manifest finetune.json, and each phase's `kerascnn.train` run
            folder phase-N/; None keeps nothing on disk.
        fresh: start the fine-tune in `out` over, deleting the files kerascnn wrote there
            (only those) first. Without it, a folder holding a fine-tune with other settings
            is refused, and one with the same settings resumes.
        seed: seeds the new head, shuffling and the validation split.
        data_dir: where offline copies of named data sets lie.
        safe_mode: load and rebuild the network in Keras' safe mode (Lambda layers
            refused). False, for a source you trust, holds for every load and rebuild of
            the fine-tune, resumed phases included.
        verbose: Keras' progress display; 0 also silences the weight report, the
            normalisation line and the phase headings.

    Returns:
        A `kerascnn.training.TrainResult`: the fine-tuned model (an inference copy, Keras'
        own BatchNormalization), the history of every phase (with a "phase" column), the
        test metrics, the run folder, the recipe and the training seconds. For
        freeze="all", the model is the feature extractor and the metrics are the
        logistic (ridge) regression's.

    Raises:
        ValueError (TransferError, RunFolderError): a bad option, source, stage or folder,
            or a folder holding a fine-tune with other settings, raised before anything is
            written or trained.
    """
    _check_options(bn, adapt_input, renormalize, fresh)
    recipe = get_recipe(recipe, epochs=epochs, learning_rate=learning_rate, **recipe_overrides)
    head_epochs = recipe.epochs if head_epochs is None else head_epochs
    if isinstance(head_epochs, bool) or not isinstance(head_epochs, int) or head_epochs < 0 \
            or (head_epochs == 0 and freeze == "base"):
        raise TransferError(f"head_epochs must be a positive int (0 skips the head phase when "
                            f"freeze is not 'base'); got {head_epochs!r}.")
    if isinstance(data, Data):
        data.check_task(recipe_overrides.get("task"), TransferError)
    model, provenance = load_source(source, safe_mode=safe_mode)
    data = features.load_data(data, data_dir, recipe.validation_split, seed, task=recipe.task)
    recipe = get_recipe(recipe, task=data.task)
    groups = freezing.layer_groups(model)
    multipliers = lr_groups.group_multipliers(lr_mult, groups)
    phases = [] if freeze == "all" else freezing.plan_phases(
        freeze, groups, head_epochs=head_epochs, epochs=recipe.epochs,
        learning_rate=recipe.learning_rate, unfreeze_factor=UNFREEZE_FACTOR)
    normalising = normalisation.plan(model, data, renormalize)
    fingerprint = _fingerprint(provenance, data, freeze=freeze, phases=phases, bn=bn,
                               multipliers=multipliers, adapt_input=adapt_input,
                               renormalized=normalising["renormalized"], recipe=recipe,
                               seed=seed)
    say = print if verbose != 0 else (lambda *a, **k: None)

    folder = RunFolder(out, "finetune") if out else None
    with folder or contextlib.nullcontext(), safe_mode_scope(safe_mode):
        if folder:
            _check_rerun(folder, fingerprint, fresh)
        keras.utils.set_random_seed(seed)
        net, rows, adaptation = adapt(model, data, bn=bn, adapt_input=adapt_input,
                                      renormalize=normalising["renormalized"],
                                      head=_head(recipe), safe_mode=safe_mode)
        adaptation["normalisation_check"] = normalising
        say(f"weights from {provenance.get('path', provenance.get('name'))}:\n"
            f"{surgery.report_table(rows)}", file=sys.stderr)
        say(f"normalisation: {normalising['reason']}.", file=sys.stderr)
        manifest = _manifest(model, provenance, data, adaptation, freeze, bn, groups,
                             multipliers, recipe, seed, rows, fingerprint)
        if freeze == "all":
            return _feature_baseline(net, data, folder, manifest, recipe, seed)
        if folder:  # the fingerprint is on disk before any training: a rerun is checked on it
            folder.write_json(MANIFEST, {**manifest, "status": "training"})
        history, result, seconds = {}, None, 0.0
        scales = lr_groups.variable_multipliers(net, groups, multipliers)
        lr_groups.register_recipe(recipe)
        for phase in phases:
            say(_phase_heading(phase, multipliers))
            frozen = freezing.set_trainable(net, groups, phase.trainable, bn)
            result = _train_phase(net, data, recipe, phase, scales, seed,
                                  folder.claim(f"phase-{phase.number}") if folder else None,
                                  verbose)
            net, seconds = result.model, seconds + result.seconds
            _append(history, result.history, phase.number)
            manifest["phases"].append(_phase_record(phase, result, frozen, net, multipliers,
                                                    folder))
            if folder:
                folder.write_json(MANIFEST, {**manifest, "status": "training"})
        final = inference_copy(net, safe_mode=safe_mode)
        metrics = _plain(result.metrics)
        if folder:
            metrics = _write_outputs(folder, final, data, recipe, history, metrics, manifest,
                                     f"phase-{phases[-1].number}")
    return TrainResult(final, history, metrics, folder.path if folder else None, recipe,
                       seconds)


def _check_options(bn, adapt_input, renormalize, fresh):
    """Refuses a bad policy or flag before anything is loaded."""
    batchnorm.check_policy(bn)
    if not isinstance(adapt_input, bool):
        raise TransferError(f"adapt_input must be True or False; got {adapt_input!r}.")
    normalisation.check_setting(renormalize)
    if not isinstance(fresh, bool):
        raise TransferError(f"fresh must be True or False; got {fresh!r}.")


def _head(recipe):
    """The head the recipe's loss needs: "softmax" (cross-entropy) or "linear"."""
    return losses.output_activation(recipe.task, recipe.loss) or "linear"


def _manifest(model, provenance, data, adaptation, freeze, bn, groups, multipliers, recipe,
              seed, rows, fingerprint):
    """finetune.json as a fine-tune starts: its settings, before any phase."""
    return {
        "kerascnn": kerascnn.__version__,
        "source": provenance,
        "data": data.describe(),
        "classes": {"source": _source_classes(model, provenance),
                    "target": dict(enumerate(data.class_names))
                    if data.task == "classification"
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
        "fingerprint": fingerprint,
        "phases": [],
    }


def _fingerprint(provenance, data, *, freeze, phases, bn, multipliers, adapt_input,
                 renormalized, recipe, seed):
    """What a fine-tune is: every setting that changes what a phase trains, in the form of
    `kerascnn.train`'s fingerprint (the settings, a digest and a summary)."""
    source = {k: provenance[k] for k in ("path", "sha256", "name", "weights_sha256")
              if k in provenance}
    described = {
        "source": source,
        "data": {k: v for k, v in data.describe().items()
                 if k in ("name", "task", "sha256", "input_shape", "splits", "seed")},
        "freeze": str(freeze),
        "phases": [{"trainable": p.trainable, "epochs": p.epochs,
                    "learning_rate": p.learning_rate} for p in phases],
        "bn": bn,
        "lr_mult": multipliers,
        "unfreeze_factor": UNFREEZE_FACTOR,
        "adapt_input": adapt_input,
        "renormalized": renormalized,
        "recipe": recipe.to_dict(),
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    name = source.get("path") or source.get("name")
    return {**described, "digest": digest.hexdigest(),
            "summary": f"{name} on {data.name}, freeze={freeze}, recipe {recipe.name}, "
                       f"seed {seed}"}


def _check_rerun(folder, fingerprint, fresh):
    """Refuses a folder holding a fine-tune with other settings, before any training; with
    `fresh`, deletes what kerascnn wrote there instead. The same settings resume."""
    if fresh:
        folder.clear()
        return
    saved = folder.read_json(MANIFEST)
    owned = [name for name in os.listdir(folder.path) if folder.owns(name)]
    if not saved and not owned:
        return  # a new fine-tune
    recorded = saved.get("fingerprint")
    if recorded is None:
        raise RunFolderError(
            f"{folder.path} holds a fine-tune whose settings were not recorded (an older "
            "kerascnn wrote it): it cannot be resumed safely; use another `out` folder, or "
            "fresh=True (--fresh) to start it over.")
    if recorded.get("digest") != fingerprint["digest"]:
        raise RunFolderError(
            f"{folder.path} holds another fine-tune ({recorded.get('summary')}; it differs in "
            f"{fingerprint_differences(recorded, fingerprint)}); use another `out` folder, or "
            "fresh=True (--fresh) to start this one over.")


def _phase_heading(phase, multipliers):
    """What a phase trains, printed before its epochs: "phase 1: head, base frozen (3
    epochs, learning rate 0.001)", "phase 2: unfreeze conv4, conv5 + head (...)"."""
    base = [g for g in phase.trainable if g != freezing.HEAD]
    what = "head, base frozen" if not base else f"unfreeze {', '.join(base)} + head"
    scaled = {g: multipliers[g] for g in phase.trainable if multipliers[g] != 1.0}
    rates = ("; lr_mult " + ", ".join(f"{g} ×{m:g}" for g, m in scaled.items())
             if scaled else "")
    epochs = f"{phase.epochs} epoch{'s' if phase.epochs != 1 else ''}"
    return (f"phase {phase.number}: {what} ({epochs}, learning rate "
            f"{phase.learning_rate:g}{rates})")


def _phase_record(phase, result, frozen, net, multipliers, folder):
    """A phase's entry in finetune.json. Its seconds are its run's own (run.json), so a
    resumed phase keeps the time it trained for."""
    seconds = result.seconds
    if folder is not None:
        seconds = folder.read_json(f"phase-{phase.number}/run.json").get(
            "train_seconds", seconds)
    return {
        "phase": phase.number,
        "run_folder": f"phase-{phase.number}" if folder is not None else None,
        "trainable_groups": phase.trainable,
        "frozen_layers": frozen,
        "trainable_parameters": int(sum(np.prod(v.shape) for v in net.trainable_weights)),
        "epochs": phase.epochs,
        "learning_rates": {g: phase.learning_rate * multipliers[g] for g in phase.trainable},
        "history": result.history,
        "test_metrics": _summary(result.metrics),
        "seconds": round(seconds, 2),
    }


def adapt(model, data, *, bn, adapt_input=True, renormalize=False, head=None,
          safe_mode=True):
    """Returns (the model rebuilt for `data`, the weight report rows, the input adaptation).

    A new head for the data's classes (a linear one per target for regression data), the
    first convolution for its channels (when `adapt_input`), the BatchNorm class the policy
    needs; every other weight copied.

    Args:
        head: the output's activation, "softmax" or "linear" (default: linear for
            regression data, else softmax): a linear head becomes a softmax for class
            probabilities, and back.
        renormalize: re-adapt the input normalisation on the data's training split.
        safe_mode: Keras' safe mode for the rebuild (False lets a trusted Lambda through).
    """
    head = head or ("linear" if data.task == "regression" else "softmax")
    if head not in ("softmax", "linear"):
        raise TransferError(f"head must be 'softmax' or 'linear'; got {head!r}.")
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
        model, classes=data.num_outputs, linear_head=head == "linear",
        softmax_head=head == "softmax",
        input_shape=data.input_shape if preprocessing is not None else None,
        input_channels=data_channels if change else None,
        layer_classes=batchnorm.layer_classes(bn), safe_mode=safe_mode)
    rows = surgery.transfer_weights(model, new, replaced=classifiers, first_conv=first)
    if data.task == "regression":
        _start_at_the_mean(new, data)
    new_preprocessing, _ = surgery.split_network(new)
    if renormalize and new_preprocessing is not None and new_preprocessing.mode is not None:
        normalisation.readapt(new_preprocessing, data)
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


def inference_copy(model, *, safe_mode=True):
    """A copy with the same weights, every layer trainable, Keras' own BatchNormalization and
    no optimizer: loads with plain Keras (+ kerascnn's layers)."""
    copy = surgery.rebuild(model, layer_classes=batchnorm.RESTORE, safe_mode=safe_mode)
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


def _write_outputs(folder, final, data, recipe, history, metrics, manifest, last_phase):
    """Writes the fine-tune's model, history, report, run.json and manifest to `folder`;
    returns the test metrics.

    The report (metrics.json, report.md/html, figures) evaluates the final model once with
    the whole history, so its learning curves and fit diagnosis span every phase.
    """
    folder.save_model(final, "model.keras")
    folder.write_text("history.csv", history_csv(history))
    if data.size("test"):
        columns = {k: v for k, v in history.items() if None not in v}
        report = evaluate(_scorer(final, recipe), data,
                          history=columns if "val_loss" in columns else None, out=folder)
        metrics = _plain(report.metrics)
    else:
        folder.write_json("metrics.json", metrics)
    run = folder.read_json(f"{last_phase}/run.json")
    folder.write_json("run.json", {
        **run, "kind": "finetune", "manifest": MANIFEST, "model": manifest["source"],
        "epochs_completed": len(history.get("phase", [])),
        "train_seconds": round(sum(p["seconds"] for p in manifest["phases"]), 2),
        "test_accuracy": metrics.get("accuracy"),
        **{f"test_{key}": metrics[key] for key in ("mae", "rmse", "r2") if key in metrics},
    })
    manifest["test_accuracy"] = metrics.get("accuracy")
    manifest["test_metrics"] = _summary(metrics)
    folder.write_json(MANIFEST, manifest)
    return metrics


def _scorer(model, recipe):
    """The model as `kerascnn.evaluate` should read its outputs: a classifier trained with a
    hinge loss outputs class scores, which it learns from the loss compiled in."""
    if recipe.task == "regression" or _head(recipe) == "softmax":
        return model
    scorer = keras.Model(model.inputs, model.outputs, name=model.name)
    scorer.compile(loss=losses.get_loss(recipe.task, recipe.loss))
    return scorer


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
