"""`evaluate` end to end on really trained models: numbers, files, notes and refusals."""

import base64
import csv
import json
import os
import re

import keras
import numpy as np
import pytest
from sklearn import metrics as sk

from kerascnn import evaluation
from kerascnn.evaluation import uncertainty

FIGURES = ["confusion_matrix.png", "reliability.png", "confidence.png", "mistakes.png",
           "learning_curves.png"]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, trained, second_model, digits):
    model, history = trained
    _, _, x_test, y_test = digits
    out = tmp_path_factory.mktemp("report")
    report = evaluation.evaluate(model, (x_test, y_test), history=history, mc_dropout=3,
                                 ensemble=[model, second_model], out=str(out))
    return report, out


def test_metrics_match_scikit_learn_on_the_model_predictions(full_report, trained, digits):
    report, _ = full_report
    model, _ = trained
    _, _, x_test, y_test = digits
    probabilities = model.predict(x_test, verbose=0).astype("float64")
    probabilities /= probabilities.sum(axis=1, keepdims=True)  # float32 rounding
    y_pred = probabilities.argmax(axis=1)
    m = report.metrics
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y_test, y_pred))
    assert m["top_k"] == 5
    assert m["top_k_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(y_test, probabilities, k=5, labels=range(10)))
    np.testing.assert_array_equal(m["confusion_matrix"], sk.confusion_matrix(y_test, y_pred))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y_test, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(sk.f1_score(y_test, y_pred, average="weighted"))
    precision, recall, f1, support = sk.precision_recall_fscore_support(y_test, y_pred)
    for c, values in enumerate(m["per_class"].values()):
        assert (values["precision"], values["recall"], values["f1"]) == pytest.approx(
            (precision[c], recall[c], f1[c]))
        assert values["support"] == support[c]
    assert m["log_loss"] == pytest.approx(sk.log_loss(y_test, probabilities), rel=1e-5)
    assert 0 <= m["ece"] <= 1 and m["ece_bins"] == 15


def test_files_are_written_and_metrics_json_is_strict_json(full_report):
    report, out = full_report
    expected = sorted(FIGURES + ["metrics.json", "report.md", "report.html"])
    run_files = [".kerascnn-run.json", ".kerascnn-run.lock"]  # the run folder's own manifest and lock
    assert sorted(os.listdir(out)) == sorted(expected + run_files)  # no temporary file left behind
    assert sorted(os.path.basename(p) for p in report.files) == expected
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def refuse(constant):
        raise AssertionError(f"metrics.json holds {constant}")

    stored = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert stored == report.metrics
    for key in ("accuracy", "top_k_accuracy", "confusion_matrix", "macro_f1", "weighted_f1",
                "per_class", "ece", "log_loss", "diagnosis", "uncertainty"):
        assert key in stored
    assert set(stored["per_class"]["3"]) == {"precision", "recall", "f1", "support"}


def test_html_is_self_contained_and_markdown_links_the_pngs(full_report):
    _, out = full_report
    page = (out / "report.html").read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(FIGURES)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(
        (out / name).read_bytes() for name in FIGURES)
    assert "http" not in page.replace("<!DOCTYPE html>", "")
    markdown = (out / "report.md").read_text()
    assert sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)) == sorted(FIGURES)
    for text in ("15 equal-width bins", "k = 5", "Rules: Underfitting"):
        assert text in markdown


def test_uncertainty_compares_mc_dropout_and_ensemble_with_the_single_model(
        full_report, trained, second_model, digits):
    report, _ = full_report
    model, _ = trained
    _, _, x_test, y_test = digits
    u = report.metrics["uncertainty"]
    assert list(u) == ["single model", "mc dropout", "ensemble"]
    assert u["single model"]["accuracy"] == report.metrics["accuracy"]
    assert u["mc dropout"]["passes"] == 3 and u["mc dropout"]["stochastic_layers"] == ["dropout"]
    assert u["mc dropout"]["mean_variance"] > 0

    members = np.stack([m.predict(x_test, verbose=0) for m in (model, second_model)])
    mean = members.mean(axis=0)
    assert u["ensemble"]["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y_test))
    assert u["ensemble"]["log_loss"] == pytest.approx(sk.log_loss(y_test, mean), rel=1e-5)
    assert u["ensemble"]["member_accuracy"] == pytest.approx(
        [np.mean(p.argmax(axis=1) == y_test) for p in members])
    assert u["ensemble"]["mean_variance"] == pytest.approx(
        members[:, np.arange(len(y_test)), mean.argmax(axis=1)].var(axis=0).mean(), rel=1e-4)
    entropy = uncertainty.predictive_entropy(mean.astype("float64"))
    wrong = mean.argmax(axis=1) != y_test
    assert u["ensemble"]["error_detection_auroc"] == pytest.approx(
        sk.roc_auc_score(wrong, entropy), abs=1e-4)
    assert report.diagnosis.verdict in ("underfitting", "overfitting", "good fit")
    assert report.metrics["diagnosis"]["verdict"] == report.diagnosis.verdict
    summary = report.summary()
    assert f"accuracy {report.metrics['accuracy']:.4f}" in summary and "ensemble" in summary


def test_model_and_history_from_files_give_the_same_report(tmp_path, trained, digits):
    model, history = trained
    _, _, x_test, y_test = digits
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    history_path = tmp_path / "history.csv"
    keys = list(history.history)
    with open(history_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch"] + keys)
        writer.writerows([e] + [history.history[k][e] for k in keys] for e in history.epoch)
    from_files = evaluation.evaluate(str(model_path), (x_test, y_test), history=history_path)
    in_memory = evaluation.evaluate(model, (x_test, y_test), history=history)
    for key in ("accuracy", "top_k_accuracy", "macro_f1", "log_loss", "ece"):
        assert from_files.metrics[key] == pytest.approx(in_memory.metrics[key], rel=1e-6)
    assert from_files.diagnosis.verdict == in_memory.diagnosis.verdict
    assert from_files.files == []  # nothing written without `out`


def test_a_data_name_or_object_supplies_the_test_split_and_class_names(trained):
    from kerascnn import data

    model, _ = trained
    raw_scale = keras.Sequential(  # kerascnn.data keeps raw 0..16 pixel values
        [keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 16), model], name="raw_digits")
    digits = data.load("digits")
    x_test, y_test = digits.arrays("test")
    by_name = evaluation.evaluate(raw_scale, "digits")
    by_object = evaluation.evaluate(raw_scale, digits)
    by_arrays = evaluation.evaluate(model, (x_test / 16, y_test))
    assert by_name.metrics["num_examples"] == len(y_test)
    assert by_name.metrics["confusion_matrix"] == by_arrays.metrics["confusion_matrix"]
    for key in ("accuracy", "macro_f1", "log_loss"):
        assert by_name.metrics[key] == by_object.metrics[key]
        assert by_name.metrics[key] == pytest.approx(by_arrays.metrics[key], rel=1e-5)
    assert list(by_name.metrics["per_class"]) == digits.class_names
    renamed = evaluation.evaluate(raw_scale, digits, class_names=[f"d{i}" for i in range(10)])
    assert list(renamed.metrics["per_class"]) == [f"d{i}" for i in range(10)]


def test_binary_sigmoid_model_is_converted_and_said_so(sigmoid_model, digits):
    _, _, x_test, y_test = digits
    y = (y_test == 8).astype(int)
    report = evaluation.evaluate(sigmoid_model, (x_test, y), class_names=["other", "eight"])
    p = sigmoid_model.predict(x_test, verbose=0)[:, 0].astype("float64")
    assert report.metrics["accuracy"] == pytest.approx(sk.accuracy_score(y, p > 0.5))
    assert report.metrics["log_loss"] == pytest.approx(sk.log_loss(y, p), rel=1e-5)
    assert report.metrics["per_class"]["eight"]["recall"] == pytest.approx(
        sk.recall_score(y, p > 0.5), abs=1e-12)
    assert "one sigmoid output" in report.metrics["notes"][0]
    assert "one sigmoid output" in report.to_markdown()


def test_a_class_absent_from_the_test_data_is_reported(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    keep = y_test != 9
    report = evaluation.evaluate(model, (x_test[keep], y_test[keep]))
    assert report.metrics["absent_classes"] == ["9"]
    assert report.metrics["per_class"]["9"]["recall"] is None
    assert report.metrics["per_class"]["9"]["support"] == 0
    y_pred = model.predict(x_test[keep], verbose=0).argmax(axis=1)
    assert report.metrics["macro_f1"] == pytest.approx(
        sk.f1_score(y_test[keep], y_pred, average="macro"))
    assert any("absent from the test data: 9" in note for note in report.metrics["notes"])
    assert "undefined" in report.to_html()


def test_output_size_and_class_count_mismatch_names_both_numbers(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    with pytest.raises(ValueError, match=r"outputs 10 values .* has 5 classes"):
        evaluation.evaluate(model, (x_test, y_test), class_names=list("abcde"))
    with pytest.raises(ValueError, match="Label 12 is not a class index of a 10-class model"):
        evaluation.evaluate(model, (x_test, np.where(y_test == 3, 12, y_test)))


def test_an_ensemble_member_with_another_output_size_is_refused(trained, sigmoid_model, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    with pytest.raises(ValueError, match=r"outputs 1 values .* has 10 classes"):
        evaluation.evaluate(model, (x_test, y_test), ensemble=[model, sigmoid_model])


def test_bad_options_and_logit_models_are_refused(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    with pytest.raises(ValueError, match="mc_dropout must be 0"):
        evaluation.evaluate(model, (x_test, y_test), mc_dropout=1)
    with pytest.raises(ValueError, match="at least 2 models; got 1"):
        evaluation.evaluate(model, (x_test, y_test), ensemble=[model])
    logits = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(10, kernel_initializer="ones")])
    with pytest.raises(ValueError, match="not probabilities"):
        evaluation.evaluate(logits, (x_test, y_test))
    with pytest.raises(ValueError, match="has no dropout layer"):
        evaluation.evaluate(logits, (x_test, y_test), mc_dropout=2)
