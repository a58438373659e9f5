"""Every metric against scikit-learn (and ECE against NumPy) on hand-made predictions."""

import numpy as np
import pytest
from sklearn import metrics as sk

from kerascnn.evaluation import metrics


def informative_probabilities(y, num_classes, strength, seed):
    """Random softmax probabilities that favour the true class by `strength` logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), num_classes)) + strength * np.eye(num_classes)[y]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def binary_case():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    probabilities = informative_probabilities(y, 2, 1.5, seed=1)
    # Confidences exactly on bin edges, exact ties and certainty must be handled alike.
    edges = np.linspace(0, 1, 16)[8:15]
    probabilities[:21] = np.repeat(np.stack([edges, 1 - edges], axis=1), 3, axis=0)
    probabilities[21:23] = [[0.5, 0.5], [0.0, 1.0]]
    return y, probabilities


def multiclass_case():
    y = np.random.default_rng(2).integers(0, 7, 500)
    return y, informative_probabilities(y, 7, 2.0, seed=3)


def imbalanced_case():
    """Class 0 dominates, class 3 never occurs, class 4 is never predicted."""
    y = np.repeat([0, 1, 2, 4], [400, 40, 10, 6])
    probabilities = informative_probabilities(y, 5, 1.0, seed=4)
    probabilities[:, 4] = 0.0
    probabilities[np.arange(0, len(y), 7), 3] += 3.0  # class 3 is predicted now and then
    return y, probabilities / probabilities.sum(axis=1, keepdims=True)


CASES = {"binary": binary_case, "multiclass": multiclass_case, "imbalanced": imbalanced_case}


def ece_reference(y, probabilities, num_bins):
    """Expected calibration error written plainly, one bin (lo, hi] at a time."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y
    edges = np.linspace(0, 1, num_bins + 1)
    total = 0.0
    for index, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (confidence > lo) & (confidence <= hi)
        if index == 0:
            inside |= confidence == 0
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_metric_matches_scikit_learn(case):
    y, probabilities = CASES[case]()
    num_classes = probabilities.shape[1]
    labels = list(range(num_classes))
    y_pred = probabilities.argmax(axis=1)
    result = metrics.classification_metrics(y, probabilities)

    assert result["accuracy"] == pytest.approx(sk.accuracy_score(y, y_pred))
    k = result["top_k"]
    scores = probabilities[:, 1] if num_classes == 2 else probabilities
    assert result["top_k_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(y, scores, k=k, labels=labels))
    counts = sk.confusion_matrix(y, y_pred, labels=labels)
    np.testing.assert_array_equal(result["confusion_matrix"], counts)
    normalized = sk.confusion_matrix(y, y_pred, labels=labels, normalize="true")
    for row, present, reference in zip(
            result["confusion_matrix_normalized"], counts.sum(axis=1) > 0, normalized):
        if present:
            np.testing.assert_allclose(row, reference)
        else:
            assert row is None

    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=np.nan)
    for index, (name, values) in enumerate(result["per_class"].items()):
        assert name == str(index)
        for metric, reference in (("precision", precision), ("recall", recall), ("f1", f1)):
            if np.isnan(reference[index]):
                assert values[metric] is None, (name, metric)
            else:
                assert values[metric] == pytest.approx(reference[index]), (name, metric)
        assert values["support"] == support[index]
    for average in ("macro", "weighted"):
        reference = sk.precision_recall_fscore_support(
            y, y_pred, labels=labels, average=average, zero_division=np.nan)
        for metric, value in zip(("precision", "recall", "f1"), reference[:3]):
            assert result[f"{average}_{metric}"] == pytest.approx(value)
    # The documented convention: macro F1 is scikit-learn's default macro F1.
    assert result["macro_f1"] == pytest.approx(sk.f1_score(y, y_pred, average="macro"))
    assert result["weighted_f1"] == pytest.approx(sk.f1_score(y, y_pred, average="weighted"))

    assert result["log_loss"] == pytest.approx(
        sk.log_loss(y, probabilities, labels=labels), rel=1e-9)
    assert result["ece_bins"] == 15
    assert result["ece"] == pytest.approx(ece_reference(y, probabilities, 15), abs=1e-12)
    assert sum(result["reliability"]["count"]) == len(y)


def test_imbalanced_case_names_absent_and_never_predicted_classes():
    result = metrics.classification_metrics(
        *imbalanced_case(), class_names=["cat", "dog", "fox", "owl", "yak"])
    assert result["absent_classes"] == ["owl"]
    assert result["never_predicted"] == ["yak"]
    assert result["per_class"]["owl"]["recall"] is None
    assert result["per_class"]["owl"]["precision"] == 0.0  # predicted, never right
    assert result["per_class"]["yak"]["precision"] is None
    assert result["per_class"]["yak"]["recall"] == 0.0
    assert result["confusion_matrix_normalized"][3] is None


def test_binary_sigmoid_outputs_give_the_same_metrics_as_scikit_learn_on_p():
    y = np.random.default_rng(5).integers(0, 2, 200)
    p = informative_probabilities(y, 2, 2.0, seed=6)[:, 1]
    probabilities = metrics.as_probabilities(p[:, None].astype("float32"), 2)
    np.testing.assert_allclose(probabilities[:, 0], 1 - p, atol=1e-6)
    result = metrics.classification_metrics(y, probabilities)
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(y, p > 0.5))
    assert result["log_loss"] == pytest.approx(sk.log_loss(y, p), rel=1e-5)
    assert result["top_k"] == 1
    assert result["macro_f1"] == pytest.approx(sk.f1_score(y, p > 0.5, average="macro"))


@pytest.mark.parametrize("num_classes, k", [(2, 1), (3, 2), (6, 5), (10, 5), (1000, 5)])
def test_default_top_k(num_classes, k):
    assert metrics.default_top_k(num_classes) == k


def test_most_confused_pairs_and_confident_mistakes():
    y, probabilities = multiclass_case()
    result = metrics.classification_metrics(y, probabilities)
    counts = np.array(result["confusion_matrix"])
    off_diagonal = counts - np.diag(np.diag(counts))
    observed = [pair["count"] for pair in result["most_confused"]]
    assert observed == sorted(off_diagonal.ravel(), reverse=True)[:5]
    first = result["most_confused"][0]
    true, predicted = int(first["true"]), int(first["predicted"])
    assert first["fraction_of_true"] == pytest.approx(counts[true, predicted] / counts[true].sum())

    wrong = probabilities.argmax(axis=1) != y
    expected = np.sort(probabilities.max(axis=1)[wrong])[::-1][:16]
    mistakes = result["most_confident_mistakes"]
    np.testing.assert_allclose([m["confidence"] for m in mistakes], expected)
    for mistake in mistakes:
        assert int(mistake["true"]) == y[mistake["index"]]
        assert int(mistake["predicted"]) == probabilities[mistake["index"]].argmax() != y[
            mistake["index"]]


def test_accuracy_by_coverage_keeps_the_most_confident_examples():
    y, probabilities = multiclass_case()
    curve = metrics.accuracy_by_coverage(y, probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y
    half = confidence >= np.median(confidence)  # 500 examples: the top 250 (no ties)
    assert curve["coverage"][4] == pytest.approx(0.5)
    assert curve["accuracy"][4] == pytest.approx(correct[half].mean())
    assert curve["accuracy"][-1] == pytest.approx(correct.mean())
    assert curve["min_confidence"][-1] == pytest.approx(confidence.min())


def test_wrong_output_width_names_both_numbers():
    with pytest.raises(ValueError, match=r"outputs 7 values .* has 10 classes"):
        metrics.as_probabilities(np.full((4, 7), 1 / 7), 10)


def test_logits_and_unnormalised_outputs_are_refused():
    with pytest.raises(ValueError, match="not probabilities"):
        metrics.as_probabilities(np.array([[2.0, -1.0, 0.5]]), 3)
    with pytest.raises(ValueError, match="sum to"):
        metrics.as_probabilities(np.array([[0.9, 0.9, 0.1]]), 3)


def test_labels_must_be_class_indices():
    probabilities = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match="Label 4 is not a class index"):
        metrics.classification_metrics([0, 1, 4], probabilities)
    with pytest.raises(ValueError, match="argmax"):
        metrics.classification_metrics(np.eye(4)[[0, 1, 2]], probabilities)
    with pytest.raises(ValueError, match="3 labels for 2 predictions"):
        metrics.classification_metrics([0, 1, 2], probabilities[:2])


@pytest.mark.parametrize("num_classes", [2, 7])
def test_raw_scores_are_scored_on_their_argmax_without_probability_metrics(num_classes):
    rng = np.random.default_rng(4)
    y = rng.integers(0, num_classes, 300)
    scores = 3 * rng.normal(size=(300, num_classes)) + 2 * np.eye(num_classes)[y]  # hinge scores
    m = metrics.classification_metrics(y, scores, scores=True, top_k=1)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, scores.argmax(axis=1)))
    assert m["top_k_accuracy"] == pytest.approx(m["accuracy"])  # k = 1, also for two classes
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, scores.argmax(axis=1), average="macro"))
    assert m["outputs"] == "scores" and m["most_confident_mistakes"] == []
    assert m["log_loss"] is m["ece"] is m["reliability"] is m["accuracy_by_coverage"] is None


def test_regression_metrics_are_scikit_learns_per_target_and_averaged():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(100, 3))
    predictions = y + rng.normal(scale=[0.1, 0.5, 2.0], size=(100, 3))
    m = metrics.regression_metrics(y, predictions, target_names=["a", "b", "c"])
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(y, predictions))
    assert m["rmse"] == pytest.approx(sk.root_mean_squared_error(y, predictions))
    assert m["r2"] == pytest.approx(sk.r2_score(y, predictions))
    assert m["per_target"]["c"]["r2"] == pytest.approx(sk.r2_score(y[:, 2], predictions[:, 2]))
    one = metrics.regression_metrics(y[:, 0], predictions[:, 0])  # a vector target
    assert (one["num_targets"], one["r2"]) == (1, pytest.approx(sk.r2_score(y[:, 0], predictions[:, 0])))
    with pytest.raises(ValueError, match="Class labels need a classifier"):
        metrics.regression_metrics(np.arange(100), predictions[:, 0])
