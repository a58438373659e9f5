"""`finetune`: a trained network, a new data set, a new head; phases of unfreezing."""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time

import keras
import numpy as np

import kerascnn
from kerascnn import losses
from kerascnn.compat import safe_mode_scope
from kerascnn.data import KERAS_DATASETS, Data
from kerascnn.data.pipeline import steps_per_epoch
from kerascnn.data.preprocessing import split_network
from kerascnn.evaluation import evaluate
from kerascnn.evaluation.metrics import headline
from kerascnn.run_folder import RunFolder, RunFolderError
from kerascnn.training.checkpoints import history_csv
# `kerascnn.train`'s own rerun machinery: clearing a run folder, naming what differs.
from kerascnn.training.fingerprints import differences as fingerprint_differences
from kerascnn.training.recipes import get_recipe
from kerascnn.transfer import (batchnorm, features, freezing, lr_groups, normalisation,
                               surgery)
from kerascnn.transfer.source import TransferError, load_source
from kerascnn.workflow import TrainResult, train

# Later phases learn at a tenth of the head phase's rate: the features are already good, and
# a high rate would wreck them before the new head settles (Yosinski et al. 2014; fastai).
UNFREEZE_FACTOR = 0.1
# Without `epochs`, a phase on small data trains at least this many steps (at most this many
# epochs): with the recipe's 15 epochs, 50 images gave 30 steps a phase and lost to training
# from scratch; 200 steps won (apps/transfer_table.py --task mnist, README).
MIN_PHASE_STEPS = 200
MAX_PHASE_EPOCHS = 50
MANIFEST = "finetune.json"


def finetune(
    source,
    data,
    *,
    weights=None,
    freeze="none",
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
            "resnet18_mnist"), a run folder holding `model.keras`, a built keras.Model, or
            a keras.applications network by name, "keras.applications.MobileNetV2" or
            "keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))" (built
            with its top and behind its own input preprocessing: see
            kerascnn.transfer.applications).
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data`.
        weights: a keras.applications source's weights, "imagenet" (None: the default) or
            a weights file (the one Keras would download, or a `.weights.h5`).
        freeze: "none" (the default: the head, then everything at a tenth of the rate),
            "base" (train the head only), an int N
            (head, then the top N stages too), a stage name (head, then that stage and all
            above it), "gradual" (one stage more per phase, fastai style) or "all" (no
            training: a scikit-learn logistic regression on the extracted features, the
            baseline; for regression a ridge regression, RidgeCV). Stages are the
            architecture's own for kerascnn models, else where the map size changes.
            Measured on MNIST 0-4 -> 5-9 (apps/transfer_table.py --task mnist, 3 seeds),
            "none" beat the same network from scratch at 10, 20, 50 and 100 labels per
            class, while the head alone ("base", the default before) lost at 10 and 20.
        head_epochs: epochs of the head phase (default: `epochs`; 0 skips it unless
            freeze="base").
        epochs: epochs of each unfreezing phase (default: the recipe's, raised on small data
            until a phase takes MIN_PHASE_STEPS = 200 steps, at most 50 epochs).
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
        A `kerascnn.TrainResult`: the fine-tuned model (an inference copy, Keras'
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
    _check_head_epochs(head_epochs, freeze)
    model, provenance, data, recipe = _load(source, data, recipe, recipe_overrides.get("task"),
                                            data_dir=data_dir, seed=seed, safe_mode=safe_mode,
                                            weights=weights)
    recipe = recipe if epochs is not None else _small_data_epochs(recipe, data)
    head_epochs = recipe.epochs if head_epochs is None else head_epochs
    plan = _plan(model, provenance, data, recipe, freeze=freeze, head_epochs=head_epochs,
                 lr_mult=lr_mult, bn=bn, adapt_input=adapt_input, renormalize=renormalize,
                 seed=seed, safe_mode=safe_mode, verbose=verbose)
    folder = RunFolder(out, "finetune") if out else None
    with folder or contextlib.nullcontext(), safe_mode_scope(safe_mode):
        if folder:
            _check_rerun(folder, plan.fingerprint, fresh)
        net, manifest = _adapt_source(plan)
        if freeze == "all":
            return _feature_baseline(net, plan, manifest, folder)
        net, history, metrics, seconds = _train_phases(net, plan, manifest, folder)
        final = inference_copy(net, safe_mode=safe_mode)
        if folder:
            metrics = _write_outputs(folder, final, plan, history, metrics, manifest)
    return TrainResult(final, history, metrics, folder.path if folder else None, plan.recipe,
                       seconds)


@dataclasses.dataclass
class Plan:
    """What a fine-tune does, settled before anything is written or trained.

    Attributes:
        model, provenance: the source network and where it came from (`load_source`).
        data: the loaded `Data`.
        recipe: the Recipe, for the data's task.
        freeze, bn, adapt_input, seed, safe_mode, verbose: `finetune`'s settings.
        groups: the layer groups (`freezing.layer_groups`).
        multipliers: {group: learning-rate multiplier}.
        phases: the `freezing.Phase`s to train (none for freeze="all").
        normalising: the input normalisation's decision (`normalisation.plan`).
        fingerprint: every setting that changes what a phase trains (`_fingerprint`).
    """

    model: keras.Model
    provenance: dict
    data: Data
    recipe: object
    freeze: object
    bn: str
    adapt_input: bool
    seed: int
    safe_mode: bool
    verbose: object
    groups: dict
    multipliers: dict
    phases: list
    normalising: dict
    fingerprint: dict

    def say(self, *args, **kwargs):
        """Prints, unless verbose=0."""
        if self.verbose != 0:
            print(*args, **kwargs)


def _check_options(bn, adapt_input, renormalize, fresh):
    """Refuses a bad policy or flag before anything is loaded."""
    batchnorm.check_policy(bn)
    if not isinstance(adapt_input, bool):
        raise TransferError(f"adapt_input must be True or False; got {adapt_input!r}.")
    normalisation.check_setting(renormalize)
    if not isinstance(fresh, bool):
        raise TransferError(f"fresh must be True or False; got {fresh!r}.")


def _check_head_epochs(head_epochs, freeze):
    """Refuses a head phase count (None: the phases' epochs) that is no int >= 0, or 0 with
    freeze="base" (a fine-tune that would train nothing)."""
    if head_epochs is None:
        return
    if isinstance(head_epochs, bool) or not isinstance(head_epochs, int) or head_epochs < 0 \
            or (head_epochs == 0 and freeze == "base"):
        raise TransferError(f"head_epochs must be a positive int (0 skips the head phase when "
                            f"freeze is not 'base'); got {head_epochs!r}.")


def _small_data_epochs(recipe, data):
    """The recipe with enough epochs for a phase to take MIN_PHASE_STEPS optimizer steps on
    small data (at most MAX_PHASE_EPOCHS), when its own take fewer."""
    steps = steps_per_epoch(data.size("train"), recipe.batch_size)
    needed = min(MAX_PHASE_EPOCHS, math.ceil(MIN_PHASE_STEPS / steps))
    return recipe.replace(epochs=needed) if needed > recipe.epochs else recipe


def _load(source, data, recipe, task, *, data_dir, seed, safe_mode, weights):
    """Loads the source and the data; returns (model, provenance, data, the recipe for the
    data's task). A `Data` loaded for another `task` is refused first."""
    if isinstance(data, Data):
        data.check_task(task, TransferError)
    model, provenance = load_source(source, safe_mode=safe_mode, weights=weights)
    data = features.load_data(data, data_dir, recipe.validation_split, seed, task=recipe.task)
    return model, provenance, data, get_recipe(recipe, task=data.task)


def _plan(model, provenance, data, recipe, *, freeze, head_epochs, lr_mult, bn, adapt_input,
          renormalize, seed, safe_mode, verbose):
    """The `Plan` of a fine-tune: its groups, multipliers, phases, normalisation and
    fingerprint (a bad lr_mult, freeze or stage is refused here)."""
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
    return Plan(model=model, provenance=provenance, data=data, recipe=recipe, freeze=freeze,
                bn=bn, adapt_input=adapt_input, seed=seed, safe_mode=safe_mode,
                verbose=verbose, groups=groups, multipliers=multipliers, phases=phases,
                normalising=normalising, fingerprint=fingerprint)


def _head(recipe):
    """The head the recipe's loss needs: "softmax" (cross-entropy) or "linear"."""
    return losses.output_activation(recipe.task, recipe.loss) or "linear"


def _adapt_source(plan):
    """Rebuilds the source for the data (see `adapt`), seeded, and reports its weights and
    normalisation; returns (the network, the manifest: finetune.json before any phase)."""
    keras.utils.set_random_seed(plan.seed)
    net, rows, adaptation = adapt(plan.model, plan.data, bn=plan.bn,
                                  adapt_input=plan.adapt_input,
                                  renormalize=plan.normalising["renormalized"],
                                  head=_head(plan.recipe), safe_mode=plan.safe_mode)
    adaptation["normalisation_check"] = plan.normalising
    provenance = plan.provenance
    plan.say(f"weights from {provenance.get('path', provenance.get('name'))}:\n"
             f"{surgery.report_table(rows)}", file=sys.stderr)
    plan.say(f"normalisation: {plan.normalising['reason']}.", file=sys.stderr)
    return net, _manifest(plan, adaptation, rows)


def _manifest(plan, adaptation, rows):
    """finetune.json as a fine-tune starts: its settings, before any phase."""
    data = plan.data
    return {
        "kerascnn": kerascnn.__version__,
        "source": plan.provenance,
        "data": data.describe(),
        "classes": {"source": _source_classes(plan.model, plan.provenance),
                    "target": dict(enumerate(data.class_names))
                    if data.task == "classification"
                    else f"{data.num_outputs} regression target(s)"},
        "input_adaptation": adaptation,
        "freeze": plan.freeze,
        "bn": plan.bn,
        "groups": plan.groups,
        "lr_mult": plan.multipliers,
        "unfreeze_factor": UNFREEZE_FACTOR,
        "recipe": plan.recipe.to_dict(),
        "seed": plan.seed,
        "weights": rows,
        "fingerprint": plan.fingerprint,
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


def _train_phases(net, plan, manifest, folder):
    """Trains the plan's phases in turn, each its own `kerascnn.train` run (`folder`/phase-N,
    which resumes), each recorded in the manifest.

    Returns:
        (the network, the history of every phase with a "phase" column, the last phase's
        test metrics, the seconds trained).
    """
    _save_progress(folder, manifest)  # the fingerprint is on disk before any training
    history, seconds = {}, 0.0
    scales = lr_groups.variable_multipliers(net, plan.groups, plan.multipliers)
    lr_groups.register_recipe(plan.recipe)
    for phase in plan.phases:
        plan.say(_phase_heading(phase, plan.multipliers))
        frozen = freezing.set_trainable(net, plan.groups, phase.trainable, plan.bn)
        result = _train_phase(net, plan, phase, scales,
                              folder.claim(f"phase-{phase.number}") if folder else None)
        net, seconds = result.model, seconds + result.seconds
        _append(history, result.history, phase.number)
        manifest["phases"].append(_phase_record(phase, result, frozen, net, plan.multipliers,
                                                folder))
        _save_progress(folder, manifest)
    return net, history, _plain(result.metrics), seconds


def _save_progress(folder, manifest):
    """Writes finetune.json as of a fine-tune in training (a rerun is checked on it)."""
    if folder:
        folder.write_json(MANIFEST, {**manifest, "status": "training"})


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


def _train_phase(net, plan, phase, scales, out):
    """One phase as a `kerascnn.train` run: its epochs and rate, the groups' multipliers."""
    return train(net, plan.data, recipe=plan.recipe, epochs=phase.epochs,
                 learning_rate=phase.learning_rate, out=out, seed=plan.seed,
                 optimizer=lr_groups.optimizer_factory(scales), verbose=plan.verbose)


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
        "test_metrics": headline(result.metrics),
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
    preprocessing, backbone = split_network(model)
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
    new_preprocessing, new_backbone = split_network(new)
    if renormalize and new_preprocessing is not None and new_preprocessing.mode is not None:
        normalisation.readapt(new_preprocessing, data)
    adaptation = {
        "source_input": list(model.inputs[0].shape[1:]),
        "data_input": list(data.input_shape),
        "backbone_input": list(new_backbone.inputs[0].shape[1:]),
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
    _, backbone = split_network(model)
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


def _feature_baseline(net, plan, manifest, folder):
    """freeze="all": no training, a scikit-learn regression on the network's features (see
    `_fit_baseline`); writes metrics.json and finetune.json to `folder`."""
    start = time.perf_counter()
    extractor = features.feature_model(net)
    found = features.split_features(extractor, plan.data)
    metrics, baseline = _fit_baseline(found, plan.data.task, plan.seed)
    seconds = time.perf_counter() - start
    manifest["feature_baseline"] = {"features": int(extractor.outputs[0].shape[-1]), **baseline}
    _record_test_metrics(manifest, metrics)
    if folder is not None:
        folder.write_json("metrics.json", metrics)
        folder.write_json(MANIFEST, manifest)
    return TrainResult(extractor, {}, metrics, folder.path if folder else None, plan.recipe,
                       seconds)


def _fit_baseline(found, task, seed):
    """Returns (test metrics, description) of the feature baseline on {split: (X, y)}: a
    ridge regression for regression data, else a logistic regression."""
    if task == "regression":
        regressor, metrics = features.ridge_regression(found)
        return metrics, {"regressor": "StandardScaler + RidgeCV (scikit-learn)",
                         "alpha": float(regressor[-1].alpha_)}
    classifier, metrics = features.logistic_regression(found, seed=seed)
    return metrics, {"classifier": "StandardScaler + LogisticRegression (scikit-learn)",
                     "max_iter": classifier[-1].max_iter}


def _write_outputs(folder, final, plan, history, metrics, manifest):
    """Writes the fine-tune's model, history, report, run.json and manifest to `folder`;
    returns the test metrics.

    The report (metrics.json, report.md/html, figures) evaluates the final model once with
    the whole history, so its learning curves and fit diagnosis span every phase.
    """
    folder.save_model(final, "model.keras")
    folder.write_text("history.csv", history_csv(history))
    if plan.data.size("test"):
        columns = {k: v for k, v in history.items() if None not in v}
        report = evaluate(_scorer(final, plan.recipe), plan.data,
                          history=columns if "val_loss" in columns else None, out=folder)
        metrics = _plain(report.metrics)
    else:
        folder.write_json("metrics.json", metrics)
    run = folder.read_json(f"phase-{plan.phases[-1].number}/run.json")
    folder.write_json("run.json", {
        **run, "kind": "finetune", "manifest": MANIFEST, "model": manifest["source"],
        "epochs_completed": len(history.get("phase", [])),
        "train_seconds": round(sum(p["seconds"] for p in manifest["phases"]), 2),
        # the test figures of `kerascnn.train`'s run.json, for the fine-tuned model
        "test_accuracy": metrics.get("accuracy"),
        **headline(metrics, "test_"),
    })
    _record_test_metrics(manifest, metrics)
    folder.write_json(MANIFEST, manifest)
    return metrics


def _record_test_metrics(manifest, metrics):
    """Puts the headline test metrics in the manifest."""
    manifest["test_accuracy"] = metrics.get("accuracy")
    manifest["test_metrics"] = headline(metrics)


def _scorer(model, recipe):
    """The model as `kerascnn.evaluate` should read its outputs: a classifier trained with a
    hinge loss outputs class scores, which it learns from the loss compiled in."""
    if recipe.task == "regression" or _head(recipe) == "softmax":
        return model
    scorer = keras.Model(model.inputs, model.outputs, name=model.name)
    scorer.compile(loss=losses.get_loss(recipe.task, recipe.loss))
    return scorer


def _append(history, phase_history, number):
    """Appends a phase's history to the fine-tune's, its rows marked in a "phase" column (a
    metric the earlier phases lacked is None there)."""
    length = len(next(iter(phase_history.values()), []))
    for key, values in phase_history.items():
        history.setdefault(key, [None] * len(history.get("phase", []))).extend(values)
    history.setdefault("phase", []).extend([number] * length)


def _plain(metrics):
    """Metrics as JSON-ready floats (drops arrays such as confusion matrices)."""
    return {k: float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v
            for k, v in (metrics or {}).items() if not isinstance(v, np.ndarray)}


def _source_classes(model, provenance):
    """The source's classes for finetune.json: their names when its data set is known."""
    _, backbone = split_network(model)
    count = int(backbone.get_layer(surgery.find_classifiers(model)[0]).output.shape[-1])
    data = (provenance.get("manifest") or {}).get("data") or {}
    names = KERAS_DATASETS.get(data.get("name")) if isinstance(data, dict) else None
    if names and len(names) == count:
        return dict(enumerate(names))
    return f"{count} classes (names not recorded with the source)"
