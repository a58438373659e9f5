"""What every streamed source shares: its pools of examples read by position, and its `Data`.

A streamed `Data` holds `StreamedPool`s (an image folder's `FilePool`s,
`kerascnn.data.streamed_folders`; TFRecord files' `RecordPool`s, `kerascnn.data.records`)
instead of arrays: their labels split and fold by position exactly as the in-memory loader
splits its arrays (`pooled_data`), and their pipelines read, decode and resize each example
in tf.data calls with the in-memory loader's decoder settings (`decode_image`, `fit_image`),
so both modes give the same pixels.
"""

import abc

import numpy as np
import tensorflow as tf

from kerascnn.data import arrays
from kerascnn.data.dataset import Data, Split, with_test_split, with_validation_split
from kerascnn.data.errors import reading_files
from kerascnn.errors import InputError

# Pillow decodes JPEG with libjpeg's accurate integer DCT; tf.io.decode_jpeg then gives the
# same pixels (its default, the fast DCT, differs by up to a few levels).
JPEG_DCT = "INTEGER_ACCURATE"


def decode_jpeg(contents, channels):
    """Decodes a JPEG (string tensor) to uint8 pixels as Pillow decodes it (`JPEG_DCT`)."""
    return tf.io.decode_jpeg(contents, channels=channels, dct_method=JPEG_DCT)


def read_image(path, shape, jpeg_only=False, resize=True):
    """Reads one image file as a uint8 tensor of `shape`, as the in-memory loader reads it.

    Args:
        path: scalar string tensor.
        shape: (height, width, channels): grey images are repeated to 3 channels, alpha is
            dropped, and an image of another size is resized (bilinear, antialiased,
            rounded).
        jpeg_only: every file is a JPEG (no per-file choice of decoder: less work per file).
        resize: some files may differ from `shape` in size (False: none does).
    """
    return decode_image(tf.io.read_file(path), shape, jpeg_only, resize)


def decode_image(contents, shape, jpeg_only=False, resize=True):
    """Decodes one encoded image (string tensor) as `read_image` reads a file's contents."""
    channels = shape[2]
    if jpeg_only:
        image = decode_jpeg(contents, channels)
    else:
        image = tf.cond(
            tf.io.is_jpeg(contents),
            lambda: decode_jpeg(contents, channels),
            lambda: tf.io.decode_image(contents, channels=channels, expand_animations=False),
        )
    return fit_image(image, shape, resize)


def fit_image(image, shape, resize=True):
    """Resizes a decoded uint8 image to `shape` as `read_image` does, if it differs."""
    height, width = shape[:2]
    if not resize:
        return tf.ensure_shape(image, shape)

    def resized():
        pixels = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)

    same_size = tf.reduce_all(tf.shape(image)[:2] == (height, width))
    image = tf.cond(same_size, lambda: image, resized)
    return tf.ensure_shape(image, shape)


class FileExamples:
    """The examples of a `StreamedPool` at some positions, read only when asked for.

    `Data.x_train` of a streaming `Data` is one. `Preprocessing.adapt` reads it batch by
    batch (`as_dataset`); `np.asarray` decodes all of it into memory.
    """

    def __init__(self, pool, positions):
        self.pool = pool
        self.positions = positions

    @property
    def shape(self):
        return (len(self.positions), *self.pool.shape)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.pool.read(self.positions[[key]])[0]
        return FileExamples(self.pool, self.positions[key])

    def __array__(self, dtype=None, copy=None):
        images = self.pool.read(self.positions)
        return images if dtype is None else images.astype(dtype)

    def as_dataset(self, batch_size):
        """Returns a tf.data.Dataset of uint8 batches of these examples, in order."""
        return self.pool.dataset(self.positions, batch_size)


class StreamedPool(abc.ABC):
    """uint8 images read from files by position, and int64 labels, that splits and folds
    index into, like `Pool`.

    Args:
        y: int64 NumPy array of class indices, one per example.
        shape: (height, width, channels) every image is read as.
    """

    storage = "files"

    def __init__(self, y, shape):
        self.y = y
        self.shape = tuple(int(d) for d in shape)
        self.x = FileExamples(self, np.arange(len(y), dtype=np.int64))
        self._tensors = None

    @abc.abstractmethod
    def reader(self):
        """Returns a function (int64 position) -> uint8 image, for parallel tf.data maps, or
        one (int64 positions) -> uint8 images marked `reads_batches`."""

    @abc.abstractmethod
    def merged(self, positions, other, other_positions):
        """Returns one pool of this pool's examples at `positions`, then `other`'s."""

    def tensors(self):
        """Returns (reader, labels tensor), as `Pool.tensors` returns (images, labels).

        `kerascnn.data.pipeline` reads the examples of a callable pool one by one, in parallel
        calls, before batching them.
        """
        if self._tensors is None:
            self._tensors = (self.reader(), tf.convert_to_tensor(self.y))
        return self._tensors

    def dataset(self, positions, batch_size):
        """Returns a tf.data.Dataset of the uint8 images at `positions`, in batches, in order."""
        read = self.reader()
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(positions, dtype=np.int64))
        if getattr(read, "reads_batches", False):
            dataset = dataset.batch(batch_size).map(read, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            dataset = dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def read(self, positions):
        """Returns the images at `positions` as one uint8 NumPy array (decoded into memory)."""
        positions = np.asarray(positions, dtype=np.int64)
        with reading_files():
            images = [batch.numpy() for batch in self.dataset(positions, 256)]
        return np.concatenate(images) if images else np.zeros((0, *self.shape), np.uint8)


def common_shape(size_counts, channels, target_size):
    """Returns (height, width, channels) of every image, or raises for mixed sizes.

    Args:
        size_counts: {split: {(height, width): images of that size}}.
        channels: 1 or 3.
        target_size: (height, width) every image is resized to, or None.
    """
    if target_size is not None:
        return (*target_size, channels)
    shapes = {}
    for split, counts in size_counts.items():
        arrays.check_one_shape(counts, f"x_{split} images", noun="sizes")
        shapes.update(counts)
    if len(shapes) > 1:
        raise InputError(f"The splits' images differ in size ({sorted(shapes)}). Pass "
                         "target_size=(height, width) to resize them all when loading.")
    return (*next(iter(shapes)), channels)


def class_indices(labels, class_names):
    """Returns ({split: int64 class indices}, class names) of {split: labels} ("train"
    required), read as `load` reads arrays' labels: `class_names`, or else the train labels,
    name the classes.

    Raises:
        ValueError: for labels that are not classes (`arrays.to_class_indices`), or a train
            split without two classes (`arrays.check_classes`).
    """
    y_train, class_names = arrays.to_class_indices(labels["train"], "train", class_names)
    arrays.check_classes(y_train, class_names)
    indices = {split: arrays.to_class_indices(split_labels, split, class_names)[0]
               for split, split_labels in labels.items() if split != "train"}
    return {"train": y_train, **indices}, class_names


def pooled_data(name, pools, class_names, *, validation_split, test_split, seed):
    """Returns the `Data` of streamed pools {split: pool}, split as `load` splits arrays.

    Args:
        name: the data set's name.
        pools: {split: pool} of the source's own splits; "train" is required.
        class_names, validation_split, test_split, seed: as in `load`.
    """
    splits = with_test_split({split: Split(pool) for split, pool in pools.items()},
                             test_split, seed, class_names)
    data = Data(name=name, class_names=class_names, kind="image", value_range=(0, 255),
                sha256=None, seed=seed, splits=splits)
    return with_validation_split(data, validation_split, seed)
