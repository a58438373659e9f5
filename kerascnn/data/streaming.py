"""Whether `load` streams a source from its files, and the streaming loader of each kind.

Image folders (`kerascnn.data.streamed_folders`), TFRecord shards (`TFRecords`,
`kerascnn.data.records`) and prepared TFDS sets ("tfds:<name>",
`kerascnn.data.tfds_source`) can stream: their `Data` then holds pools of examples read from
the files by position (`kerascnn.data.pools`) instead of arrays, with the same splits, folds
and pixels as in memory. `load(stream="auto")` streams one whose decoded images would not
fit in memory (`MEMORY_SHARE`).
"""

import logging
import os

from kerascnn.data import records, streamed_folders, tfds_source
from kerascnn.data.archives import is_archive
from kerascnn.errors import InputError

# `load(stream="auto")` streams a folder whose decoded images (uint8, as the in-memory
# loader holds them) would exceed this share of the physical memory: the in-memory loader
# briefly holds the decoded images twice (a list, then the stacked array) plus the tensor
# its pipelines gather from, and training needs the rest.
MEMORY_SHARE = 0.25

logger = logging.getLogger(__name__)


def physical_memory():
    """Returns the machine's physical memory in bytes (os.sysconf)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def chooses_streaming(source, stream, target_size, memory_share=None, data_dir=None):
    """Decides whether `load` streams `source` from its files, and logs the choice.

    Image folders, TFDS sets ("tfds:<name>") and `TFRecords` sources stream.

    Args:
        source: what `load` was given.
        stream: "auto", True or False.
        target_size: (height, width) or None.
        memory_share: share of physical memory above which "auto" streams; defaults to
            `MEMORY_SHARE`.
        data_dir: where TFDS sets are prepared, as in `load`.

    Returns:
        True to stream.

    Raises:
        ValueError: for a bad `stream`, or stream=True for a source that cannot stream.
    """
    if not (isinstance(stream, bool) or (isinstance(stream, str) and stream == "auto")):
        raise InputError(f"stream must be 'auto', True or False; got stream={stream!r}.")
    streamable = _is_folder(source) or _by_position(source)
    if stream is True and not streamable:
        raise InputError(
            f"stream=True streams image folders only, or TFDS sets and TFRecords; got "
            f"{source!r}. Load it in memory (stream=False), or convert it to a folder of "
            "class sub-folders"
            + (" (unpack the archive: tar xzf ARCHIVE -C DIR, then pass the folder)."
               if is_archive(source) else ".")
        )
    if stream is False or stream is True or not streamable:
        return stream is True
    estimate, unit = _estimated_size(source, target_size, data_dir)
    if estimate is None:
        logger.info("%s: decoded size unknown before reading it (see "
                    "records.estimated_size); loading into memory.", source)
        return False
    (size, count), share = estimate, MEMORY_SHARE if memory_share is None else memory_share
    limit = share * physical_memory()
    streams = size > limit
    logger.info(
        "%s: %d %s, about %.2f GB decoded; %s (limit %.0f%% of memory = %.2f GB).",
        source, count, unit, size / 1e9,
        "streaming from the files" if streams else "loading into memory", 100 * share,
        limit / 1e9,
    )
    return streams


def load_streamed(source, *, task, cache, data_dir, download, **options):
    """Loads a source that `chooses_streaming` streams into a streaming `Data`.

    Args:
        source: an image folder, a `TFRecords`, or "tfds:<name>".
        task, cache, data_dir, download: as in `load`.
        **options: validation_split, test_split, seed, target_size and class_names, as in
            `load`.

    Raises:
        ValueError: for a task other than classification, a `cache` for a source read by
            position, or a source its loader refuses.
    """
    if task != "classification":
        raise InputError(f"streamed images hold classes; got task={task!r}. Load "
                         "regression data in memory (stream=False).")
    if not _by_position(source):
        return streamed_folders.load_folder(os.fspath(source), cache=cache, **options)
    if cache is not None:
        raise InputError(f"cache={cache!r} holds decoded images of a streamed folder; "
                         "TFDS sets and TFRecords are read by position without one. "
                         "Leave cache out.")
    if isinstance(source, records.TFRecords):
        return records.load_records(source, **options)
    return tfds_source.load_tfds(source[5:], data_dir=data_dir, download=download, **options)


def _is_folder(source):
    return isinstance(source, (str, os.PathLike)) and os.path.isdir(os.fspath(source))


def _by_position(source):
    """Whether `source` is a TFRecords source or a TFDS name, streamed by record position."""
    return isinstance(source, records.TFRecords) or (
        isinstance(source, str) and source.startswith("tfds:"))


def _estimated_size(source, target_size, data_dir):
    """Returns ((decoded bytes, count) or None when unknown, what is counted) of a source
    that can stream."""
    if _is_folder(source):
        return streamed_folders.estimated_size(os.fspath(source), target_size), "files"
    if isinstance(source, records.TFRecords):
        return records.estimated_size(source, target_size), "examples"
    return tfds_source.estimated_size(source[5:], target_size, data_dir), "examples"
