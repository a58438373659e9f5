"""TFRecord shards (`TFRecords`) read into memory, or by position: data larger than memory.

`load(TFRecords(...), stream=True)` lists the records of each split's files instead of
decoding them into arrays (so does `load("tfds:<name>", stream=True)` for a prepared TFDS
set: `kerascnn.data.tfds_source`). A `Data` then holds `RecordPool`s: an offset index (one
int64 offset and length per record, built by reading only the 12-byte record headers) and
the labels, split and folded by position exactly as the in-memory loader splits its arrays.
Pipelines read each batch of records by position (`os.pread` in one Python call per batch),
then parse and decode them in TensorFlow graph ops (`kerascnn.data.pools.decode_image`, or
TFDS's own `deserialize_example`), so both modes give the same pixels.

Loading TFRecords reads every record once in parallel tf.data calls (as the folder loader
decodes every file): labels for the stratified splits, image sizes and channels, and the
records whose image cannot be decoded, which are left out and listed in one warning in both
modes.

A compressed (GZIP, ZLIB) file has no record offsets: it is refused for streaming, and read
sequentially in memory (`stream=False`).
"""

import array
import dataclasses
import glob
import json
import os
import struct
import threading
import warnings

import numpy as np
import tensorflow as tf

from kerascnn.data import arrays
from kerascnn.data.dataset import SPLITS
from kerascnn.data.pools import (
    StreamedPool,
    class_indices,
    common_shape,
    decode_image,
    fit_image,
    pooled_data,
)
from kerascnn.errors import InputError

FORMATS = ("encoded", "raw")
_HEADER = 12  # uint64 payload length, uint32 masked CRC-32C of those 8 bytes
_FOOTER = 4  # uint32 masked CRC-32C of the payload
_SCAN_BATCH = 1024
_LISTED = 10  # records named in the warning about undecodable images
# Images of a batch decoded at once (tf.map_fn's default, 10, measured 30% slower).
_PARALLEL_DECODES = 64


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data):
    """Returns the masked CRC-32C (Castagnoli) TFRecord stores after a length or payload."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def compression(path):
    """Returns "" for an uncompressed TFRecord file, "GZIP" or "ZLIB" for a compressed one.

    Raises:
        ValueError: for a file that is none of these (its first record header is damaged).
    """
    with open(path, "rb") as f:
        head = f.read(_HEADER)
    if not head or (len(head) == _HEADER and struct.unpack("<I", head[8:])[0]
                    == masked_crc32c(head[:8])):
        return ""
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "ZLIB"
    raise InputError(f"{path} is not a TFRecord file: its first record header is damaged or "
                     "missing. Write it again with tf.io.TFRecordWriter.")


class RecordIndex:
    """Where each record's payload lies in a list of TFRecord files, read by position.

    Offsets are global: file i spans `starts[i]` to `starts[i + 1]` of the files laid end to
    end, so indexes of other files concatenate (`merged`) without a per-record file number.

    Args:
        files: the file paths.
        starts: int64 global offset of each file's first byte (cumulative file sizes).
        offsets: int64 global offset of each record's payload.
        lengths: int64 payload length of each record.
    """

    def __init__(self, files, starts, offsets, lengths):
        self.files = list(files)
        self.starts = np.asarray(starts, np.int64)
        self.offsets = np.asarray(offsets, np.int64)
        self.lengths = np.asarray(lengths, np.int64)
        self._descriptors = {}
        self._lock = threading.Lock()

    @classmethod
    def build(cls, files, skips=None, takes=None):
        """Indexes uncompressed TFRecord files by reading their record headers only.

        Args:
            files: paths, in the order their records are numbered.
            skips, takes: per file, records to skip first and to keep (-1: all), as TFDS's
                file instructions give them; None for whole files.

        Raises:
            ValueError: for a compressed, damaged or truncated file.
        """
        starts, offsets, lengths, end = [], array.array("q"), array.array("q"), 0
        for number, path in enumerate(files):
            kind = compression(path)
            if kind:
                raise InputError(
                    f"{path} is {kind}-compressed: its records cannot be read by position. "
                    "Decompress it (rewrite it without compression), or load it in memory "
                    "(stream=False)."
                )
            skip = skips[number] if skips is not None else 0
            take = takes[number] if takes is not None else -1
            starts.append(end)
            file_offsets, file_lengths = _walk(path)
            stop = None if take is None or take < 0 else skip + take
            offsets.extend(o + end for o in file_offsets[skip:stop])
            lengths.extend(file_lengths[skip:stop])
            end += os.path.getsize(path)
        starts.append(end)
        return cls(files, starts, np.frombuffer(offsets, np.int64),
                   np.frombuffer(lengths, np.int64))

    def __len__(self):
        return len(self.offsets)

    def counts(self):
        """Returns the number of indexed records in each file."""
        numbers = np.searchsorted(self.starts, self.offsets, side="right") - 1
        return np.bincount(numbers, minlength=len(self.files))

    def __del__(self):
        for descriptor in getattr(self, "_descriptors", {}).values():
            os.close(descriptor)

    def _descriptor(self, number):
        with self._lock:
            if number not in self._descriptors:
                self._descriptors[number] = os.open(self.files[number], os.O_RDONLY)
            return self._descriptors[number]

    def read(self, positions):
        """Returns the serialized records at `positions` as a NumPy array of bytes objects."""
        positions = np.asarray(positions, np.int64)
        offsets, lengths = self.offsets[positions], self.lengths[positions]
        numbers = np.searchsorted(self.starts, offsets, side="right") - 1
        records = np.empty(len(positions), dtype=object)
        for i, (number, offset, length) in enumerate(
                zip(numbers.tolist(), (offsets - self.starts[numbers]).tolist(),
                    lengths.tolist())):
            records[i] = os.pread(self._descriptor(number), length, offset)
            if len(records[i]) != length:
                raise OSError(f"{self.files[number]} changed after it was indexed: record at "
                              f"byte {offset} is cut short.")
        return records

    def take(self, positions):
        """Returns the index of the records at `positions` only."""
        return RecordIndex(self.files, self.starts, self.offsets[positions],
                           self.lengths[positions])

    def merged(self, positions, other, other_positions):
        """Returns one index of this index's records at `positions`, then `other`'s."""
        shift = self.starts[-1]
        return RecordIndex(
            self.files + other.files,
            np.concatenate([self.starts[:-1], other.starts + shift]),
            np.concatenate([self.offsets[positions], other.offsets[other_positions] + shift]),
            np.concatenate([self.lengths[positions], other.lengths[other_positions]]),
        )


def _walk(path):
    """Returns (payload offsets, lengths) of an uncompressed TFRecord file, headers only."""
    size = os.path.getsize(path)
    offsets, lengths, position = array.array("q"), array.array("q"), 0
    descriptor = os.open(path, os.O_RDONLY)
    try:
        while position < size:
            head = os.pread(descriptor, _HEADER, position)
            if len(head) < _HEADER:
                raise InputError(f"{path} is truncated: {len(head)} bytes of a record header "
                                 f"at byte {position}. Copy or write the file again.")
            length, crc = struct.unpack("<QI", head)
            if crc != masked_crc32c(head[:8]):
                raise InputError(f"{path} is damaged: the record header at byte {position} "
                                 "fails its checksum. Copy or write the file again.")
            end = position + _HEADER + length + _FOOTER
            if end > size:
                raise InputError(f"{path} is truncated: its record at byte {position} needs "
                                 f"{end - size} more bytes. Copy or write the file again.")
            offsets.append(position + _HEADER)
            lengths.append(length)
            position = end
    finally:
        os.close(descriptor)
    return offsets, lengths


@dataclasses.dataclass(frozen=True)
class RecordFormat:
    """How a batch of serialized records turns into uint8 images of one shape.

    Args:
        kind: "encoded" (PNG/JPEG/... bytes), "raw" (uint8 bytes of `stored_shape`) or
            "tfds" (a TFDS example, decoded by `features`).
        image: the image feature's key.
        shape: (height, width, channels) every image is read as.
        stored_shape: for "raw", the shape the bytes hold.
        features: for "tfds", the set's `FeaturesDict`.
        jpeg_only: every image is a JPEG (see `pools.read_image`).
        resize: some images differ from `shape` in size.
    """

    kind: str
    image: str
    shape: tuple
    stored_shape: tuple = None
    features: object = None
    jpeg_only: bool = False
    resize: bool = False

    def decode(self, serialized):
        """Returns the uint8 images (batch, *shape) of a batch of serialized records."""
        signature = tf.TensorSpec(self.shape, tf.uint8)
        if self.kind == "tfds":
            return tf.map_fn(
                lambda record: fit_image(self.features.deserialize_example(record)[self.image],
                                         self.shape, self.resize),
                serialized, fn_output_signature=signature,
                parallel_iterations=_PARALLEL_DECODES)
        contents = tf.io.parse_example(
            serialized, {self.image: tf.io.FixedLenFeature([], tf.string)})[self.image]
        if self.kind == "raw":
            images = tf.reshape(tf.io.decode_raw(contents, tf.uint8), (-1, *self.stored_shape))
            if not self.resize:
                return images
            return tf.map_fn(lambda image: fit_image(image, self.shape), images,
                             fn_output_signature=signature,
                             parallel_iterations=_PARALLEL_DECODES)
        return tf.map_fn(lambda image: decode_image(image, self.shape, self.jpeg_only,
                                                    self.resize),
                         contents, fn_output_signature=signature,
                         parallel_iterations=_PARALLEL_DECODES)

    def merged(self, other):
        """Returns the format that reads both this format's records and `other`'s."""
        return dataclasses.replace(self, jpeg_only=self.jpeg_only and other.jpeg_only,
                                   resize=self.resize or other.resize)


class RecordPool(StreamedPool):
    """Serialized examples in TFRecord files and int64 labels, read by position: a
    `StreamedPool`.

    Args:
        index: the `RecordIndex` of the examples.
        y: int64 NumPy array of class indices, one per record.
        record_format: the `RecordFormat` of the records.
    """

    def __init__(self, index, y, record_format):
        super().__init__(y, record_format.shape)
        self.index = index
        self.format = record_format

    @property
    def files(self):
        return self.index.files

    def reader(self):
        """Returns a function (int64 positions) -> uint8 images, one Python call per batch.

        The records are read by `os.pread` in that call (`reads_batches`), then parsed and
        decoded in graph ops: about 3x the images/s of one Python call per record
        (benchmarks/bench_records.py).
        """
        def read(index):
            serialized = tf.numpy_function(self.index.read, [index], tf.string, stateful=False)
            images = self.format.decode(tf.ensure_shape(serialized, (None,)))
            return tf.ensure_shape(images, (None, *self.shape))

        read.reads_batches = True
        return read

    def merged(self, positions, other, other_positions):
        """Returns one pool of this pool's records at `positions`, then `other`'s."""
        return RecordPool(self.index.merged(positions, other.index, other_positions),
                          np.concatenate([self.y[positions], other.y[other_positions]]),
                          self.format.merged(other.format))


@dataclasses.dataclass(frozen=True)
class TFRecords:
    """TFRecord shards of `tf.train.Example`s with a declared feature spec: a `load` source.

    Each split is a glob pattern (or a list of them); the matching files are sorted, and
    their records numbered in that order. `load(TFRecords(...), stream=True)` reads them by
    position (`RecordPool`); `stream=False` decodes them into arrays. A JSON file with these
    fields (patterns relative to the file) is the same source: `load("spec.json")`.

    Args:
        train: the training shards, e.g. "shards/train-*.tfrecord".
        test: the test shards, or None (then `load`'s `test_split` holds out a test split).
        validation: the validation shards, or None.
        image: the image feature (bytes).
        label: the class label feature (int64 class index).
        class_names: the class names, or None for "0", "1", ...
        image_format: "encoded" (PNG, JPEG, GIF or BMP bytes) or "raw" (uint8 pixels,
            row-major, of `shape`).
        shape: (height, width[, channels]) of raw images; for encoded images, None (read from
            the images) or the shape every image has.
        name: the data set's name; defaults to "tfrecords:<train pattern>".
    """

    train: object
    test: object = None
    validation: object = None
    image: str = "image/encoded"
    label: str = "image/class/label"
    class_names: tuple = None
    image_format: str = "encoded"
    shape: tuple = None
    name: str = None

    def __post_init__(self):
        if self.image_format not in FORMATS:
            raise InputError(f"image_format must be one of {FORMATS}; got "
                             f"image_format={self.image_format!r}.")
        if self.shape is not None:
            shape = tuple(self.shape)
            if (len(shape) not in (2, 3) or not all(isinstance(d, int) and d > 0 for d in shape)
                    or (len(shape) == 3 and shape[2] not in (1, 3))):
                raise InputError(f"shape must be (height, width[, 1 or 3 channels]) of positive "
                                 f"integers; got shape={self.shape!r}.")
            object.__setattr__(self, "shape", shape if len(shape) == 3 else (*shape, 1))
        if self.image_format == "raw" and self.shape is None:
            raise InputError("image_format='raw' needs shape=(height, width[, channels]): raw "
                             "bytes do not say it.")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(
                arrays.check_class_names(self.class_names, "class_names")))

    @classmethod
    def from_json(cls, path):
        """Returns the source a JSON file of these fields describes (patterns relative to it).

        Raises:
            ValueError: for a file that is not a JSON object of these fields.
        """
        with open(path, encoding="utf-8") as f:
            try:
                fields = json.load(f)
            except ValueError as error:
                raise InputError(f"{path} is not valid JSON: {error}.") from None
        known = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(fields, dict) or "train" not in fields or set(fields) - known:
            raise InputError(f"{path} must hold a JSON object with 'train' and optionally "
                             f"{sorted(known - {'train'})}; got "
                             f"{sorted(fields) if isinstance(fields, dict) else fields!r}.")
        folder = os.path.dirname(os.path.abspath(path))
        for split in ("train", "test", "validation"):
            if fields.get(split) is not None:
                patterns = [fields[split]] if isinstance(fields[split], str) else fields[split]
                fields[split] = [os.path.join(folder, pattern) for pattern in patterns]
        if fields.get("shape") is not None:
            fields["shape"] = tuple(fields["shape"])
        return cls(name=fields.pop("name", None) or os.path.splitext(os.path.basename(path))[0],
                   **fields)

    @property
    def title(self):
        """The data set's name."""
        if self.name:
            return self.name
        first = self.train if isinstance(self.train, (str, os.PathLike)) else self.train[0]
        return f"tfrecords:{os.path.basename(os.fspath(first))}"

    def files(self):
        """Returns {split: sorted file paths} of the splits given.

        Raises:
            ValueError: for a pattern that matches no file.
        """
        listed = {}
        for split in SPLITS:
            patterns = getattr(self, split)
            if patterns is None:
                continue
            patterns = [patterns] if isinstance(patterns, (str, os.PathLike)) else patterns
            paths = []
            for pattern in patterns:
                matches = sorted(glob.glob(os.fspath(pattern)))
                if not matches:
                    raise InputError(f"{split}={os.fspath(pattern)!r} matches no file. Check "
                                     "the path and the glob pattern.")
                paths.extend(matches)
            listed[split] = paths
        return listed


def estimated_size(source, target_size):
    """Returns (decoded bytes, examples) of a `TFRecords` source, or None when its first
    image cannot be decoded (so that its size cannot be known without reading it)."""
    files = [path for paths in source.files().values() for path in paths]
    count = sum(_counts(files))
    if source.shape is not None:
        shape = (*(target_size or source.shape[:2]), source.shape[2])
    else:
        first = _first_record(files[0])
        contents = tf.train.Example.FromString(first).features.feature[source.image]
        try:
            image = tf.io.decode_image(contents.bytes_list.value[0], expand_animations=False)
        except (tf.errors.OpError, IndexError):  # damaged or absent: loading says so
            return None
        shape = (*(target_size or image.shape[:2]), 3 if image.shape[2] > 2 else 1)
    return count * int(np.prod(shape)), count


def _count(path):
    return sum(1 for _ in tf.data.TFRecordDataset(path, compression_type=compression(path)))


def _first_record(path):
    for record in tf.data.TFRecordDataset(path, compression_type=compression(path)).take(1):
        return record.numpy()
    raise InputError(f"{path} holds no records.")


def _check_features(path, image, label, image_format):
    """Raises ValueError unless the first record of `path` has the declared features."""
    example = tf.train.Example.FromString(_first_record(path))
    features = example.features.feature
    kinds = {key: features[key].WhichOneof("kind") for key in features}
    found = ", ".join(f"{key} ({kind})" for key, kind in sorted(kinds.items()))
    for argument, key, kind, what in (
            ("image", image, "bytes_list", f"the {image_format} image feature"),
            ("label", label, "int64_list", "the class index feature")):
        if kinds.get(key) != kind:
            problem = (f"have no feature {key!r}" if key not in kinds
                       else f"hold {key!r} as {kinds[key]}, not {kind}")
            raise InputError(f"The records of {path} {problem}; they hold {found}. "
                             f"Pass {argument}=<{what}>.")


def _records(files):
    """Returns a dataset of (file number, record number in the file, record) of `files`."""
    def read(number, path, kind):
        return tf.data.TFRecordDataset(path, compression_type=kind).enumerate().map(
            lambda position, record: (number, position, record))

    kinds = [compression(path) for path in files]
    return tf.data.Dataset.from_tensor_slices(
        (np.arange(len(files), dtype=np.int64), [*files], kinds)).flat_map(read)


def _counts(files):
    """Returns the number of records of each file (headers only unless compressed)."""
    counts = []
    for path in files:
        if not compression(path):
            counts.append(len(_walk(path)[0]))
            continue
        try:
            counts.append(_count(path))
        except tf.errors.OpError as error:
            raise InputError(f"{path} is truncated or damaged ({error.message.splitlines()[0]})."
                             " Copy or write the file again.") from None
    return counts


def _scan(files, counts, record_format, label):
    """Reads every record once, in parallel: labels, image sizes and undecodable images.

    `counts`: the number of records of each file (`_counts`, or an index's).

    Encoded images are decoded whole, as the folder loader decodes every file, so a damaged
    one is found here and left out, never met mid-epoch.

    Returns:
        (int64 positions of the readable records, their int64 labels,
        {(height, width): count}, channels (1 or 3), all JPEG, the number of records, the
        first record of each file (int64, cumulative counts)).
    """
    spec = {label: tf.io.FixedLenFeature([], tf.int64),
            record_format.image: tf.io.FixedLenFeature([], tf.string)}

    def probe(number, position, serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        contents = parsed[record_format.image]
        if record_format.kind == "raw":
            size = tf.stack([tf.strings.length(contents), 0, 0])
        else:
            size = tf.shape(tf.io.decode_image(contents, expand_animations=False))
        return number, position, parsed[label], size, tf.io.is_jpeg(contents)

    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    dataset = (_records(files).map(probe, num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors(log_warning=False)  # undecodable records: absent from the result
               .batch(_SCAN_BATCH))
    positions, labels, sizes, channels, jpeg = [], [], {}, 1, True
    for numbers, file_positions, batch_labels, batch_sizes, batch_jpeg in (
            dataset.as_numpy_iterator()):
        positions.append(starts[numbers] + file_positions)
        labels.append(batch_labels)
        jpeg = jpeg and bool(batch_jpeg.all())
        if record_format.kind != "raw":
            channels = max(channels, 3 if (batch_sizes[:, 2] > 2).any() else 1)
        for size, count in zip(*np.unique(batch_sizes[:, :2], axis=0, return_counts=True)):
            size = tuple(int(d) for d in size)
            sizes[size] = sizes.get(size, 0) + int(count)
    empty = np.zeros(0, np.int64)
    return (np.concatenate(positions) if positions else empty,
            np.concatenate(labels) if labels else empty, sizes, channels, jpeg, starts)


def _warn_skipped(split, files, positions, starts):
    """Warns once, counting and listing (the first few of) the records left out."""
    readable = np.zeros(starts[-1], bool)
    readable[positions] = True
    skipped = np.flatnonzero(~readable)
    if not len(skipped):
        return
    if not len(positions):
        raise InputError(f"None of the {starts[-1]} {split} records holds a decodable image "
                         f"(first file {files[0]}). Check image= and image_format=.")
    numbers = np.searchsorted(starts, skipped[:_LISTED], side="right") - 1
    listed = "; ".join(f"{os.path.basename(files[n])} record {p - starts[n]}"
                       for n, p in zip(numbers, skipped[:_LISTED]))
    warnings.warn(f"Skipped {len(skipped)} of {starts[-1]} {split} records whose image cannot "
                  f"be decoded: {listed}{'; ...' if len(skipped) > _LISTED else ''}",
                  stacklevel=6)  # at the caller of `load`


def _record_formats(source, listed, counts, target_size):
    """Scans each split of a TFRecords source once (`_scan`), warning of the records left out.

    `counts`: {split: the number of records of each of its files}.

    Returns:
        {split: (RecordFormat, int64 positions of the readable records, their labels)}.
    """
    for paths in listed.values():
        _check_features(paths[0], source.image, source.label, source.image_format)
    scans, shapes, depths = {}, {}, []
    for split, paths in listed.items():
        probe = RecordFormat(source.image_format, source.image, (1, 1, 1))
        positions, labels, sizes, channels, jpeg, starts = _scan(paths, counts[split], probe,
                                                                 source.label)
        _warn_skipped(split, paths, positions, starts)
        if source.image_format == "raw":
            expected = int(np.prod(source.shape))
            wrong = sorted(size[0] for size in sizes if size[0] != expected)
            if wrong:
                raise InputError(f"The {split} records hold {wrong[0]} image bytes, not "
                                 f"{expected} (shape={source.shape}). Declare the shape the "
                                 "raw bytes were written with.")
            sizes = {source.shape[:2]: len(labels)}
        shapes[split] = sizes
        depths.append(channels)
        scans[split] = (jpeg, positions, labels)
    channels = source.shape[2] if source.shape is not None else max(depths)
    shape = common_shape(shapes, channels, target_size or (
        source.shape[:2] if source.shape is not None else None))
    return {split: (RecordFormat(
        source.image_format, source.image, shape,
        stored_shape=source.shape if source.image_format == "raw" else None,
        jpeg_only=jpeg, resize=any(size != shape[:2] for size in shapes[split])),
        positions, labels) for split, (jpeg, positions, labels) in scans.items()}


def _records_at(files, counts, positions):
    """Returns a dataset of the records at `positions` (increasing) of `files` (holding
    `counts` records each), read in order."""
    starts = tf.constant(np.concatenate([[0], np.cumsum(counts)]), tf.int64)
    readable = np.zeros(int(starts[-1]), bool)
    readable[positions] = True
    readable = tf.constant(readable)
    return (_records(files)
            .filter(lambda number, position, record: readable[starts[number] + position])
            .map(lambda number, position, record: record))


def read_records(source, target_size):
    """Reads a TFRecords source into arrays, sequentially (compressed files too).

    Returns:
        A dict of `RawData` fields.
    """
    listed = source.files()
    counts = {split: _counts(paths) for split, paths in listed.items()}
    fields = {}
    for split, (record_format, positions, labels) in _record_formats(
            source, listed, counts, target_size).items():
        dataset = (_records_at(listed[split], counts[split], positions).batch(_SCAN_BATCH)
                   .map(record_format.decode, num_parallel_calls=tf.data.AUTOTUNE))
        suffix = {"train": "train", "test": "test", "validation": "val"}[split]
        fields[f"x_{suffix}"] = np.concatenate(list(dataset.as_numpy_iterator()))
        fields[f"y_{suffix}"] = labels
    return dict(name=source.title, kind="image", sha256=None, value_range=(0, 255),
                class_names=list(source.class_names) if source.class_names else None, **fields)


def load_records(source, *, validation_split, test_split, seed, target_size, class_names=None):
    """Indexes a `TFRecords` source into a streaming `Data`, split as `load` splits arrays.

    Args:
        source: a `TFRecords`.
        validation_split, test_split, seed, target_size, class_names: as in `load`.

    Returns:
        A `Data` whose pools are `RecordPool`s.

    Raises:
        ValueError: for compressed, damaged or truncated files, features other than those
            declared, or images of mixed sizes without `target_size`.
    """
    listed, indexes, formats, labels = source.files(), {}, {}, {}
    whole = {split: RecordIndex.build(paths) for split, paths in listed.items()}
    counts = {split: index.counts() for split, index in whole.items()}
    for split, (record_format, positions, split_labels) in _record_formats(
            source, listed, counts, target_size).items():
        indexes[split] = whole[split].take(positions)
        formats[split], labels[split] = record_format, split_labels
    names = class_names or (list(source.class_names) if source.class_names else None)
    return pooled_records(source.title, indexes, formats, labels, names,
                          validation_split=validation_split, test_split=test_split, seed=seed)


def pooled_records(name, indexes, formats, labels, class_names, *, validation_split,
                   test_split, seed):
    """Returns the `Data` of indexed records, split as `load` splits arrays.

    Args:
        name: the data set's name.
        indexes, formats, labels: {split: `RecordIndex`}, {split: `RecordFormat`} and
            {split: labels, one per indexed record} of the source's own splits.
        class_names, validation_split, test_split, seed: as in `load`.

    Raises:
        ValueError: for labels that are not classes, or files that changed while read.
    """
    y, class_names = class_indices(labels, class_names)
    for split, index in indexes.items():
        if len(index) != len(labels[split]):
            raise InputError(f"The {split} files changed while they were read: "
                             f"{len(index)} records indexed, {len(labels[split])} labels read.")
    pools = {split: RecordPool(index, y[split], formats[split])
             for split, index in indexes.items()}
    return pooled_data(name, pools, class_names, validation_split=validation_split,
                       test_split=test_split, seed=seed)
