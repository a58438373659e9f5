"""TensorFlow Datasets image classification sets, read into memory or by position.

In memory (`read_tfds`), TFDS decodes every example. Streamed (`load_tfds`), a set prepared
as TFRecord files is indexed and read by position as `TFRecords` shards are
(`kerascnn.data.records`), each example decoded in graph ops by the set's own features; the
set is taken as TFDS wrote it: only its labels are read when loading. A set stored as
array_record is refused for streaming: `tfds.data_source` reads it by position, but decodes
each example in Python (NumPy), one call per example, where kerascnn decodes in graph ops;
load it in memory or prepare it as TFRecord.
"""

import os

import numpy as np
import tensorflow as tf

from kerascnn.data.dataset import SPLITS
from kerascnn.data.records import RecordFormat, RecordIndex, pooled_records
from kerascnn.errors import InputError

# TFDS split name -> RawData field suffix.
_SUFFIXES = {"train": "train", "test": "test", "validation": "val"}
_LABEL_BATCH = 1024  # records whose labels are parsed at once


def _tfds():
    """Returns the tensorflow_datasets module, imported here on first use (deliberately not at
    the top): it is a heavy import that only TFDS sources need, kept out of
    `import kerascnn.data`."""
    import tensorflow_datasets

    return tensorflow_datasets


def read_tfds(name, data_dir, download):
    """Reads the train (and test, validation) splits of a TFDS set.

    Images of mixed sizes come back as lists, for `load` to resize to its `target_size`.

    A set already prepared in `data_dir` is read from there without any network access;
    otherwise it is downloaded and prepared, unless `download` is False.

    Args:
        name: TFDS name, optionally with config and version ("cats_vs_dogs:4.*.*").
        data_dir: TFDS data folder, or None for TFDS's default.
        download: allow downloading a set that is not prepared.

    Returns:
        A dict of `RawData` fields.

    Raises:
        ValueError: for an unknown set, or one without an image and a class label.
        FileNotFoundError: for a set not prepared locally when `download` is False.
    """
    builder = prepared_builder(name, data_dir, download)
    image_key, label_key = image_and_label_keys(builder.info, name)
    fields = {}
    for split, suffix in _SUFFIXES.items():
        if split in builder.info.splits:
            dataset = builder.as_dataset(split=split, shuffle_files=False)
            shape = builder.info.features[image_key].shape
            x, y = _materialise(dataset, image_key, label_key, None not in shape)
            fields[f"x_{suffix}"], fields[f"y_{suffix}"] = x, y
    if "x_train" not in fields:
        raise InputError(
            f"TFDS data set {name!r} has no 'train' split; it has {list(builder.info.splits)}."
        )
    return dict(
        name=f"tfds:{name}",
        class_names=list(builder.info.features[label_key].names),
        sha256=None,
        kind="image",
        **fields,
    )


def prepared_builder(name, data_dir, download):
    """Returns the TFDS builder of a set prepared in `data_dir`, preparing it if allowed.

    Raises:
        ValueError: for an unknown set.
        FileNotFoundError: for a set not prepared locally when `download` is False.
    """
    tfds = _tfds()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise InputError(
            f"TFDS has no data set {name!r}, and none is prepared in data_dir={data_dir!r}. "
            "Check the name (tfds.list_builders()) and data_dir."
        ) from None
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(
                f"TFDS data set {name!r} is not prepared in {builder.data_dir} and "
                "download=False. Prepare it there once (builder.download_and_prepare() with "
                "internet access, or copy a prepared folder), or pass download=True."
            )
        builder.download_and_prepare()
    return builder


def image_and_label_keys(info, name):
    """Returns the feature names of the image and the class label."""
    tfds = _tfds()
    if info.supervised_keys and all(isinstance(key, str) for key in info.supervised_keys):
        return info.supervised_keys[:2]
    features = info.features
    images = [key for key in features if isinstance(features[key], tfds.features.Image)]
    labels = [key for key in features if isinstance(features[key], tfds.features.ClassLabel)]
    if not images or not labels:
        raise InputError(
            f"TFDS data set {name!r} needs an Image feature and a ClassLabel feature; it has "
            f"{dict(features)}."
        )
    return images[0], labels[0]


def _materialise(dataset, image_key, label_key, same_shape):
    """Returns (images, labels): one array when all images share a shape, else a list."""
    tfds = _tfds()
    if same_shape:
        batches = list(tfds.as_numpy(dataset.batch(1024)))
        return (
            np.concatenate([b[image_key] for b in batches]),
            np.concatenate([b[label_key] for b in batches]),
        )
    examples = list(tfds.as_numpy(dataset))
    return [e[image_key] for e in examples], np.array([e[label_key] for e in examples])


def estimated_size(name, target_size, data_dir):
    """Returns (decoded bytes, examples) of a TFDS set prepared in `data_dir`, or None when
    that cannot be known without reading it: a set not prepared, or of images that vary in
    size without `target_size`."""
    builder = _prepared_or_none(name, data_dir, download=False)
    if builder is None:
        return None
    image_key, _ = image_and_label_keys(builder.info, name)
    shape = builder.info.features[image_key].shape
    if target_size is not None:
        shape = (*target_size, shape[2])
    if None in shape:
        return None
    count = sum(builder.info.splits[split].num_examples for split in SPLITS
                if split in builder.info.splits)
    return count * int(np.prod(shape)), count


def load_tfds(name, *, validation_split, test_split, seed, target_size, class_names=None,
              data_dir=None, download=True):
    """Indexes a TFDS set prepared as TFRecord files into a streaming `Data`, split as `load`
    splits arrays.

    Args:
        name: TFDS name, as in `read_tfds`.
        validation_split, test_split, seed, target_size, class_names, data_dir, download:
            as in `load`.

    Returns:
        A `Data` whose pools are `records.RecordPool`s.

    Raises:
        ValueError: for a set stored as array_record, of images of varying sizes without
            `target_size`, or without a train split.
    """
    indexes, formats, labels, names = _tfds_records(name, data_dir, download, target_size)
    return pooled_records(f"tfds:{name}", indexes, formats, labels, class_names or names,
                          validation_split=validation_split, test_split=test_split, seed=seed)


def _prepared_or_none(name, data_dir, download):
    """`prepared_builder`, or None for a set not prepared when `download` is False."""
    try:
        return prepared_builder(name, data_dir, download)
    except FileNotFoundError:
        if download:
            raise
        return None


def _tfds_records(name, data_dir, download, target_size):
    """Returns the indexes, formats, labels and class names of a prepared TFDS set's splits."""
    builder = prepared_builder(name, data_dir, download)
    file_format = str(getattr(builder.info, "file_format", "tfrecord")).lower()
    if "tfrecord" not in file_format:
        raise InputError(
            f"TFDS data set {name!r} is stored as {file_format}, not TFRecord: kerascnn "
            "streams TFRecord files only. Load it in memory (stream=False), or prepare it "
            "with file_format='tfrecord'.")
    image_key, label_key = image_and_label_keys(builder.info, name)
    features = builder.info.features
    stored = tuple(features[image_key].shape)
    shape = (*target_size, stored[2]) if target_size is not None else stored
    if None in shape:
        raise InputError(f"TFDS data set {name!r} has images of varying sizes {stored}: "
                         "pass target_size=(height, width) to stream it, resized.")
    record_format = RecordFormat("tfds", image_key, shape, features=features,
                                 resize=shape[:2] != stored[:2])
    indexes, formats, labels = {}, {}, {}
    for split in SPLITS:
        if split not in builder.info.splits:
            continue
        instructions = builder.info.splits[split].file_instructions
        paths = [os.path.join(builder.data_dir, os.path.basename(i.filename))
                 for i in instructions]
        indexes[split] = RecordIndex.build(paths, [i.skip for i in instructions],
                                           [i.take for i in instructions])
        formats[split] = record_format
        labels[split] = _tfds_labels(paths, instructions, label_key)
    if "train" not in indexes:
        raise InputError(f"TFDS data set {name!r} has no 'train' split; it has "
                         f"{list(builder.info.splits)}.")
    return indexes, formats, labels, list(features[label_key].names)


def _tfds_labels(paths, instructions, label_key):
    """Returns the int64 labels of the records the file instructions select, in order."""
    def records(path, skip, take):
        return tf.data.TFRecordDataset(path).skip(skip).take(take)

    dataset = tf.data.Dataset.from_tensor_slices(
        (paths, np.array([i.skip for i in instructions], np.int64),
         np.array([i.take if i.take is not None and i.take >= 0 else -1
                   for i in instructions], np.int64)))
    dataset = dataset.flat_map(records).batch(_LABEL_BATCH).map(
        lambda serialized: tf.io.parse_example(
            serialized, {label_key: tf.io.FixedLenFeature([], tf.int64)})[label_key],
        num_parallel_calls=tf.data.AUTOTUNE)
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate(batches) if batches else np.zeros(0, np.int64)
