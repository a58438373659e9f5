"""A colour data set's report: classes named in the confusion matrix, mistakes in colour."""

import io

import keras
import numpy as np
from PIL import Image

from kerascnn import evaluation
from kerascnn.data import load
from kerascnn.evaluation import plots


def _colour_data():
    """32 red and 32 blue 8x8 RGB uint8 images (noisy), as a `Data` named by colour."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, (64, 8, 8, 3))
    red, blue = noise[:32].copy(), noise[32:].copy()
    red[..., 0] += 190
    blue[..., 2] += 190
    return load({"red": red.astype(np.uint8), "blue": blue.astype(np.uint8)}, test_split=0.5)


def _swapping_model():
    """Predicts blue for red images and red for blue ones, confidently: every one a mistake."""
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[-10.0, 10.0], [0.0, 0.0], [10.0, -10.0]]), np.zeros(2)])
    return model


def test_confusion_matrix_names_the_classes_and_mistakes_are_drawn_in_colour(tmp_path,
                                                                            monkeypatch):
    drawn = {}
    draw_matrix, draw_mistakes = plots.confusion_matrix_png, plots.mistakes_png

    def matrix(counts, class_names):
        drawn["matrix"] = list(class_names)
        return draw_matrix(counts, class_names)

    def mistakes(images, captions):
        drawn["mistakes"] = list(captions)
        return draw_mistakes(images, captions)

    monkeypatch.setattr(plots, "confusion_matrix_png", matrix)
    monkeypatch.setattr(plots, "mistakes_png", mistakes)
    data = _colour_data()
    report = evaluation.evaluate(_swapping_model(), data, out=tmp_path)
    assert report.metrics["confusion_matrix"] == [[0, 16], [16, 0]]
    assert drawn["matrix"] == ["red", "blue"] and list(report.metrics["per_class"]) == [
        "red", "blue"]
    assert all("true red\npredicted blue" in caption or "true blue\npredicted red" in caption
               for caption in drawn["mistakes"])
    with Image.open(tmp_path / "mistakes.png") as image:
        pixels = np.asarray(image.convert("RGB"), np.int16)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 100) & (pixels[..., 2] < 100)
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 100) & (pixels[..., 1] < 100)
    assert red.mean() > 0.01 and blue.mean() > 0.01  # both colours drawn, not grey


def test_a_single_colour_image_keeps_its_hue_in_the_gallery():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 1] = 200  # pure green: one channel
    with Image.open(io.BytesIO(plots.mistakes_png([image], ["green"]))) as png:
        pixels = np.asarray(png.convert("RGB"), np.int16)
    green = (pixels[..., 1] > 150) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)
    assert green.mean() > 0.05
