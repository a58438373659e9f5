"""A TensorFlow Datasets set prepared locally with TFDS's builder API, read offline."""

import numpy as np
import pytest

from kerascnn.data import load

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory, mnist_arrays):
    """200 MNIST digits (150 train, 50 test) prepared as the TFDS set "tiny_mnist"."""
    import tensorflow as tf

    (x_train, y_train), (x_test, y_test) = mnist_arrays
    train, test = (x_train[:150], y_train[:150]), (x_test[:50], y_test[:50])
    data_dir = str(tmp_path_factory.mktemp("tfds"))

    def split(x, y):
        return tf.data.Dataset.from_tensor_slices({"image": x[..., None], "label": y})

    builder = tfds.dataset_builders.TfDataBuilder(
        name="tiny_mnist",
        version="1.0.0",
        data_dir=data_dir,
        split_datasets={"train": split(*train), "test": split(*test)},
        features=tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)]),
            }
        ),
    )
    builder.download_and_prepare()
    return data_dir, train, test


def _sorted_rows(x, y):
    rows = np.column_stack([x.reshape(len(x), -1).astype(int), y])
    return rows[np.lexsort(rows.T[::-1])]


def test_local_tfds_set_loads_without_download(tiny_mnist):
    data_dir, train, test = tiny_mnist
    data = load("tfds:tiny_mnist", data_dir=data_dir, download=False)
    assert data.name == "tfds:tiny_mnist"
    assert data.split_names == ("train", "test")
    assert data.input_shape == (28, 28, 1) and data.dtype == np.uint8
    assert data.class_names == [str(i) for i in range(10)]
    # TFDS may reorder examples: compare the sets of (image, label) rows.
    for ours, (x, y) in ((data.arrays("train"), train), (data.arrays("test"), test)):
        np.testing.assert_array_equal(_sorted_rows(ours[0], ours[1]), _sorted_rows(x, y))


def test_unprepared_tfds_set_is_not_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load("tfds:mnist", data_dir=str(tmp_path), download=False)
    # Streamed too: the same message, not an AttributeError on a missing builder.
    with pytest.raises(FileNotFoundError, match="download=False"):
        load("tfds:mnist", data_dir=str(tmp_path), download=False, stream=True)
