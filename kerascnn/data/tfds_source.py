"""Reads a TensorFlow Datasets image classification set into memory (streamed: `records`)."""

import numpy as np

from kerascnn.errors import InputError

# TFDS split name -> RawData field suffix.
_SPLITS = {"train": "train", "test": "test", "validation": "val"}


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
    for split, suffix in _SPLITS.items():
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
    import tensorflow_datasets as tfds

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
    import tensorflow_datasets as tfds

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
    import tensorflow_datasets as tfds

    if same_shape:
        batches = list(tfds.as_numpy(dataset.batch(1024)))
        return (
            np.concatenate([b[image_key] for b in batches]),
            np.concatenate([b[label_key] for b in batches]),
        )
    examples = list(tfds.as_numpy(dataset))
    return [e[image_key] for e in examples], np.array([e[label_key] for e in examples])
