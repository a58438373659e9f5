"""`Data`: a data set's splits in memory, with their tf.data pipelines and folds."""

import hashlib

import numpy as np
import tensorflow as tf

from kerascnn.data import pipeline
from kerascnn.data.augment import augmentation
from kerascnn.data.errors import reading_files
from kerascnn.data.splits import (check_fraction, shuffled_folds, shuffled_split,
                                  stratified_folds, stratified_split, subset_positions)
from kerascnn.errors import InputError

SPLITS = ("train", "validation", "test")
TASKS = ("classification", "regression")


class Pool:
    """Examples (channels last) and targets that several splits or folds index into.

    Args:
        x: NumPy array of examples, examples first.
        y: int64 NumPy array of class indices, or float32 (examples, targets) for regression.
    """

    def __init__(self, x, y):
        self.x = x
        self.y = y
        self._tensors = None

    def tensors(self):
        """Returns (x, y) as tensors, converted once and shared by every pipeline."""
        if self._tensors is None:
            self._tensors = (tf.convert_to_tensor(self.x), tf.convert_to_tensor(self.y))
        return self._tensors


class Split:
    """One split: a pool and the positions of its examples (None: the whole pool)."""

    def __init__(self, pool, positions=None):
        self.pool = pool
        self.positions = positions

    def __len__(self):
        return len(self.pool.y) if self.positions is None else len(self.positions)

    def all_positions(self):
        """Returns the pool positions of this split as an int64 array."""
        if self.positions is None:
            return np.arange(len(self.pool.y), dtype=np.int64)
        return self.positions

    def examples(self):
        """Returns x as a NumPy array (a copy when the split is a subset of its pool)."""
        return self.pool.x if self.positions is None else self.pool.x[self.positions]

    def labels(self):
        """Returns y as an int64 NumPy array (a copy when the split is a subset of its pool)."""
        return self.pool.y if self.positions is None else self.pool.y[self.positions]

    def arrays(self):
        """Returns (x, y) NumPy arrays."""
        return self.examples(), self.labels()


class Data:
    """A data set in memory: train / validation / test splits and metadata.

    Built by `kerascnn.data.load`; holds NumPy arrays, so it targets course-scale data (up to
    a few GB). Examples keep their raw dtype and values, with a channel axis; labels are int
    class indices. Validation splits and folds are index views on the same arrays: reading
    `x_train` of a fold copies, while `pipeline()` and `folds()` do not. A streamed image
    folder (`load(folder, stream=True)`, `kerascnn.data.streamed_folders`) holds file lists instead:
    the same splits and folds, its `x_*` read from the files only when asked for, and
    `describe()["storage"]` is "files" rather than "memory". For regression
    (`task="regression"`) the targets are float32 (examples, targets), there are no classes,
    and validation splits and folds are shuffled, not stratified.

    Attributes:
        name: the source's name ("mnist", "digits", "tfds:...", a file or folder name).
        task: "classification" or "regression".
        class_names: list of str, one per class (empty for regression).
        num_classes: number of classes (0 for regression).
        num_outputs: the model's output width: classes, or regression targets.
        kind: "image", "signal" or "volume".
        input_shape: per-example shape with its channel axis, e.g. (28, 28, 1).
        dtype: NumPy dtype of the raw examples.
        value_range: (low, high) of the raw values: (0, 255) for uint8, (0, 16) for digits,
            otherwise the range observed in the training split.
        sha256: SHA-256 of the source file, or None.
        seed: the seed given to `load`; the default seed of pipelines.
        split_names: the splits present, in ("train", "validation", "test").
    """

    def __init__(self, *, name, class_names, kind, value_range, sha256, seed, splits,
                 task="classification"):
        if task not in TASKS:
            raise InputError(f"task={task!r} is not supported; choose one of {TASKS}.")
        self.name = name
        self.task = task
        self.class_names = list(class_names)
        self.kind = kind
        self.value_range = tuple(value_range)
        self.sha256 = sha256
        self.seed = seed
        self._splits = {split: splits[split] for split in SPLITS if splits.get(split) is not None}
        self.split_names = tuple(self._splits)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def num_outputs(self):
        if self.task == "regression":
            return int(next(iter(self._splits.values())).pool.y.shape[1])
        return self.num_classes

    @property
    def input_shape(self):
        return tuple(next(iter(self._splits.values())).pool.x.shape[1:])

    @property
    def dtype(self):
        return next(iter(self._splits.values())).pool.x.dtype

    x_train = property(lambda self: self._array("train", Split.examples))
    y_train = property(lambda self: self._array("train", Split.labels))
    x_val = property(lambda self: self._array("validation", Split.examples))
    y_val = property(lambda self: self._array("validation", Split.labels))
    x_test = property(lambda self: self._array("test", Split.examples))
    y_test = property(lambda self: self._array("test", Split.labels))

    def _array(self, split, read):
        return read(self._splits[split]) if split in self._splits else None

    def _split(self, split):
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}; got {split!r}.")
        if split not in self._splits:
            fix = {
                "validation": " Pass validation_split= to load() or use with_validation().",
                "test": " Pass test_split= to load() for a source without a test split.",
            }.get(split, "")
            raise InputError(f"{self.name} has no {split} split.{fix}")
        return self._splits[split]

    def size(self, split):
        """Returns the number of examples in a split (0 if absent)."""
        return len(self._splits[split]) if split in self._splits else 0

    def class_counts(self, split):
        """Returns the number of examples of each class in a split, as a list of int."""
        if self.task == "regression":
            raise InputError(f"{self.name} holds regression targets: it has no classes to count.")
        labels = self._split(split).labels()
        return np.bincount(labels, minlength=self.num_classes).tolist()

    def arrays(self, split):
        """Returns (x, y) of a split as NumPy arrays: raw examples, int class indices.

        Raises:
            ValueError: for an unknown or absent split.
        """
        return self._split(split).arrays()

    def pipeline(self, split, batch_size, *, augment=None, shuffle=None, seed=None, epochs=None,
                 initial_epoch=0, input_context=None):
        """Returns a tf.data.Dataset of (float32 examples at raw scale, one-hot float32 labels).

        Args:
            split: "train", "validation" or "test".
            batch_size: examples per batch.
            augment: None, a spec ("flip,rotate=5,crop=0.9" or a dict, see
                `kerascnn.data.augment`) or a callable (images, labels) -> (images, labels);
                "train" only.
            shuffle: reshuffle every epoch; defaults to True for "train" only.
            seed: seed of the shuffle and the augmentation; defaults to `self.seed`. The same
                seed gives the same batches, epoch after epoch.
            epochs: None (one epoch per iteration, reshuffled each time), or the index after
                the last epoch: then one dataset holds the batches of epochs `initial_epoch`
                to `epochs - 1`, each epoch's order and augmentation a pure function of
                (seed, epoch), so that a resumed run sees the batches of an uninterrupted one
                (give it to `fit` with `steps_per_epoch`).
            initial_epoch: the first epoch of that dataset.
            input_context: None, or the `tf.distribute.InputContext` of one worker's input
                pipeline (with epochs=None): the dataset then holds only that worker's
                replica batches of every global batch of `batch_size`, and only their
                examples are read from a streamed pool's files (see
                `kerascnn.training.multi_worker.fit`). Each worker draws its own
                augmentation of a spec, keyed by (seed, pipeline id).

        Raises:
            ValueError: for an absent split, augmentation outside "train", a bad spec, or
                input_context with epochs.
        """
        source = self._split(split)
        seed = self.seed if seed is None else seed
        if input_context is not None and epochs is not None:
            raise InputError(f"input_context gives one worker's share of one epoch per "
                             f"iteration; pass epochs=None, not epochs={epochs!r}.")
        if augment is not None and not callable(augment):
            augment_seed = seed if input_context is None else int(
                np.random.SeedSequence([seed, input_context.input_pipeline_id])
                .generate_state(1)[0] >> 1)
            augment = augmentation(augment, seed=augment_seed, value_range=self.value_range,
                                   input_shape=self.input_shape)
            augment = augment if augment.spec else None
        if augment is not None and split != "train":
            raise InputError(
                f"Augmentation applies to the train split only; got augment={augment!r} for "
                f"split={split!r}."
            )
        images, labels = source.pool.tensors()
        depth = self.num_classes if self.task == "classification" else None  # one-hot or not
        if epochs is not None:
            return pipeline.epoch_stream(
                images, labels, source.all_positions(), depth, batch_size,
                shuffle=split == "train" if shuffle is None else shuffle, seed=seed,
                augment=augment, epochs=epochs, initial_epoch=initial_epoch,
            )
        return pipeline.batches(
            images,
            labels,
            source.all_positions(),
            depth,
            batch_size,
            shuffle=split == "train" if shuffle is None else shuffle,
            seed=seed,
            augment=augment,
            input_context=input_context,
        )

    def with_validation(self, fraction, seed=None):
        """Returns a copy whose validation split is a stratified `fraction` of the training data
        (a shuffled one for regression).

        Training data is the train split plus any existing validation split; the test split is
        kept. No example array is copied.

        Args:
            fraction: share of each class to hold out, 0 < fraction < 1.
            seed: seed of the choice; defaults to `self.seed`.
        """
        check_fraction(fraction, "validation_split")
        pool, positions = self._training_pool()
        seed = self.seed if seed is None else seed
        if self.task == "regression":
            kept, held_out = shuffled_split(len(positions), fraction, seed)
        else:
            kept, held_out = stratified_split(pool.y[positions], fraction, seed)
        return self._replace(
            train=Split(pool, positions[kept]), validation=Split(pool, positions[held_out])
        )

    def subset(self, size, seed=None):
        """Returns a copy whose training data is `size` examples of it, drawn in proportion to
        the classes (at random for regression), with no validation split; the test split is
        kept. No example array is copied. `kerascnn.tune(train_size=...)` searches on one.

        Args:
            size: the number of training examples kept, from one per class to all but one.
            seed: seed of the draw; defaults to `self.seed`.
        """
        pool, positions = self._training_pool()
        seed = self.seed if seed is None else seed
        chosen = subset_positions(pool.y[positions], size, seed,
                                  stratify=self.task != "regression")
        return self._replace(train=Split(pool, positions[chosen]), validation=None)

    def folds(self, k, seed=0):
        """Yields the k (train_data, validation_data) pairs of a stratified k-fold.

        The folds partition the training data (train plus any validation split); the test
        split stays out. Both `Data` objects index into the same arrays (no copy per fold):
        `train_data` has the fold's training part as "train" and its held-out part as
        "validation"; `validation_data` has the held-out part as its "validation" and "test"
        splits, so code that scores a model on either split scores the fold. `train` early-
        stops and keeps `best.keras` on "validation": select hyperparameters with `cv_fold`.

        Args:
            k: number of folds, from 2 to the smallest class size.
            seed: seed of the stratified shuffle.

        Raises:
            ValueError: for k < 2 or a class with fewer than k examples.
        """
        pool, positions = self._training_pool()
        if self.task == "regression":
            folds = shuffled_folds(len(positions), k, seed)
        else:
            folds = stratified_folds(pool.y[positions], k, seed, self.class_names)
        for train, held_out in folds:
            validation = Split(pool, positions[held_out])
            yield (
                self._replace(train=Split(pool, positions[train]), validation=validation),
                self._replace(train=None, validation=validation, test=validation),
            )

    def training_labels(self):
        """Returns the labels of the training data (train plus any validation split).

        Fold positions (`cv_fold`, `kerascnn.tune`) index this order, the order a
        scikit-learn splitter sees when given these labels (and groups aligned with them).
        """
        pool, positions = self._training_pool()
        return pool.y[positions]

    def cv_fold(self, train, held_out, *, validation_split=None, seed=None):
        """Returns one cross-validation fold as (fit_data, held_out_data), leak-free.

        Unlike `folds()`, the held-out part is never a split of `fit_data`: a model trained on
        `fit_data` takes its normalisation statistics, early stopping and best epoch from the
        fold's training part only (an inner validation split of it when `validation_split`
        is given). Neither copy has a test split. No example array is copied.

        Args:
            train: positions (into `training_labels()`) of the fold's training part.
            held_out: positions of the fold's held-out (scored) part.
            validation_split: None, or the stratified fraction of the training part to hold
                out as `fit_data`'s validation split.
            seed: seed of that inner split; defaults to `self.seed`.

        Returns:
            (fit_data, held_out_data): `fit_data` has "train" (and "validation");
            `held_out_data` has the held-out part as its only split, "validation".

        Raises:
            ValueError: for positions outside the training data or shared by both parts.
        """
        pool, positions = self._training_pool()
        train, held_out = (np.asarray(p, dtype=np.int64).reshape(-1) for p in (train, held_out))
        for part in (train, held_out):
            if part.size and (part.min() < 0 or part.max() >= len(positions)):
                raise InputError(
                    f"fold positions must lie in 0..{len(positions) - 1} (the training data); "
                    f"got {part.min()}..{part.max()}."
                )
        if np.intersect1d(train, held_out).size:
            raise InputError("a fold's training and held-out parts share examples.")
        fit = self._replace(train=Split(pool, positions[train]), validation=None, test=None)
        if validation_split is not None:
            fit = fit.with_validation(validation_split, seed)
        held = self._replace(train=None, validation=Split(pool, positions[held_out]), test=None)
        return fit, held

    def _training_pool(self):
        train = self._splits.get("train")
        if train is None:
            raise InputError(f"{self.name} has no train split to split further.")
        validation = self._splits.get("validation")
        if validation is None:
            return train.pool, train.all_positions()
        if validation.pool is train.pool:
            return train.pool, np.sort(
                np.concatenate([train.all_positions(), validation.all_positions()])
            )
        if hasattr(train.pool, "merged"):  # files (kerascnn.data.pools): join the lists
            pool = train.pool.merged(train.all_positions(), validation.pool,
                                     validation.all_positions())
            return pool, np.arange(len(pool.y), dtype=np.int64)
        # A source's own validation split: merge it with train once.
        (x_train, y_train), (x_val, y_val) = train.arrays(), validation.arrays()
        pool = Pool(np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]))
        return pool, np.arange(len(pool.y), dtype=np.int64)

    def _replace(self, **splits):
        return Data(
            name=self.name,
            class_names=self.class_names,
            kind=self.kind,
            value_range=self.value_range,
            sha256=self.sha256,
            seed=self.seed,
            splits={**self._splits, **splits},
            task=self.task,
        )

    def split_digests(self):
        """{split: {"size", "sha256"}}: a digest of each split's example positions and labels.

        Two `Data` share a split exactly when the digests agree: the same examples (positions in
        the same source) with the same labels. run.json keeps them.
        """
        record = {}
        for split in self.split_names:
            chosen = self._split(split)
            digest = hashlib.sha256(np.asarray(chosen.all_positions(), dtype="<i8").tobytes())
            labels = chosen.labels()
            digest.update(np.asarray(labels, dtype="<f8" if labels.dtype.kind == "f" else "<i8")
                          .tobytes())
            record[split] = {"size": self.size(split), "sha256": digest.hexdigest()}
        return record

    def check_task(self, task, error=InputError):
        """Raises `error` when `task` (None: any) is not the task this data was loaded for."""
        if task not in (None, self.task):
            raise error(f"task={task!r}, but {self.name} was loaded for {self.task}; pass "
                        f"task={self.task!r}, or load the data with task={task!r}.")

    def describe(self):
        """Returns the data set's metadata as a JSON-ready dict (for manifests and reports)."""
        return {
            "name": self.name,
            "task": self.task,
            "sha256": self.sha256,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "dtype": str(self.dtype),
            "value_range": list(self.value_range),
            "storage": getattr(next(iter(self._splits.values())).pool, "storage", "memory"),
            "class_names": self.class_names,
            "splits": {
                split: {"size": self.size(split), **({"class_counts": self.class_counts(split)}
                                                     if self.task == "classification" else {})}
                for split in self.split_names
            },
            "seed": self.seed,
        }

    def __repr__(self):
        sizes = ", ".join(f"{split}={self.size(split)}" for split in self.split_names)
        return (
            f"Data({self.name!r}, {sizes}, input_shape={self.input_shape}, dtype={self.dtype}, "
            + (f"classes={self.num_classes})" if self.task == "classification"
               else f"regression targets={self.num_outputs})")
        )


def with_test_split(splits, test_split, seed, class_names, task="classification"):
    """Returns {split: `Split`} with a test split held out of the train split when `splits`
    (a source's own) has none and `test_split` asks for one: stratified, or shuffled for
    regression."""
    if "test" in splits or not test_split:
        return splits
    pool = splits["train"].pool
    if task == "regression":
        kept, held_out = shuffled_split(len(pool.y), test_split, seed)
    else:
        kept, held_out = stratified_split(pool.y, test_split, seed, argument="test_split",
                                          class_names=class_names)
    return {**splits, "train": Split(pool, kept), "test": Split(pool, held_out)}


def with_validation_split(data, validation_split, seed):
    """Returns `data.with_validation(validation_split, seed)`, or `data` for None.

    Raises:
        ValueError: for a `data` with its own validation split (`load` keeps it as it is).
    """
    if validation_split is None:
        return data
    if "validation" in data.split_names:
        raise InputError(f"{data.name} has its own validation split; pass "
                         "validation_split=None to use it.")
    return data.with_validation(validation_split, seed)


def predict(model, examples, batch_size=256):
    """`model.predict` on an array, or batch by batch on a streamed split's examples
    (`FileExamples`: read from their files, never all in memory)."""
    if hasattr(examples, "as_dataset"):
        with reading_files():
            return model.predict(examples.as_dataset(batch_size), verbose=0)
    return model.predict(examples, batch_size=batch_size, verbose=0)
