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
