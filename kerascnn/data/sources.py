"""`load`: one entry point for every data source, returning a validated `Data`."""

import dataclasses
import logging
import os
import zipfile
import zlib
from collections.abc import Mapping

import keras
import numpy as np
from sklearn import datasets

from kerascnn.data import arrays, streaming
from kerascnn.data.archives import is_archive, read_archive
from kerascnn.data.dataset import Data, Pool, Split, with_test_split, with_validation_split
from kerascnn.data.folders import folder_layout, read_folder
from kerascnn.data.records import TFRecords, read_records
from kerascnn.data.splits import check_fraction
from kerascnn.data.tfds_source import read_tfds
from kerascnn.errors import InputError, InputTypeError
from kerascnn.files import sha256_file

DATA_DIR_ENV = "KERASCNN_DATA_DIR"

KERAS_DATASETS = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ],
    "cifar100": (
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
        "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
        "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
        "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
        "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
        "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
        "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel "
        "streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
        "trout tulip turtle wardrobe whale willow_tree wolf woman worm"
    ).split(),
}
# Named sets also found as an image folder `<name>/` (train/<class>/, test/<class>/) or
# as this tar archive of it, when `<name>.npz` is absent: their class folders, sorted, are
# keras' label order, so labels agree with the `.npz`.
IMAGE_FOLDER_COPIES = {"cifar10": "cifar10-jpg.tar.gz"}

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RawData:
    """What a source reader returns: splits as read, before validation."""

    name: str
    x_train: object
    y_train: object
    x_test: object = None
    y_test: object = None
    x_val: object = None
    y_val: object = None
    class_names: list = None
    value_range: tuple = None
    sha256: str = None
    kind: str = None


def load(
    source,
    *,
    data_dir=None,
    validation_split=None,
    test_split=0.2,
    seed=0,
    kind=None,
    target_size=None,
    class_names=None,
    download=True,
    task="classification",
    stream="auto",
    cache=None,
):
    """Loads a data set into memory, validated and split.

    Sources:
    - "mnist", "fashion_mnist", "cifar10", "cifar100": first `<name>.npz` (keras.datasets
      layout: x_train, y_train, x_test, y_test, optional class_names) in `data_dir`, then in
      `$KERASCNN_DATA_DIR`; only then keras.datasets, which downloads. "cifar10" is also
      found there as the image folder `cifar10/` (train/<class>/, test/<class>/ of JPEG
      files) or its archive `cifar10-jpg.tar.gz`, looked for in each folder in that order
      after `cifar10.npz` (`IMAGE_FOLDER_COPIES`): the official split (50,000 / 10,000),
      RGB uint8 32x32, labels in keras' order (the sorted class folders). The folder
      streams like any image folder (see `stream`); the archive is read into memory
      straight from its members, never unpacked. JPEG is lossy: their pixels are the
      decoded JPEG pixels, close to but not identical with keras' cifar10 arrays.
      `python -m kerascnn.data.make_npz` turns either into `cifar10.npz`.
    - "tfds:<name>": a TensorFlow Datasets set prepared in `data_dir` (or
      `$KERASCNN_DATA_DIR`, or TFDS's default folder); downloaded only if not prepared there.
    - "digits": scikit-learn's 8x8 digits (1,797 images, values 0..16), shipped offline.
    - a path to a `.npz` file in keras.datasets layout.
    - a folder with one sub-folder of PNG/JPEG images per class (or train/ and test/
      sub-folders, each holding class sub-folders), or such a folder packed as a tar archive
      (`.tar`, `.tar.gz`, `.tgz`), read into memory without unpacking
      (`kerascnn.data.archives`).
    - `kerascnn.data.TFRecords(train="shards/train-*.tfrecord", ...)`: TFRecord shards of
      `tf.train.Example`s with a declared feature spec, or a `.json` file of its fields.
    - arrays: `(x, y)`, `((x_train, y_train), (x_test, y_test))` as keras.datasets returns
      them, a dict with keys x_train, y_train, x_test, y_test, or a dict {class name: examples}
      for data sorted into one array (file) per class. Ranks follow `kerascnn.data.arrays`.

    Everything is materialised into NumPy arrays, except an image folder, a TFDS set or
    TFRecords whose decoded images would not fit in memory: those are streamed from their
    files (see `stream`).

    Args:
        source: one of the above.
        data_dir: folder of offline copies (keras names, TFDS); defaults to $KERASCNN_DATA_DIR.
        validation_split: fraction of each class of the training data held out for
            validation, or None.
        test_split: fraction of each class held out for testing when the source has no test
            split (digits, folders, single arrays); None or 0 for no test split.
        seed: seed of the splits, and the default seed of pipelines.
        kind: "image", "signal" or "volume" for arrays whose rank is ambiguous.
        target_size: (height, width) to resize images of mixed sizes to when loading.
        class_names: class names for integer labels (or the class order of string labels).
        download: let keras.datasets / TFDS download a set not found locally.
        task: "classification" (labels are classes) or "regression": y holds real-valued
            targets, a float vector (N,) or (N, targets); splits are then shuffled, not
            stratified, and the `Data` has no class names.
        stream: for an image folder, a TFDS set or TFRecords, "auto" streams it from its
            files (`kerascnn.data.streaming`, `kerascnn.data.records`) when its decoded
            images would exceed `streaming.MEMORY_SHARE` of the physical memory, and logs
            the choice; True always streams it, False always loads it into memory. The same
            seed gives the same splits and folds either way; `describe()["storage"]` says
            which was chosen. Other sources load into memory.
        cache: with streaming, a folder for the decoded, resized images (memory-mapped
            `<split>.npy`), so later epochs and runs skip decoding; keyed by its path and
            rebuilt when the folder's files change. Only files kerascnn wrote there are
            ever overwritten.

    Returns:
        A `Data`.

    Raises:
        ValueError: for a bad source or bad data (labels out of range, NaN or infinite
            values, mismatched lengths, an empty or single class, mixed sizes).
        FileNotFoundError: when a named data set is neither found locally nor downloadable.
        CacheError: (a ValueError) for a `cache` that is a file, or that holds `<split>.npy`
            or `<split>.json` files kerascnn did not write.
    """
    seed, target_size, class_names = _checked_options(
        seed, kind, task, class_names, validation_split, test_split, target_size)
    named, source = _named_copy(_spec(source), data_dir)
    tfds_dir = _data_dirs(data_dir)[0]
    if streaming.chooses_streaming(source, stream, target_size, data_dir=tfds_dir):
        data = streaming.load_streamed(
            source, task=task, cache=cache, data_dir=tfds_dir, download=download,
            validation_split=validation_split, test_split=test_split, seed=seed,
            target_size=target_size, class_names=class_names)
        data.name = named or data.name
        return data
    if cache is not None:
        raise InputError(f"cache={cache!r} holds decoded images of a streamed folder; this "
                         "source loads into memory. Pass stream=True for a folder, or no cache.")
    raw = _read(source, data_dir=data_dir, download=download, target_size=target_size)
    _rename(raw, named, class_names, source)
    return _validated(source, raw, kind, validation_split, test_split, seed, target_size, task)


def _checked_options(seed, kind, task, class_names, validation_split, test_split,
                     target_size):
    """Returns `load`'s seed, target_size and class_names as it uses them.

    Raises:
        ValueError: for an option of `load` it cannot take.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise InputError(f"seed must be an integer; got seed={seed!r}.")
    arrays.check_kind(kind)
    if task not in ("classification", "regression"):
        raise InputError(f"task must be 'classification' or 'regression'; got task={task!r}.")
    if task == "regression" and class_names is not None:
        raise InputError("class_names name classes; task='regression' has real-valued targets "
                         "and none. Leave class_names out.")
    if validation_split is not None:
        check_fraction(validation_split, "validation_split")
    if test_split:
        check_fraction(test_split, "test_split")
    if target_size is not None:
        target_size = tuple(int(v) for v in target_size)
    if class_names is not None:
        class_names = arrays.check_class_names(class_names, "class_names")
    return int(seed), target_size, class_names


def _spec(source):
    """The `TFRecords` a `.json` file describes (`TFRecords.from_json`), else `source`."""
    if (isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(".json")
            and os.path.isfile(source)):
        return TFRecords.from_json(os.fspath(source))
    return source


def _rename(raw, named, class_names, source):
    """Names what was read from a named set's image folder copy after the set (its classes
    checked), and gives it the `class_names` passed to `load`, if any."""
    if named is not None:
        _check_copy_classes(named, raw.class_names, source)
        raw.name = named
    if class_names is not None:
        raw.class_names = class_names


def _read(source, *, data_dir, download, target_size):
    """Reads a source that loads into memory as `RawData`.

    Raises:
        ValueError: for an unknown source, or one that cannot be read.
        TypeError: for a source of an unknown type.
    """
    if isinstance(source, TFRecords):
        return RawData(**read_records(source, target_size))
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text in KERAS_DATASETS:
            return _keras_dataset(text, data_dir, download)
        if text == "digits":
            return _digits()
        if text.startswith("tfds:"):
            return RawData(**read_tfds(text[5:], _data_dirs(data_dir)[0], download))
        if os.path.isdir(text):
            return RawData(**read_folder(text))
        if os.path.isfile(text) and text.endswith(".npz"):
            return _npz(text)
        if is_archive(text):
            return RawData(**read_archive(text))
        raise InputError(
            f"Unknown data source {text!r}: no such .npz file, folder or archive. Use one of "
            f"{', '.join(KERAS_DATASETS)}, 'digits', 'tfds:<name>', a .npz file in "
            "keras.datasets layout, a folder of class sub-folders (or a .tar.gz of one), "
            "or arrays."
        )
    if isinstance(source, Mapping):
        if "x_train" in source:
            return _keras_layout("arrays", source)
        return _class_arrays(source)
    if isinstance(source, tuple) and len(source) == 2:
        if all(isinstance(part, tuple) and len(part) == 2 for part in source):
            (x_train, y_train), (x_test, y_test) = source
            return RawData("arrays", x_train, y_train, x_test, y_test)
        return RawData("arrays", *source)
    raise InputTypeError(
        "source must be a data set name, a path, (x, y), ((x_train, y_train), (x_test, "
        f"y_test)) or a dict of arrays; got {type(source).__name__}."
    )


def _data_dirs(data_dir):
    """Returns the folders to look in for offline copies: data_dir, then the environment."""
    return [d for d in (data_dir, os.environ.get(DATA_DIR_ENV)) if d] or [None]


def local_copy(name, data_dir=None):
    """Returns the path of the offline copy of keras data set `name` that `load` reads.

    Looks in `data_dir`, then `$KERASCNN_DATA_DIR`, each for `<name>.npz`, then (for the
    sets of `IMAGE_FOLDER_COPIES`) the image folder `<name>/`, then its archive.

    Returns:
        The path, or None when no folder holds one.
    """
    for folder in [d for d in _data_dirs(data_dir) if d]:
        candidates = [(f"{name}.npz", os.path.isfile)]
        if name in IMAGE_FOLDER_COPIES:
            candidates += [(name, os.path.isdir), (IMAGE_FOLDER_COPIES[name], os.path.isfile)]
        for file_name, exists in candidates:
            path = os.path.join(os.fspath(folder), file_name)
            if exists(path):
                return path
    return None


def _named_copy(source, data_dir):
    """(name, path) of the image folder or archive that stands for a named set, else
    (None, source): `<name>.npz` found first, or no copy, leave the source as it is."""
    if not (isinstance(source, str) and source in IMAGE_FOLDER_COPIES):
        return None, source
    copy = local_copy(source, data_dir)
    if copy is None or copy.endswith(".npz"):
        return None, source
    logger.info("%s: no %s.npz found first; reading the image folder copy %s.", source,
                source, copy)
    if os.path.isdir(copy):
        _check_copy_classes(source, folder_layout(copy)[1], copy)
    return source, copy


def _check_copy_classes(name, found, path):
    """Refuses an image-folder copy of `name` whose classes are not keras' classes."""
    if list(found) != KERAS_DATASETS[name]:
        raise InputError(
            f"{path} holds the classes {list(found)}; as {name!r} it must hold one folder per "
            f"class of keras' {name}, whose sorted names give keras' label order: "
            f"{KERAS_DATASETS[name]}. Rename its class folders, or load it by its path."
        )


def _keras_dataset(name, data_dir, download):
    path = local_copy(name, data_dir)
    if path is not None:  # `load` reads a folder or archive copy before coming here
        return _npz(path, name=name, class_names=KERAS_DATASETS[name])
    reason = "download=False"
    if download:
        module = getattr(keras.datasets, name)
        try:
            if name == "cifar100":
                (x_train, y_train), (x_test, y_test) = module.load_data(label_mode="fine")
            else:
                (x_train, y_train), (x_test, y_test) = module.load_data()
            return RawData(name, x_train, y_train, x_test, y_test, KERAS_DATASETS[name])
        except Exception as error:  # Any failure to download gets the same advice.
            reason = f"keras.datasets failed: {type(error).__name__}: {error}"
    raise FileNotFoundError(_not_found(name, data_dir, reason))


def _not_found(name, data_dir, reason):
    """The message for a named data set found neither offline nor by download."""
    folders = [os.fspath(d) for d in _data_dirs(data_dir) if d]
    looked = (", ".join(folders) if folders
              else f"no --data-dir / data_dir= given and ${DATA_DIR_ENV} unset")
    files = f"{name}.npz"
    if name in IMAGE_FOLDER_COPIES:
        files += f", {name}/ or {IMAGE_FOLDER_COPIES[name]}"
    put = f"put {name}.npz in keras.datasets layout (x_train, y_train, x_test, y_test)"
    if name in IMAGE_FOLDER_COPIES:
        put = (f"put one of these into a folder DIR: {name}.npz in keras.datasets layout "
               f"(x_train, y_train, x_test, y_test); the image folder {name}/ holding "
               f"train/<class>/ and test/<class>/ (classes {', '.join(KERAS_DATASETS[name])}); "
               f"or its archive {IMAGE_FOLDER_COPIES[name]} as it is (read without unpacking)")
    else:
        put += " into a folder DIR"
    tail = ""
    if name in IMAGE_FOLDER_COPIES:
        tail = (f" An unpacked folder can also be given itself: --data PATH/{name} "
                f"(load('PATH/{name}')), and `python -m kerascnn.data.make_npz PATH/{name} "
                f"DIR/{name}.npz` writes the .npz from the folder or the archive.")
    return (
        f"Cannot load {name!r}: no {files} found ({looked}), and not downloaded ({reason}). "
        f"Fix either way: {put}, and pass --data-dir DIR on the command line, data_dir=DIR "
        f"in Python, or set {DATA_DIR_ENV}=DIR; or run once with internet access so "
        f"keras.datasets can download it.{tail}"
    )


def _npz(path, name=None, class_names=None):
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, Mapping):
            raise InputError(
                f"{path} holds a single array (a .npy file named .npz), not a .npz archive. "
                "Save the splits with np.savez(path, x_train=..., y_train=..., x_test=..., "
                "y_test=...)."
            )
        with archive:
            arrays_read = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(
            f"{path} cannot be read as a .npz archive ({type(error).__name__}: {error}): the "
            "file is empty, truncated or damaged. Write it again with np.savez."
        ) from None
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
        raise InputError(
            f"{path} holds pickled Python objects, which kerascnn does not load (unpickling "
            "can run code). Save numeric arrays, and class names as a string array."
        ) from None
    raw = _keras_layout(name or os.path.splitext(os.path.basename(path))[0], arrays_read, path)
    raw.class_names = raw.class_names or class_names
    raw.sha256 = sha256_file(path)
    return raw


def _keras_layout(name, mapping, path="arrays"):
    missing = [key for key in ("x_train", "y_train") if key not in mapping]
    partial = ("x_test" in mapping) != ("y_test" in mapping)
    if missing or partial:
        raise InputError(
            f"{path} needs keys x_train, y_train (and optionally x_test, y_test, class_names) "
            f"as keras.datasets uses; found {sorted(mapping.keys())}."
        )
    names = mapping["class_names"] if "class_names" in mapping else None
    return RawData(
        name,
        mapping["x_train"],
        mapping["y_train"],
        mapping["x_test"] if "x_test" in mapping else None,
        mapping["y_test"] if "y_test" in mapping else None,
        class_names=None if names is None else arrays.check_class_names(
            names, f"class_names of {path}"),
    )


def _class_arrays(mapping):
    names = [str(name) for name in mapping]
    examples = [np.asarray(mapping[name]) for name in mapping]
    empty = [name for name, x in zip(names, examples) if not len(x)]
    if empty:
        raise InputError(f"Classes {empty} have no examples.")
    labels = np.concatenate([np.full(len(x), i, np.int64) for i, x in enumerate(examples)])
    try:
        x = np.concatenate(examples)
    except ValueError:
        shapes = {name: x.shape[1:] for name, x in zip(names, examples)}
        raise InputError(f"The classes' examples differ in shape: {shapes}.") from None
    return RawData("arrays", x, labels, class_names=names)


def _digits():
    digits = datasets.load_digits()
    path = os.path.join(os.path.dirname(datasets.__file__), "data", "digits.csv.gz")
    return RawData(
        "digits",
        digits.images.astype(np.uint8),  # integers 0..16: exact in uint8
        digits.target,
        class_names=[str(i) for i in range(10)],
        value_range=(0, 16),
        sha256=sha256_file(path) if os.path.isfile(path) else None,
        kind="image",
    )


def _as_examples(x, split, target_size):
    """Returns examples as one array, resizing images to `target_size` if given.

    Raises:
        ValueError: for images of mixed sizes without `target_size`, or non-numeric data.
    """
    if isinstance(x, (list, tuple)) and len(x) and np.ndim(x[0]) >= 1:
        if target_size is not None or len({np.shape(e) for e in x}) > 1:
            for example in x:
                arrays.check_pixel_type(np.asarray(example), split)
            return arrays.stack_examples(list(x), target_size, what=f"x_{split} images")
    x = np.asarray(x)
    arrays.check_pixel_type(x, split)
    if target_size is not None and x.ndim in (3, 4) and x.shape[1:3] != target_size:
        x = arrays.stack_examples(list(x), target_size, what=f"x_{split} images")
    return x


def _validated(source, raw, kind, validation_split, test_split, seed, target_size, task):
    """`_assemble`, its errors about a file or folder source prefixed with its path."""
    try:
        return _assemble(raw, kind, validation_split, test_split, seed, target_size, task)
    except ValueError as error:
        path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        if path is None or path in str(error):
            raise
        raise InputError(f"{path}: {error}") from None


def _assemble(raw, kind, validation_split, test_split, seed, target_size, task):
    """Validates raw splits and builds the `Data`."""
    x_train = _as_examples(raw.x_train, "train", target_size)
    kind = arrays.infer_kind(x_train.shape, kind or raw.kind)
    x_train = arrays.with_channel_axis(x_train, kind)
    y_train, class_names = _train_targets(raw.y_train, raw.class_names, task)
    _check_pair(x_train, y_train, "train")
    if task != "regression":
        arrays.check_classes(y_train, class_names)
    splits = {"train": Split(Pool(x_train, y_train))}
    for split, x, y in (("test", raw.x_test, raw.y_test), ("validation", raw.x_val, raw.y_val)):
        if x is not None:
            splits[split] = _given_split(split, x, y, x_train, y_train, kind, class_names,
                                         target_size, task)
    splits = with_test_split(splits, test_split, seed, class_names, task)
    data = Data(name=raw.name, class_names=class_names, kind=kind,
                value_range=_value_range(raw.value_range, x_train, splits["train"]),
                sha256=raw.sha256, seed=seed, splits=splits, task=task)
    return with_validation_split(data, validation_split, seed)


def _train_targets(y, class_names, task):
    """Returns (y_train, class names): float targets and no classes for regression, else
    int64 class indices and their names."""
    if task == "regression":
        return arrays.to_targets(y, "train"), []
    return arrays.to_class_indices(y, "train", class_names)


def _given_split(split, x, y, x_train, y_train, kind, class_names, target_size, task):
    """Returns the `Split` of a source's own test or validation examples, checked against
    the train split's."""
    x = arrays.with_channel_axis(_as_examples(x, split, target_size), kind)
    if x.shape[1:] != x_train.shape[1:]:
        raise InputError(
            f"x_{split} examples have shape {x.shape[1:]}, unlike x_train's "
            f"{x_train.shape[1:]}."
        )
    if task == "regression":
        y = arrays.to_targets(y, split)
        if y.shape[1] != y_train.shape[1]:
            raise InputError(f"y_{split} has {y.shape[1]} targets per example, unlike "
                             f"y_train's {y_train.shape[1]}.")
    else:
        y, _ = arrays.to_class_indices(y, split, class_names)
    _check_pair(x, y, split)
    return Split(Pool(x, y))


def _value_range(value_range, x_train, train):
    """The source's value range, else (0, 255) for uint8, else the range observed in the
    train split."""
    if value_range is not None:
        return value_range
    if x_train.dtype == np.uint8:
        return (0, 255)
    return arrays.observed_range(x_train, train.positions)


def _check_pair(x, y, split):
    if len(x) != len(y):
        raise InputError(f"x_{split} has {len(x)} examples but y_{split} has {len(y)} labels.")
    arrays.check_finite(x, split)
