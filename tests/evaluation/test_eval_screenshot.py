"""The HTML report rendered by headless Chromium shows its embedded images.

Slow (starts a browser). Run: `pytest -m slow tests/evaluation/test_eval_screenshot.py`;
needs the Debian packages chromium and chromium-driver.
"""

import os
import re
import subprocess

import numpy as np
import pytest

from kerascnn import evaluation

CHROMIUM = "/usr/bin/chromium"
BLUES_DARKEST = np.array([8, 48, 107])  # matplotlib "Blues" at 1: the busiest cells


def screenshot(page, png, profile):
    """Renders `page` in headless Chromium, 1280x4000 pixels, into `png`; returns RGB array."""
    from PIL import Image

    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
         "--window-size=1280,4000", f"--screenshot={png}", page.as_uri()],
        check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def dark_blue_pixels(image):
    return int((np.abs(image - BLUES_DARKEST).max(axis=-1) < 40).sum())


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f"needs {CHROMIUM} (Debian: apt-get install chromium chromium-driver)")
def test_html_report_renders_with_its_images(tmp_path, trained, digits):
    model, history = trained
    _, _, x_test, y_test = digits
    evaluation.evaluate(model, (x_test, y_test), history=history, out=str(tmp_path / "report"))
    page = tmp_path / "report" / "report.html"
    without_images = tmp_path / "without_images.html"
    html = page.read_text()
    without_images.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', html))

    shot = screenshot(page, tmp_path / "report.png", tmp_path / "profile")
    bare = screenshot(without_images, tmp_path / "bare.png", tmp_path / "profile")
    assert shot.shape == (4000, 1280, 3)
    assert shot.std() > 20, "the screenshot is blank"
    # The confusion matrix's dark-blue diagonal is on screen only when images are embedded.
    assert dark_blue_pixels(shot) > 2000
    assert dark_blue_pixels(bare) == 0
    assert np.abs(shot - bare).max(axis=-1).astype(bool).mean() > 0.1
