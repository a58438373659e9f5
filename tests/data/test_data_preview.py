"""`preview` writes a PNG grid of augmented training samples."""

import numpy as np
import pytest
from PIL import Image

from kerascnn.data import load, preview


def test_preview_writes_a_png_grid(mnist_small, tmp_path):
    path = tmp_path / "figures" / "preview.png"
    assert preview(mnist_small, "rotate=10,crop=0.8,mixup", path, n=9, seed=1) == path
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert image.size[0] > 300 and image.size[1] > 300
    assert pixels.std() > 10  # digits drawn, not a blank page
    assert [p.name for p in path.parent.iterdir()] == ["preview.png"]  # no temporary file left


def test_preview_needs_images(tmp_path):
    signals = load((np.zeros((10, 16), np.float32), np.arange(10) % 2), test_split=None)
    with pytest.raises(ValueError, match="preview shows images"):
        preview(signals, None, tmp_path / "p.png")


def test_a_regression_preview_titles_each_image_with_its_target_value(tmp_path):
    from sklearn import datasets

    from kerascnn.data.preview import label_titles

    digits = datasets.load_digits()
    values = load((digits.images, digits.target * 1.25), task="regression", seed=0)
    path = preview(values, "rotate=5", tmp_path / "preview.png", n=4, seed=2)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 200
    _, y = values.arrays("train")
    chosen = np.sort(np.random.default_rng(2).choice(len(y), 4, replace=False))
    assert label_titles(y[chosen], values) == [f"{v:.3g}" for v in y[chosen, 0]]
    assert label_titles(np.array([[7.0], [0.12549]]), values) == ["7", "0.125"]
    assert label_titles(np.array([[1.5, 2.0]]), values) == ["(1.5, 2)"]
    classes = load((digits.images, digits.target), seed=0)
    assert label_titles(np.eye(10)[[3]], classes) == ["3"]
