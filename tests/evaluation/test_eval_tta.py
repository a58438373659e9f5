"""Flip test-time augmentation: the mean of the predictions on each image and its mirror,
checked against the model's own predictions flipped by NumPy."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

import kerascnn
from kerascnn.errors import InputError
from kerascnn.evaluation.tta import with_tta


def test_flip_tta_is_the_mean_over_the_image_and_its_mirror(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    expected = (model.predict(x_test, verbose=0) + model.predict(x_test[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(with_tta(model, "flip").predict(x_test, verbose=0), expected,
                               atol=1e-6)
    report = kerascnn.evaluate(model, (x_test, y_test), tta="flip")
    assert report.metrics["tta"] == "flip"
    assert report.metrics["accuracy"] == pytest.approx(
        accuracy_score(y_test, expected.argmax(axis=1)))
    assert "tta" not in kerascnn.evaluate(model, (x_test, y_test)).metrics


def test_unknown_tta_is_refused_before_any_work(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    with pytest.raises(InputError, match=r"tta must be None or 'flip'.*tta='crop'"):
        kerascnn.evaluate(model, (x_test, y_test), tta="crop")
    with pytest.raises(InputError, match=r"tta='rotate' is not supported"):
        kerascnn.training.get_recipe("quick", tta="rotate")


def test_a_recipe_with_flip_tta_reports_flip_tested_metrics(tmp_path):
    result = kerascnn.train("lenet5", "digits", epochs=1, tta="flip", out=tmp_path / "run",
                            verbose=0)
    assert result.metrics["tta"] == "flip" and result.recipe.tta == "flip"
    again = kerascnn.train("lenet5", "digits", epochs=1, out=tmp_path / "run", verbose=0)
    assert "tta" not in again.metrics  # the finished run resumed, tested without the flip
