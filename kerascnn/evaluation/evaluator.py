"""`evaluate`: metrics, figures, fit diagnosis and uncertainty of a model in one report."""

import csv
import functools
import json
import os

import keras
import numpy as np

from kerascnn import losses
from kerascnn.data import load as load_data
from kerascnn.data.dataset import predict
from kerascnn.errors import InputError, InputTypeError
from kerascnn.evaluation import diagnosis as diagnosis_lib
from kerascnn.evaluation import metrics as metrics_lib
from kerascnn.evaluation import plots
from kerascnn.evaluation import uncertainty as uncertainty_lib
from kerascnn.evaluation.report import EvaluationReport
from kerascnn.evaluation.tta import check_tta, with_tta
from kerascnn.run_folder import MANIFEST, RunFolder, RunFolderError

SINGLE, MC_DROPOUT, ENSEMBLE = "single model", "mc dropout", "ensemble"
REPORT_FILES = ("metrics.json", "report.md", "report.html")
RUN_KINDS = ("train", "finetune")  # run folders holding a model.keras and a run.json


def evaluate(model, data=None, *, history=None, mc_dropout=0, ensemble=None, out=None,
             class_names=None, top_k=None, batch_size=256, seed=0, fit_thresholds=None,
             data_dir=None, split_seed=None, task=None, tta=None):
    """Evaluates a classifier or regressor on test data: how good, where it fails, how far
    to trust it.

    A run folder is the unit of evaluation: `evaluate(run_dir)` reloads the run's data as
    its run.json records it (source, load arguments, seed) and checks that the test split is
    the one the run held out (by the SHA-256 of its example positions and labels). It never
    writes outside its `out`: a streamed folder is reloaded without the run's `cache` folder
    (same pixels; a path read from run.json is not written to). A model
    file inside a run folder is scored on that same split: a source given by name is loaded
    with the run's split seed, and a `Data` whose test split differs is refused, so a model
    is never scored on the examples it was trained or validated on.

    A classifier trained with a hinge loss outputs raw class scores: it is scored on their
    argmax, and the metrics that need probabilities (log loss, ECE, confidence, uncertainty)
    are skipped with a note. A regressor is scored with MAE, RMSE and R² (scikit-learn).

    Args:
        model: a `keras.Model` ending in a softmax (or one sigmoid for two classes), a model
            trained by kerascnn with a hinge or regression loss (linear output), the path
            of a `.keras` file, or a run folder written by `kerascnn.train` (its model.keras,
            and its history.csv when `history` is None).
        data: an `(x, y)` tuple of arrays (integer labels, or float targets for
            regression), a `kerascnn.data.Data` (its test split is used), anything
            `kerascnn.data.load` accepts, or None for a run folder's own data.
        history: training history (keras `History`, dict of lists or path to a history CSV)
            for learning curves and the fit diagnosis.
        mc_dropout: number of Monte-Carlo dropout passes (0 = off, else at least 2).
        ensemble: models or `.keras` paths (at least 2) whose mean prediction is compared
            with `model`.
        out: folder for metrics.json, report.md, report.html and the PNGs (None = no files).
        class_names: class names, overriding those of `data`.
        top_k: k of the top-k accuracy (default min(5, classes - 1)).
        batch_size: prediction batch size.
        seed: seed of the MC-dropout masks.
        fit_thresholds: a `FitThresholds` for the diagnosis (default `FitThresholds()`).
        data_dir: where offline copies of named data sets lie (else $KERASCNN_DATA_DIR), when
            `data` (or a run's recorded source) is loaded by name.
        split_seed: the seed that splits a source without its own test split, when `data` is
            loaded by name (default 0); for a run folder, the run's own seed, and any other
            value is refused.
        task: "classification" or "regression"; None reads it from the run folder's
            recipe, the `Data`, or the model's compiled loss (classification otherwise).
        tta: test-time augmentation of `model`'s predictions: None, "flip" (the mean over
            each image and its left-right mirror) or "flip_shift" (also over the image
            shifted by a pixel; see kerascnn.evaluation.tta), recorded as metrics["tta"].

    Returns:
        An `EvaluationReport`.

    Raises:
        ValueError: for a model whose output size differs from the number of classes, outputs
            that are not probabilities, labels that are not class indices, or bad options;
            for data whose test split is not the one of the model's run.
    """
    _check_options(mc_dropout, ensemble, tta)
    model, data, history, run = _resolve_run(model, data, history, data_dir, split_seed)
    columns = diagnosis_lib.load_history(history) if history is not None else None
    model = _load_model(model)
    outputs_kind = _outputs_kind(task, run, model, data)
    model = with_tta(model, tta)
    _check_predictors(outputs_kind, mc_dropout, ensemble)
    if outputs_kind == "values":
        x, y, _ = _test_arrays(data, None, data_dir, split_seed, "regression")
        metrics, figures = _regression(model, x, y, batch_size)
    else:
        members = [_load_model(member) for member in ensemble or []]
        x, y, names = _classification_test(
            data, [model, *members], class_names, data_dir, split_seed)
        mc = uncertainty_lib.monte_carlo_model(model, seed=seed) if mc_dropout else None
        metrics, figures, probabilities = _classification(
            model, x, y, names, top_k, batch_size, scores=outputs_kind == "scores")
        if probabilities is not None:
            predictors = _predictors(metrics, probabilities, x, y, batch_size, mc=mc,
                                     passes=mc_dropout, members=members)
            metrics["uncertainty"] = {label: summary for label, (summary, *_) in
                                      predictors.items()}
            figures.update(_probability_figures(metrics, predictors, x))
    if tta:
        metrics["tta"] = tta
    return _finish(metrics, figures, columns, fit_thresholds, out)


def _check_options(mc_dropout, ensemble, tta):
    """Refuses an MC-dropout count, an ensemble or a test-time augmentation that cannot be
    used."""
    check_tta(tta)
    if isinstance(mc_dropout, bool) or not isinstance(mc_dropout, int) or mc_dropout < 0 or (
            mc_dropout == 1):
        raise InputError(
            f"mc_dropout must be 0 (off) or a number of passes >= 2; got {mc_dropout!r}.")
    if ensemble is not None and len(ensemble) < 2:
        raise InputError(
            f"An ensemble needs at least 2 models; got {len(ensemble)}. Pass ensemble=None.")


def _resolve_run(model, data, history, data_dir, split_seed):
    """(model, data, history, run record or None): a run folder stands for its model.keras,
    its history.csv and its test data; a model file inside one is scored on that test data."""
    run = _run_record(model)
    if run is None:
        if data is None:
            raise InputError("evaluate needs `data` (a source, a Data or (x, y)) unless "
                             "`model` is a run folder written by kerascnn.train.")
        return model, data, history, None
    if run["is_folder"]:
        model = os.path.join(run["folder"], "model.keras")
        if history is None:
            history = _run_history(run["folder"])
    return model, _run_data(run, data, data_dir, split_seed), history, run


def _run_record(model):
    """The run.json of the run folder `model` is (or holds `model`), or None."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    path = os.path.abspath(os.fspath(model))
    is_folder = os.path.isdir(path)
    folder = path if is_folder else os.path.dirname(path)
    manifest, record = os.path.join(folder, MANIFEST), os.path.join(folder, "run.json")
    if not (os.path.isfile(manifest) and os.path.isfile(record)):
        if is_folder:
            raise RunFolderError(
                f"{path} is a folder but not a run folder written by kerascnn.train (no "
                f"{MANIFEST} and run.json); pass a .keras file, or the folder of a run.")
        return None
    try:
        with open(manifest, encoding="utf-8") as f:
            kind = json.load(f)["kind"]
        with open(record, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError(f"{folder} has an unreadable {MANIFEST} or run.json; pass the "
                             "model file and its test data explicitly.") from None
    if kind not in RUN_KINDS:
        if is_folder:
            raise RunFolderError(f"{path} holds a {kind} run, not a trained model; pass a "
                                 ".keras file or a train run folder.")
        return None
    if is_folder:
        RunFolder(folder, kind).path_of("model.keras")  # not a link leaving the folder
    return {**run, "folder": folder, "is_folder": is_folder}


def _run_history(folder):
    """The run's history.csv when it has a validation loss to diagnose the fit with, else None."""
    path = os.path.join(folder, "history.csv")
    if not os.path.isfile(path):
        return None
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    return path if "val_loss" in header else None


def _run_data(run, data, data_dir, split_seed):
    """The test data of the run `run`: its own split, reloaded or checked."""
    record = run.get("data") or {}
    source, splits = record.get("source"), record.get("splits")
    if not isinstance(source, dict) or not isinstance(splits, dict):
        # A run folder from before runs recorded their data: nothing to check against.
        return data
    folder, seed = run["folder"], source.get("seed")
    if split_seed is not None and split_seed != seed:
        raise RunFolderError(
            f"the run in {folder} split its data with seed {seed}; split_seed={split_seed} "
            "(--seed) would score the model on examples it was trained or validated on. "
            "Leave it out to use the run's own test split.")
    if "test" not in splits:
        raise RunFolderError(f"the run in {folder} had no test split; pass test data "
                             "explicitly, as (x, y) arrays.")
    if isinstance(data, tuple):
        return data  # explicit test arrays: the caller vouches for them
    if data is None or isinstance(data, (str, os.PathLike)):
        data = _reload_run_data(source, data, folder, data_dir)
    if hasattr(data, "split_names"):
        _check_test_split(data, splits["test"], folder, seed)
    return data


def _reload_run_data(source, name, folder, data_dir):
    """The run's data loaded as its run.json records it, from `name` or the recorded source."""
    if name is None:
        name = source.get("source")
        if source.get("loaded_by") == "arrays" or name is None:
            raise RunFolderError(
                f"the run in {folder} was trained on arrays passed from Python; pass its test "
                "data: evaluate(run_dir, data).")
    else:
        name = os.fspath(name)
    # Not the recorded cache: a path read from run.json may point anywhere, and loading
    # writes there. The cache only saves decoding time over many epochs; evaluation reads
    # each file once, and gets the same pixels without it.
    arguments = {k: source[k] for k in ("validation_split", "test_split", "kind", "task",
                                        "stream")
                 if source.get(k) is not None}
    try:
        return load_data(name, data_dir=data_dir or source.get("data_dir"),
                             seed=source.get("seed"), **arguments)
    except FileNotFoundError as error:
        raise RunFolderError(
            f"cannot reload the data of the run in {folder} ({name!r}): {error}. Pass "
            "data_dir (--data-dir) or the data itself.") from None


def _check_test_split(data, test, folder, seed):
    """Refuses a `Data` whose test split is not `test`, the one the run held out."""
    if data.split_digests().get("test", {}).get("sha256") != test["sha256"]:
        raise RunFolderError(
            f"the test split of {data.name} ({data.size('test')} examples) is not the one the "
            f"run in {folder} held out ({test['size']} examples, split with seed "
            f"{seed}): the model would be scored on examples it was trained or validated on. "
            f"Evaluate the run folder itself (evaluate({folder!r})) or load the data with "
            f"seed={seed}.")


def _load_model(model):
    """A keras model, loaded first when given as a path."""
    if isinstance(model, (str, os.PathLike)):
        return keras.saving.load_model(model)
    if not isinstance(model, keras.Model):
        raise InputTypeError(
            f"Expected a keras.Model or the path of a .keras file; got {type(model).__name__}.")
    return model


def _outputs_kind(task, run, model, data):
    """What the model outputs: "probabilities", "scores" (hinge losses) or "values"
    (regression), from `task`, the run's recipe, the data's task or the model's loss."""
    if task is not None and task not in losses.TASKS:
        raise InputError(f"task must be one of {losses.TASKS} or None; got task={task!r}.")
    recipe = (run or {}).get("recipe") or {}
    compiled = losses.output_kind(model)
    task = task or recipe.get("task") or getattr(data, "task", None) or (
        "regression" if compiled == "values" else "classification")
    if task == "regression":
        return "values"
    if recipe.get("task") == "classification" and recipe.get("loss"):
        return ("probabilities" if losses.output_activation(task, recipe["loss"]) == "softmax"
                else "scores")
    return "scores" if compiled == "scores" else "probabilities"


def _check_predictors(outputs_kind, mc_dropout, ensemble):
    """Refuses MC dropout and ensembles for a model without probabilities."""
    if outputs_kind != "probabilities" and (mc_dropout or ensemble is not None):
        raise InputError(
            "mc_dropout and ensemble summarise predicted probabilities; this model outputs "
            f"{'regression values' if outputs_kind == 'values' else 'raw class scores'}. "
            "Leave them out.")


def _test_arrays(data, class_names, data_dir=None, split_seed=None, task="classification"):
    """(x, y, class names or None) of the test split of `data`."""
    if isinstance(data, tuple):
        if len(data) != 2:
            raise InputError(f"`data` as a tuple must be (x, y); got {len(data)} items.")
        x, y = data
        names = class_names
    else:
        if not hasattr(data, "arrays"):
            data = load_data(data, data_dir=data_dir, task=task,
                                 seed=0 if split_seed is None else split_seed)
        x, y = data.arrays("test")
        names = class_names if class_names is not None else data.class_names
    if not hasattr(x, "as_dataset"):  # a streamed split stays on disk (dataset.predict)
        x = np.asarray(x)
    return x, np.asarray(y), None if names is None else [str(n) for n in names]


def _output_width(model, x):
    """Number of output values per example of `model`."""
    try:
        shape = model.output_shape
    except AttributeError:  # a subclassed model declares no output shape: run one example
        shape = model.predict(np.asarray(x[:1]), verbose=0).shape
    return int(shape[-1])


def _regression(model, x, y, batch_size):
    """(metrics, figures) of a regressor: MAE, RMSE and R², predicted against true values."""
    width = _output_width(model, x)
    y = metrics_lib.check_targets(y, width)
    predictions = model.predict(x, batch_size=batch_size, verbose=0).reshape(len(x), -1)
    metrics = {"model": model.name, "task": "regression",
               **metrics_lib.regression_metrics(y, predictions),
               "notes": [f"Regression on {width} target(s): MAE, RMSE and R² by scikit-learn, "
                         "averaged uniformly over the targets; R² = 1 is perfect, 0 is as good "
                         "as predicting the test mean."]}
    figures = {"predictions.png": functools.partial(plots.predictions_png, y, predictions,
                                                    metrics["target_names"])}
    return metrics, figures


def _classification_test(data, models, class_names, data_dir, split_seed):
    """(x, y, class names) of the test split, checked against the outputs of `models`."""
    x, y, names = _test_arrays(data, class_names, data_dir, split_seed)
    widths = [_output_width(model, x) for model in models]
    # Without class names the model says how many classes there are (1 sigmoid = 2).
    num_classes = len(names) if names is not None else max(widths[0], 2)
    names = names if names is not None else [str(i) for i in range(num_classes)]
    for width in widths:
        metrics_lib.check_output_width(width, num_classes)
    y = metrics_lib.check_labels(y, num_classes)
    if len(x) != len(y):
        raise InputError(f"Got {len(x)} inputs but {len(y)} labels.")
    return x, y, names


def _classification(model, x, y, names, top_k, batch_size, scores):
    """(metrics, figures, probabilities) of a classifier's predictions; probabilities are
    None for raw class scores (`scores`)."""
    outputs = predict(model, x, batch_size)
    if scores:
        predictions = np.asarray(outputs, dtype=np.float64).reshape(len(x), -1)
    else:
        predictions = metrics_lib.as_probabilities(outputs, len(names))
    metrics = metrics_lib.classification_metrics(
        y, predictions, class_names=names, top_k=top_k, scores=scores)
    metrics = {"model": model.name, "task": "classification", **metrics,
               "notes": _notes(metrics, outputs, x)}
    figures = {"confusion_matrix.png": functools.partial(
        plots.confusion_matrix_png, metrics["confusion_matrix"], names)}
    return metrics, figures, None if scores else predictions


def _notes(metrics, outputs, x):
    """Plain-language notes on anything that changes how the numbers read."""
    notes = []
    if metrics["outputs"] == "scores":
        notes.append(
            "The model outputs raw class scores (trained with a multiclass hinge loss): the "
            "prediction is the class of highest score. Log loss, calibration (ECE), accuracy "
            "against confidence and the most confident mistakes need probabilities and are "
            "skipped.")
    elif np.ndim(outputs) == 1 or np.shape(outputs)[-1] == 1:
        notes.append(
            "The model has one sigmoid output p = P(class "
            f"'{metrics['class_names'][1]}'); it was turned into two probabilities (1 - p, p).")
    if metrics["absent_classes"]:
        notes.append(
            f"Classes absent from the test data: {', '.join(metrics['absent_classes'])}. Their "
            "recall is undefined (their F1 too unless the model predicts them) and left out "
            "of the macro averages; their confusion-matrix rows are empty.")
    if metrics["never_predicted"]:
        notes.append(
            f"Classes the model never predicts: {', '.join(metrics['never_predicted'])}. Their "
            "precision is undefined and left out of the macro average.")
    if metrics["most_confident_mistakes"] and not _is_image_batch(x):
        notes.append(f"Inputs of shape {x.shape[1:]} are not images: no mistakes gallery.")
    return notes


def _is_image_batch(x):
    return x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))


def _predictors(metrics, probabilities, x, y, batch_size, mc=None, passes=0, members=()):
    """{predictor: (summary, entropy, correct)} of the single model and, when asked, MC
    dropout (`mc` = (model, stochastic layers), `passes` times) and the ensemble `members`;
    entropy and correct are per example."""
    names, top_k = metrics["class_names"], metrics["top_k"]
    entropy = uncertainty_lib.predictive_entropy(probabilities)
    predictors = {SINGLE: (
        uncertainty_lib.predictor_summary(metrics, y, probabilities, entropy), entropy,
        probabilities.argmax(axis=1) == y)}
    if mc is not None:
        mc_model, stochastic_layers = mc
        samples = _sample(x, [mc_model] * passes, len(names), batch_size)
        predictors[MC_DROPOUT] = _stochastic_predictor(
            samples, y, names, top_k, passes=passes, stochastic_layers=stochastic_layers)
    if members:
        samples = _sample(x, members, len(names), batch_size)
        predictors[ENSEMBLE] = _stochastic_predictor(
            samples, y, names, top_k, members=[member.name for member in members],
            member_accuracy=[float(np.mean(s.argmax(axis=1) == y)) for s in samples],
            vote_accuracy=float(np.mean(uncertainty_lib.majority_vote(samples) == y)))
    return predictors


def _sample(x, models, num_classes, batch_size):
    """The probabilities each of `models` predicts, stacked: (models, examples, classes)."""
    return np.stack([metrics_lib.as_probabilities(predict(model, x, batch_size), num_classes)
                     for model in models])


def _stochastic_predictor(samples, y, names, top_k, **details):
    """(summary, entropy, correct) of the mean of stochastic predictions, `details` added to
    the summary."""
    stats = uncertainty_lib.sample_statistics(samples)
    metrics = metrics_lib.classification_metrics(y, stats["mean"], class_names=names, top_k=top_k)
    summary = {
        **uncertainty_lib.predictor_summary(metrics, y, stats["mean"], stats["entropy"]),
        "mean_variance": float(stats["variance"].mean()),
        "mean_mutual_information": float(stats["mutual_information"].mean()),
        **details,
    }
    return summary, stats["entropy"], stats["mean"].argmax(axis=1) == y


def _probability_figures(metrics, predictors, x):
    """The figures of predicted probabilities, drawn lazily by the report (only if HTML or
    files are asked for): reliability, confidence and, for images, the mistakes gallery."""
    figures = {
        "reliability.png": functools.partial(
            plots.reliability_png, metrics["reliability"], metrics["ece"]),
        "confidence.png": functools.partial(plots.confidence_png, {
            label: (summary["accuracy_by_coverage"], entropy, correct)
            for label, (summary, entropy, correct) in predictors.items()}),
    }
    mistakes = metrics["most_confident_mistakes"]
    if mistakes and _is_image_batch(x):
        figures["mistakes.png"] = functools.partial(
            plots.mistakes_png,
            [x[e["index"]] for e in mistakes],
            [f"#{e['index']} true {e['true']}\npredicted {e['predicted']} "
             f"({e['confidence']:.2f})" for e in mistakes])
    return figures


def _finish(metrics, figures, columns, fit_thresholds, out):
    """Adds the fit diagnosis (with a history), builds the report and saves it to `out`."""
    diagnosis = None
    if columns is not None:
        diagnosis = diagnosis_lib.diagnose(columns, fit_thresholds)
        metrics["diagnosis"] = diagnosis.to_dict()
        figures["learning_curves.png"] = functools.partial(
            plots.learning_curves_png, columns, diagnosis)
    report = EvaluationReport(metrics, figures, diagnosis)
    if out is not None:
        _save(report, out)
    return report


def _save(report, out):
    """Saves the report in a run folder (a RunFolder, or a path made one of kind "evaluation"),
    claiming each file it writes."""
    if not isinstance(out, RunFolder):
        path = os.path.abspath(os.fspath(out))
        parent = os.path.dirname(path)
        if os.path.isfile(os.path.join(parent, MANIFEST)):
            # Inside another run folder (runs/lenet5/eval): claimed there as a child, so the
            # run still owns everything it holds.
            with open(os.path.join(parent, MANIFEST), encoding="utf-8") as f:
                kind = json.load(f).get("kind")
            with RunFolder(parent, kind) as run, run.child(os.path.basename(path),
                                                           "evaluation") as folder:
                return _save(report, folder)
        with RunFolder(path, "evaluation") as folder:
            return _save(report, folder)
    for name in [*report.figures, *REPORT_FILES]:
        out.claim(name)
    return report.save(out.path)
