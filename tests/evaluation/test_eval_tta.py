"""Test-time augmentation: the mean of the predictions on each image and its mirror (and on
one-pixel shifts), checked against the model's own predictions on views made by NumPy."""

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


def test_flip_shift_tta_weighs_the_image_by_half_and_each_one_pixel_shift_by_a_quarter(
        trained, digits):
    """Against NumPy: each view shifted by reflect-padding one pixel and cropping, flipped."""
    model, _ = trained
    _, _, x_test, _ = digits
    x_test = x_test[:50]
    padded = np.pad(x_test, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    side = x_test.shape[1]

    def flip_mean(images):
        return (model.predict(images, verbose=0)
                + model.predict(images[:, :, ::-1], verbose=0)) / 2

    up_left, down_right = padded[:, 2:side + 2, 2:side + 2], padded[:, :side, :side]
    assert np.array_equal(up_left[:, 0, 0], x_test[:, 1, 1])
    expected = (flip_mean(x_test) / 2 + flip_mean(up_left) / 4 + flip_mean(down_right) / 4)
    np.testing.assert_allclose(with_tta(model, "flip_shift").predict(x_test, verbose=0),
                               expected, atol=1e-6)


def test_unknown_tta_is_refused_before_any_work(trained, digits):
    model, _ = trained
    _, _, x_test, y_test = digits
    with pytest.raises(InputError, match=r"tta must be None, 'flip'.*tta='crop'"):
        kerascnn.evaluate(model, (x_test, y_test), tta="crop")
    with pytest.raises(InputError, match=r"tta='rotate' is not supported"):
        kerascnn.training.get_recipe("quick", tta="rotate")


def test_a_recipe_with_flip_tta_reports_flip_tested_metrics(tmp_path):
    result = kerascnn.train("lenet5", "digits", epochs=1, tta="flip", out=tmp_path / "run",
                            verbose=0)
    assert result.metrics["tta"] == "flip" and result.recipe.tta == "flip"
    again = kerascnn.train("lenet5", "digits", epochs=1, out=tmp_path / "run", verbose=0)
    assert "tta" not in again.metrics  # the finished run resumed, tested without the flip
