"""Shared test fixtures: quiet TensorFlow, seeded Keras, the offline data folder."""

import os
import pathlib
import tarfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# precision="auto" (every recipe's default) trains in float32 whatever CPU runs the tests;
# a test that needs the bfloat16 answer sets KERASCNN_CPU_BFLOAT16=1 with monkeypatch.
os.environ["KERASCNN_CPU_BFLOAT16"] = "0"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = pathlib.Path(os.environ.get("KERASCNN_DATA_DIR") or REPO.parent / "shared/datasets")
_NO_OFFLINE_COPY = "offline MNIST copy not found"


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def data_dir():
    """The folder holding the offline mnist.npz, or skip."""
    if not (DATA_DIR / "mnist.npz").exists():
        pytest.skip(f"{_NO_OFFLINE_COPY} in {DATA_DIR}; set KERASCNN_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def digit_values(tmp_path_factory):
    """scikit-learn's digits as a regression set (.npz): the target is the digit's value."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path_factory.mktemp("data") / "digit_values.npz"
    np.savez(path, x_train=digits.images.astype("float32"),
             y_train=digits.target.astype("float32"))
    return path


CIFAR10_ARCHIVE = "cifar10-jpg.tar.gz"
CIFAR10_TRAIN_PER_CLASS, CIFAR10_TEST_PER_CLASS = 20, 10


@pytest.fixture(scope="session")
def cifar10_archive():
    """The offline CIFAR-10 JPEG archive (../shared/datasets or $KERASCNN_DATA_DIR), or skip."""
    folder = DATA_DIR
    path = folder / CIFAR10_ARCHIVE
    if not path.exists():
        pytest.skip(f"offline CIFAR-10 archive not found: no {CIFAR10_ARCHIVE} in {folder}; "
                    "set KERASCNN_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def cifar10_slice(cifar10_archive, tmp_path_factory):
    """A CIFAR-10 slice unpacked as `<tmp>/cifar10/{train,test}/<class>/NNNN.jpg`: the
    first 20 train and 10 test images of each class in the archive (300 files)."""
    root = tmp_path_factory.mktemp("cifar") / "cifar10"
    wanted = {"train": CIFAR10_TRAIN_PER_CLASS, "test": CIFAR10_TEST_PER_CLASS}
    taken = {}
    with tarfile.open(cifar10_archive) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in wanted:
                continue
            key = tuple(parts[:2])
            if taken.get(key, 0) < wanted[parts[0]]:
                taken[key] = taken.get(key, 0) + 1
                target = root.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
            if len(taken) == 20 and all(taken[k] == wanted[k[0]] for k in taken):
                break
    return root


def pytest_terminal_summary(terminalreporter):
    """Says how many tests the missing offline MNIST copy skipped, and how to fix it."""
    skipped = [report for report in terminalreporter.stats.get("skipped", [])
               if _NO_OFFLINE_COPY in str(report.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: no mnist.npz in {DATA_DIR}. Put mnist.npz "
            "(keras.datasets layout: x_train, y_train, x_test, y_test) in a folder and set "
            "KERASCNN_DATA_DIR=<folder>; with network access, python -c \"import keras; "
            "keras.datasets.mnist.load_data()\" writes it to ~/.keras/datasets/.",
            yellow=True, bold=True,
        )
