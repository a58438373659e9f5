"""The wheel users install holds what kerascnn reads beside its modules (issue 24, item 19)."""

import os
import subprocess
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_wheel_carries_the_saved_models_and_the_catalogs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path), REPO],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = [name for name in os.listdir(tmp_path) if name.endswith(".whl")]
    names = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    shipped = sorted(os.listdir(os.path.join(REPO, "kerascnn", "saved_models")))
    assert any(name.endswith(".keras") for name in shipped)
    for name in shipped:
        assert f"kerascnn/saved_models/{name}" in names
    assert {"kerascnn/models/catalog.json", "kerascnn/training/recipes.json"} <= names
