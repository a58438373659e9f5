"""Image folders streamed from their files through tf.data: data larger than memory.

`load(folder, stream=True)` lists the files instead of decoding them into arrays. A `Data`
then holds `FilePool`s: file paths and labels, split and folded by position exactly as the
in-memory loader splits its arrays (the same files land in the same splits for a seed). Its
pipelines (`kerascnn.data.pipeline`, as for arrays) read, decode and resize the files one by
one in parallel tf.data calls before batching, with the in-memory loader's decoder settings
(libjpeg's accurate integer DCT, Pillow's default, and antialiased bilinear resizing rounded
to uint8), so both modes give the same pixels.

Listing decodes every file once with Pillow, as the in-memory loader does (the same function,
`folders.decode_or_reason`), in parallel and in constant memory: both modes accept and skip
exactly the same files, with the same warning, and agree on the channels (grey when every
image is grey) and the sizes. Files TensorFlow decodes to the same pixels (8-bit JPEG and PNG)
are then decoded by TensorFlow ops; the others (BMP, GIF, 16-bit colour PNG, CMYK JPEG, ...)
by that Pillow function, called from the pipeline. Each file's fingerprint is kept: a file
deleted or changed after loading stops the pipeline with an error naming it, which
`reading_files()` turns into a one-line `FileChangedError`.

An optional cache (`cache=folder`) keeps the decoded, resized images of each split in a
memory-mapped `<split>.npy` file, so later epochs and later runs skip decoding. The cache is
keyed by its path: `<split>.json` beside it records the file list (paths, sizes, modification
times) and the image shape, and a cache that no longer matches is rebuilt. kerascnn only
overwrites the cache files it wrote (a `<split>.json` key carrying its mark, and the
`<split>.npy` beside it): a foreign file of those names is refused (`CacheError`).
"""

import collections
import functools
import hashlib
import io
import json
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from kerascnn.data.errors import CHANGED, CacheError, reading_files
from kerascnn.data.folders import (
    GREY_8BIT_MODES,
    IMAGE_EXTENSIONS,
    check_every_class,
    class_files,
    decode_or_reason,
    decoded,
    folder_layout,
    list_files,
    warn_skipped,
)
from kerascnn.data.pools import (
    StreamedPool,
    class_indices,
    common_shape,
    decode_jpeg,
    fit_image,
    pooled_data,
)
from kerascnn.errors import InputError
from kerascnn.files import atomic_path, atomic_write_json

_SCAN_BATCH = 4096
_SAMPLE = 16  # image headers read to estimate a folder's decoded size
# How each file is decoded in the pipeline (`FilePool.decoders`): TensorFlow's JPEG or PNG
# decoder where it gives Pillow's pixels, else Pillow itself in a `tf.numpy_function`.
JPEG, PNG, PILLOW = 0, 1, 2
_TF_PNG_MODES = ("1", "L", "LA", "RGB", "RGBA", "P")
_FINGERPRINT_BUCKETS = 2**63 - 1  # tf.strings.to_hash_bucket_fast: FarmHash64 of the bytes
_CACHE_MARK = "kerascnn.data.streaming cache"  # in every cache key: keys written keep it


def estimated_size(root, target_size):
    """Returns (decoded bytes, number of image files) of an image folder, from a sample.

    The size is files x height x width x channels bytes (uint8): the largest height x width
    of up to `_SAMPLE` files spread over the folder (or `target_size`), 3 channels if any of
    them is in colour, else 1. Only their headers are read.
    """
    layout, class_names = folder_layout(root)
    paths = [path for folder in layout.values() for name in class_names
             for path in class_files(folder, name, root) if path.lower().endswith(IMAGE_EXTENSIONS)]
    pixels, channels = (target_size[0] * target_size[1] if target_size else 0), 1
    for index in np.unique(np.linspace(0, len(paths) - 1, min(_SAMPLE, len(paths))).astype(int)):
        try:
            with Image.open(paths[index]) as image:  # reads the header only
                if target_size is None:
                    pixels = max(pixels, image.size[0] * image.size[1])
                channels = max(channels, 1 if image.mode in GREY_8BIT_MODES else 3)
        except (OSError, SyntaxError, ValueError):  # a damaged file: the scan lists it
            continue
    return len(paths) * pixels * channels, len(paths)


def read_file(path, fingerprint, decoder, shape, jpeg_only=False, resize=True):
    """Reads one file of a streamed folder as a uint8 tensor of `shape`, as `load` read it.

    Args:
        path: scalar string tensor.
        fingerprint: scalar int64 tensor, the file's FarmHash64 when the folder was listed
            (`tf.strings.to_hash_bucket_fast`), or None not to check it.
        decoder: scalar int32 tensor, `JPEG`, `PNG` or `PILLOW` (see `_decoder`).
        shape, jpeg_only, resize: as in `pools.read_image`.

    Raises (when the pipeline runs):
        tf.errors.InvalidArgumentError: the file changed since listing (its message names
            it; `reading_files` turns it into a `FileChangedError`).
        tf.errors.NotFoundError: the file was deleted (idem).
    """
    contents = tf.io.read_file(path)
    if fingerprint is not None:
        same = tf.equal(tf.strings.to_hash_bucket_fast(contents, _FINGERPRINT_BUCKETS),
                        fingerprint)
        check = tf.debugging.Assert(same, [tf.strings.join([path, CHANGED])])
        with tf.control_dependencies([check]):
            contents = tf.identity(contents)
    channels = shape[2]
    if jpeg_only:
        image = decode_jpeg(contents, channels)
    else:
        image = tf.switch_case(decoder, [
            lambda: decode_jpeg(contents, channels),
            lambda: tf.io.decode_png(contents, channels=channels),
            lambda: tf.ensure_shape(
                tf.numpy_function(functools.partial(_pillow_pixels, channels=channels),
                                  [contents], tf.uint8, stateful=False),
                (None, None, channels)),
        ])
    return fit_image(image, shape, resize)


def _pillow_pixels(contents, channels):
    """The pixels of an encoded image as the in-memory loader decodes them, with `channels`."""
    pixels = decoded(io.BytesIO(contents))[0]
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(np.broadcast_to(pixels, (*pixels.shape[:2], channels)))


class FilePool(StreamedPool):
    """Image files and int64 labels that splits and folds index into: a `StreamedPool`.

    Args:
        paths: one file path per example.
        y: int64 NumPy array of class indices.
        shape: (height, width, channels) every image is read as.
        cache: None, or the path of a `.npy` file of the decoded images, read memory-mapped.
        jpeg_only: every file is a JPEG (see `pools.read_image`).
        resize: some files differ from `shape` in size (see `pools.read_image`).
        decoders: int array, each file's decoder (`JPEG`, `PNG` or `PILLOW`); None: Pillow
            for all (JPEG with jpeg_only).
        fingerprints: int64 array, each file's FarmHash64 when listed (checked on every
            read), or None.
    """

    def __init__(self, paths, y, shape, cache=None, jpeg_only=False, resize=True, decoders=None,
                 fingerprints=None):
        super().__init__(y, shape)
        self.paths = np.asarray([os.fsencode(path) for path in paths])  # bytes: 1 per char
        self.cache = cache
        self.jpeg_only, self.resize = jpeg_only, resize
        self.decoders = (np.full(len(y), JPEG if jpeg_only else PILLOW, np.int32)
                         if decoders is None else np.asarray(decoders, np.int32))
        self.fingerprints = None if fingerprints is None else np.asarray(fingerprints, np.int64)
        self._cached = None

    def cached_images(self):
        """Returns the memory-mapped cache, or None without one."""
        if self.cache is not None and self._cached is None:
            self._cached = np.load(self.cache, mmap_mode="r")
        return self._cached

    def reader(self):
        """Returns a function (int64 position) -> uint8 image, for parallel tf.data maps.

        With a cache, the function reads a batch (int64 positions) -> uint8 images in one
        memory-mapped gather, and says so (`reads_batches`): one Python call per batch.
        """
        if self.cache is not None:
            def read(index):
                images = tf.numpy_function(self._gather, [index], tf.uint8, stateful=False)
                return tf.ensure_shape(images, (None, *self.shape))

            read.reads_batches = True
            return read
        paths, decoders = tf.constant(self.paths), tf.constant(self.decoders)
        fingerprints = None if self.fingerprints is None else tf.constant(self.fingerprints)
        shape, jpeg_only, resize = self.shape, self.jpeg_only, self.resize

        def read(index):
            fingerprint = None if fingerprints is None else tf.gather(fingerprints, index)
            return read_file(tf.gather(paths, index), fingerprint, tf.gather(decoders, index),
                             shape, jpeg_only, resize)

        return read

    def _gather(self, index):
        return np.asarray(self.cached_images()[index])  # fancy indexing copies the rows

    def read(self, positions):
        """Returns the images at `positions` as one uint8 NumPy array (from the cache if any)."""
        if self.cache is None:
            return super().read(positions)
        return np.asarray(self.cached_images()[np.asarray(positions, dtype=np.int64)])

    def merged(self, positions, other, other_positions):
        """Returns one pool of this pool's files at `positions`, then `other`'s (no cache)."""
        fingerprints = None
        if self.fingerprints is not None and other.fingerprints is not None:
            fingerprints = np.concatenate([self.fingerprints[positions],
                                           other.fingerprints[other_positions]])
        return FilePool(
            np.concatenate([self.paths[positions], other.paths[other_positions]]),
            np.concatenate([self.y[positions], other.y[other_positions]]),
            self.shape, jpeg_only=self.jpeg_only and other.jpeg_only,
            resize=self.resize or other.resize,
            decoders=np.concatenate([self.decoders[positions], other.decoders[other_positions]]),
            fingerprints=fingerprints,
        )


def load_folder(root, *, validation_split, test_split, seed, target_size, class_names=None,
                cache=None):
    """Lists an image folder into a streaming `Data`, split as `load` splits it in memory.

    Args:
        root: a folder of class sub-folders (or train/, test/, validation/ sub-folders).
        validation_split, test_split, seed, target_size, class_names: as in `load`.
        cache: None, or a folder for the decoded images (`<split>.npy`, `<split>.json`).

    Returns:
        A `Data` whose pools are `FilePool`s.

    Raises:
        ValueError: for a folder without classes or readable images, images of mixed sizes
            without `target_size`, or 16-bit images (the in-memory loader keeps those).
    """
    check_cache(cache)
    files, folder_classes, probes = _readable_files(root)
    shape = _image_shape(files, probes, target_size)
    labels, class_names = class_indices(
        {split: np.array([label for _, label in kept], np.int64) for split, kept in files.items()},
        class_names or folder_classes)
    pools = {split: _file_pool(split, [path for path, _ in kept], labels[split], shape, probes,
                               cache)
             for split, kept in files.items()}
    return pooled_data(os.path.basename(os.path.normpath(root)), pools, class_names,
                       validation_split=validation_split, test_split=test_split, seed=seed)


def _readable_files(root):
    """Lists and scans an image folder (`_scan`), warning once (at `load`'s caller) of the
    files skipped.

    Returns:
        ({split: [(path, class index), ...]} of the readable files of each split that has
        any, the folder's class names, {path: `_Probe`}).

    Raises:
        ValueError: for a folder without classes, or a class without readable images.
    """
    layout, folder_classes, listed, skipped = list_files(root)
    candidates = [path for entries in listed.values() for path, _ in entries]
    probes = _scan([path for path in candidates if path.lower().endswith(IMAGE_EXTENSIONS)])
    total, files = len(candidates) + len(skipped), {}
    for split, entries in listed.items():
        kept = []
        for path, label in entries:
            reason = probes[path].reason if path in probes else "not an image file"
            if reason:
                skipped.append(f"{os.path.relpath(path, root)} ({reason})")
            else:
                kept.append((path, label))
        files[split] = kept
    check_every_class([label for _, label in files["train"]], folder_classes, layout["train"])
    warn_skipped(skipped, total, root, stacklevel=6)
    return {split: kept for split, kept in files.items() if kept}, folder_classes, probes


def _image_shape(files, probes, target_size):
    """Returns the (height, width, channels) every image of `files` is read as.

    Raises:
        ValueError: for 16-bit images, or images of mixed sizes without `target_size`.
    """
    readable = [path for kept in files.values() for path, _ in kept]
    deep_files = sorted(path for path in readable if probes[path].deep)
    if deep_files:
        raise InputError(
            f"{deep_files[0]} is a 16-bit image ({len(deep_files)} such files): streaming "
            "reads 8-bit images. Load the folder in memory (stream=False), which keeps them."
        )
    depth = 1 if all(probes[path].grey for path in readable) else 3
    counts = {split: collections.Counter(probes[path].size for path, _ in kept)
              for split, kept in files.items()}
    return common_shape(counts, depth, target_size)


def _file_pool(split, paths, y, shape, probes, cache):
    """Returns the `FilePool` of a split's files, with its decoded images cached if asked."""
    decoders = np.array([probes[path].decoder for path in paths], np.int32)
    plan = {"jpeg_only": bool(np.all(decoders == JPEG)),
            "resize": any(probes[path].size != shape[:2] for path in paths),
            "decoders": decoders,
            "fingerprints": np.array([probes[path].fingerprint for path in paths], np.int64)}
    return FilePool(paths, y, shape, _cache_file(cache, split, paths, shape, plan), **plan)


_Probe = collections.namedtuple("_Probe", "reason size grey deep decoder fingerprint")


def _scan(paths):
    """Decodes every file once as the in-memory loader does, in parallel, in constant memory.

    Returns:
        {path: `_Probe`}: why the file is skipped (None if read), its (height, width), whether
        it is grey, whether 16-bit, its pipeline decoder (`_decoder`) and its fingerprint.
    """
    def probe(index, path):
        info, reason = tf.numpy_function(_probe_file, [path], (tf.int64, tf.string),
                                         stateful=False)
        fingerprint = tf.cond(
            tf.strings.length(reason) == 0,
            lambda: tf.strings.to_hash_bucket_fast(tf.io.read_file(path), _FINGERPRINT_BUCKETS),
            lambda: tf.constant(-1, tf.int64))
        return index, tf.ensure_shape(info, (5,)), tf.ensure_shape(reason, ()), fingerprint

    probes = {}
    dataset = (tf.data.Dataset.from_tensor_slices(
                   (np.arange(len(paths)), np.asarray([os.fsencode(p) for p in paths], object)))
               .map(probe, num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors(log_warning=False)  # a file deleted while listing: absent below
               .batch(_SCAN_BATCH))
    for indices, infos, reasons, fingerprints in dataset.as_numpy_iterator():
        for index, info, reason, fingerprint in zip(indices, infos, reasons, fingerprints):
            height, width, grey, deep, decoder = (int(v) for v in info)
            probes[paths[index]] = _Probe(reason.decode("utf-8", "replace") or None,
                                          (height, width), bool(grey), bool(deep), decoder,
                                          int(fingerprint))
    for path in paths:
        probes.setdefault(path, _Probe("FileNotFoundError: deleted while listing", None, False,
                                       False, PILLOW, -1))
    return probes


def _probe_file(path):
    """(int64 [height, width, grey, 16-bit, decoder], skip reason as bytes, or b"")."""
    path = os.fsdecode(path)
    result, reason = decode_or_reason(path)
    if reason is not None:
        return np.zeros(5, np.int64), reason.encode("utf-8", "replace")
    pixels, file_format, mode = result
    info = [*pixels.shape[:2], pixels.ndim == 2, pixels.dtype == np.uint16,
            _decoder(path, file_format, mode)]
    return np.array(info, np.int64), b""


def _decoder(path, file_format, mode):
    """The decoder of a file in the pipeline: TensorFlow's where it gives Pillow's pixels.

    TensorFlow reads 8-bit JPEG (grey, RGB) and PNG as Pillow does (`pools.JPEG_DCT`); it cannot
    read 1- and 8-bit BMPs, and its BMP, GIF and 16-bit colour PNG decoding is not Pillow's:
    those go through Pillow (`PILLOW`).
    """
    if file_format == "JPEG" and mode in ("L", "RGB"):
        return JPEG
    if file_format == "PNG" and mode in _TF_PNG_MODES:
        with open(path, "rb") as f:
            header = f.read(25)
        if len(header) == 25 and header[24] <= 8:  # IHDR bit depth
            return PNG
    return PILLOW


def check_cache(cache, splits=("train", "validation", "test")):
    """Refuses a `cache=` folder kerascnn may not write: a file, or foreign cache files.

    kerascnn writes `<split>.npy` and its key `<split>.json` (marked as its own) and
    overwrites only those: a `<split>.json` it did not write, or a `<split>.npy` without
    its key, belongs to someone else.

    Raises:
        CacheError: naming the path, and what to do.
    """
    if cache is None:
        return
    cache = os.fspath(cache)
    if os.path.exists(cache) and not os.path.isdir(cache):
        raise CacheError(f"cache={cache!r} is a file, not a folder: pass a folder for the "
                         "decoded images (created if missing).")
    for split in splits:
        _cache_key(cache, split)


def _cache_key(cache, split):
    """The key kerascnn wrote in `cache` for `split`, or None; CacheError for foreign files."""
    images_path, key_path = (os.path.join(cache, f"{split}.{ext}") for ext in ("npy", "json"))
    fix = ("kerascnn overwrites only the cache files it wrote: pass a new or empty folder as "
           "cache, or move the file away.")
    for path in (images_path, key_path):
        if os.path.lexists(path) and not os.path.isfile(path):
            raise CacheError(f"cache folder {cache} holds {os.path.basename(path)}, which is "
                             f"not a file kerascnn wrote. {fix}")
    if not os.path.lexists(key_path):
        if os.path.lexists(images_path):
            raise CacheError(f"cache folder {cache} holds {split}.npy, which kerascnn did not "
                             f"write (its key {split}.json is missing). {fix}")
        return None
    try:
        with open(key_path, encoding="utf-8") as f:
            key = json.load(f)
    except (OSError, ValueError):
        key = None
    old = isinstance(key, dict) and set(key) == {"files", "shape", "sha256"}  # before the mark
    if not (isinstance(key, dict) and (key.get("written_by") == _CACHE_MARK or old)):
        raise CacheError(f"cache folder {cache} holds {split}.json, which kerascnn did not "
                         f"write. {fix}")
    return key


def _cache_file(cache, split, paths, shape, plan):
    """Returns `<cache>/<split>.npy`, built or rebuilt unless its key matches; None if no cache.

    Raises:
        CacheError: for files in `cache` that kerascnn did not write (`check_cache`).
    """
    if cache is None:
        return None
    cache = os.fspath(cache)
    check_cache(cache, (split,))
    images_path, key_path = (os.path.join(cache, f"{split}.{ext}") for ext in ("npy", "json"))
    digest = hashlib.sha256(json.dumps(list(shape)).encode())
    for path in paths:
        status = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{status.st_size}\0{status.st_mtime_ns}\n"
                      .encode())
    key = {"written_by": _CACHE_MARK, "files": len(paths), "shape": list(shape),
           "sha256": digest.hexdigest()}
    if _cache_key(cache, split) == key and _cache_holds(images_path, (len(paths), *shape)):
        return images_path
    pool = FilePool(paths, np.zeros(len(paths), np.int64), shape, **plan)
    with atomic_path(images_path, suffix=".npy") as tmp, reading_files():
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(len(paths), *shape))
        start = 0
        for batch in pool.dataset(np.arange(len(paths)), 256):
            images[start:start + len(batch)] = batch.numpy()
            start += len(batch)
        images.flush()
        del images
    atomic_write_json(key_path, key)
    return images_path


def _cache_holds(images_path, shape):
    """Whether `images_path` is a readable uint8 `.npy` array of `shape` (else: rebuild it)."""
    try:
        images = np.load(images_path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return False
    return images.dtype == np.uint8 and images.shape == tuple(shape)
