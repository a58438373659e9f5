"""The course's multiclass SVM (hinge) loss, and how a task and a loss choose the model's output."""

import json

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn import losses
from kerascnn.training import Recipe
from kerascnn.losses import MulticlassHinge


def svm_loss_numpy(scores, labels, margin=1.0, squared=False):
    """CS231n's multiclass SVM loss, an explicit loop over examples and wrong classes."""
    total = 0.0
    for row, label in zip(scores, labels):
        for j, score in enumerate(row):
            if j != label:
                violation = max(0.0, score - row[label] + margin)
                total += violation**2 if squared else violation
    return total / len(scores)


def test_the_cs231n_worked_example():
    # CS231n, "Linear classification": scores [3.2, 5.1, -1.7] for the true class 0 (cat)
    # give max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9.
    loss = MulticlassHinge()(np.array([[1.0, 0.0, 0.0]]), np.array([[3.2, 5.1, -1.7]]))
    assert float(loss) == pytest.approx(2.9, abs=1e-6)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_equals_the_numpy_reference_on_random_scores(squared, margin):
    rng = np.random.default_rng(3)
    scores = rng.normal(scale=2.0, size=(64, 7)).astype("float32")
    labels = rng.integers(0, 7, size=64)
    loss = MulticlassHinge(margin=margin, squared=squared)(np.eye(7)[labels], scores)
    assert float(loss) == pytest.approx(
        svm_loss_numpy(scores.astype(np.float64), labels, margin, squared), rel=1e-5)


def test_it_is_weston_watkins_not_keras_crammer_singer():
    # Two wrong classes over the margin: Weston–Watkins sums both, Crammer–Singer (Keras'
    # CategoricalHinge) takes the larger one only.
    y, s = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 2.0, 1.0]])
    assert float(MulticlassHinge()(y, s)) == pytest.approx(3.0 + 2.0)
    assert float(keras.losses.CategoricalHinge()(y, s)) == pytest.approx(3.0)


def test_the_loss_round_trips_through_a_saved_model(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(loss=losses.get_loss("classification", "squared_hinge"), optimizer="sgd")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, MulticlassHinge) and loaded.loss.squared
    assert losses.output_kind(loaded) == "scores"


@pytest.mark.parametrize("fields, message", [
    ({"loss": "mse"}, "is a regression loss: pass task='regression'"),
    ({"task": "regression", "loss": "hinge"}, "is a classification loss"),
    ({"loss": "hinge", "label_smoothing": 0.1}, "smooths cross-entropy targets"),
    ({"task": "regression", "label_smoothing": 0.1}, "'mse' takes none"),
    ({"task": "ranking"}, "task='ranking' is not supported"),
    ({"loss": "focal"}, "choose one of ('categorical_crossentropy', 'hinge'"),
])
def test_bad_task_and_loss_are_refused_in_one_line(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Recipe(**fields)


def test_a_softmax_model_is_refused_for_the_hinge_loss():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="ends in a softmax"):
        kerascnn.train(model, "digits", loss="hinge", epochs=1, verbose=0)


def test_hinge_training_gives_a_linear_classifier_scored_on_its_argmax(tmp_path):
    result = kerascnn.train("lenet5", "digits", loss="hinge", epochs=3, out=tmp_path,
                            verbose=0)
    head = result.model.get_layer("lenet5").get_layer("predictions")
    assert head.get_config()["activation"] == "linear"
    data = kerascnn.data.load("digits", validation_split=0.1, seed=0)
    x, y = data.arrays("test")
    scores = result.model.predict(x, verbose=0)
    assert scores.min() < 0 or scores.max() > 1  # raw scores, not probabilities
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == y))
    assert metrics["accuracy"] > 0.8
    assert metrics["log_loss"] is None and metrics["ece"] is None
    assert any("raw class scores" in note for note in metrics["notes"])
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["loss"], run["recipe"]["loss"]) == ("hinge", "hinge")
    # The run folder alone says how to score it: its recipe's loss.
    again = kerascnn.evaluate(str(tmp_path))
    assert again.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert "no log loss or ECE" in again.summary()
