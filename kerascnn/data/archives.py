"""Reads an image folder packed as a tar archive (`.tar`, `.tar.gz`, `.tgz`) into memory.

Nothing is unpacked: the archive is read once, sequentially, its image members are decoded
from memory with the same Pillow function as `kerascnn.data.folders.read_folder`, and they
are sorted into the order that function reads the unpacked folder. The archive and its
unpacked folder therefore give the same splits and the same pixels (tested).

The encoded members and the decoded images are held in memory together while reading (for
CIFAR-10: about 60 MB of JPEG files and 185 MB of pixels): this suits course-scale sets.
An archive too large for that is unpacked (`tar xzf ARCHIVE -C DIR`) and its folder
streamed (`load(DIR, stream=True)`); `load` refuses to stream an archive.
"""

import io
import logging
import os
import posixpath
import tarfile
from concurrent import futures

from kerascnn.data.folders import (
    IMAGE_EXTENSIONS,
    SPLIT_FOLDERS,
    add_split,
    check_every_class,
    decoded,
    finish_fields,
)
from kerascnn.errors import InputError
from kerascnn.files import sha256_file

ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz")
_DECODE_CHUNK = 2048  # images a worker decodes per task: few tasks, little overhead

logger = logging.getLogger(__name__)


def is_archive(source):
    """Whether `source` is the path of an existing tar archive (by its name)."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = os.fspath(source)
    return path.lower().endswith(ARCHIVE_EXTENSIONS) and os.path.isfile(path)


def read_archive(path, workers=None):
    """Reads a tar archive of an image folder as `read_folder` reads the unpacked folder.

    The archive holds `<class>/<image>` or `{train,test,validation}/<class>/<image>`
    members, possibly under one common top folder (`cifar10/train/airplane/0000.jpg`).
    Classes are the class folders' names, sorted; members are read in the unpacked
    folder's order (each folder's files by name, then its sub-folders), so splits drawn
    by position agree with the folder's. Hidden members are ignored; links, members that
    are not images and images that cannot be decoded are skipped with one warning.

    Args:
        path: the archive.
        workers: threads decoding images (Pillow releases the GIL); default: the CPUs.

    Returns:
        A dict of `RawData` fields as `read_folder` returns them, with the archive's
        SHA-256 and its name without extension.

    Raises:
        ValueError: for an archive that is not a tar file, holds no class folders, or a
            class without readable images.
    """
    contents, skipped = _image_members(path)
    layout, class_names = _layout(contents, path)
    fields, total = {}, len(skipped)
    pending = {}
    for split, top in layout.items():
        entries = sorted(
            ((parts, contents[(*top, *parts)]) for parts in _under(contents, top)
             if parts[0] in class_names and len(parts) >= 2),
            key=lambda item: (class_names.index(item[0][0]), _folder_order(item[0][1:])))
        pending[split] = [(posixpath.join(*top, *parts), class_names.index(parts[0]), data)
                          for parts, data in entries]
        total += len(entries)
    with futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        for split, entries in pending.items():
            images, labels = [], []
            for (name, label, _), (image, reason) in zip(
                    entries, _decode_all(pool, [data for _, _, data in entries])):
                if reason is None:
                    images.append(image)
                    labels.append(label)
                else:
                    skipped.append(f"{name} ({reason})")
            if split == "train":
                check_every_class(labels, class_names, f"{path}:{'/'.join(layout['train'])}")
            add_split(fields, split, images, labels)
    finish_fields(fields, skipped, total, path)
    name = os.path.basename(path)
    for extension in ARCHIVE_EXTENSIONS:
        if name.lower().endswith(extension):
            name = name[:-len(extension)]
            break
    return dict(name=name, class_names=class_names, sha256=sha256_file(path), kind="image",
                **fields)


def _image_members(path):
    """({member path parts: bytes} of the regular files, ["member (why)" skipped])."""
    contents, skipped = {}, []
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                parts = tuple(p for p in posixpath.normpath(member.name).split("/")
                              if p not in ("", "."))
                if not parts or parts[0] == ".." or any(p.startswith(".") for p in parts):
                    continue  # hidden, as the folder reader ignores them; or outside the root
                if member.issym() or member.islnk():
                    skipped.append(f"{member.name} (a link in the archive: not followed)")
                elif member.isfile():
                    if not member.name.lower().endswith(IMAGE_EXTENSIONS):
                        skipped.append(f"{member.name} (not an image file)")
                    else:
                        contents[parts] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(f"{path} cannot be read as a tar archive ({type(error).__name__}: "
                         f"{error}): the file is damaged or not a tar file.") from None
    return contents, skipped


def _under(contents, top):
    """The parts below `top` of every member under the folder `top` (a tuple of parts)."""
    return [parts[len(top):] for parts in contents if parts[:len(top)] == top
            and len(parts) > len(top)]


def _layout(contents, path):
    """({split: top folder parts}, sorted class names) of an archive's members.

    Raises:
        ValueError: as `folders.folder_layout`.
    """
    top = ()
    while True:  # unwrap one common top folder (`cifar10/...`), never a split folder
        heads = {parts[len(top)] for parts in contents if len(parts) > len(top) + 1}
        deeper = all(len(parts) >= len(top) + 3 for parts in contents)
        if len(heads) == 1 and deeper and next(iter(heads)) not in SPLIT_FOLDERS:
            top = (*top, next(iter(heads)))
        else:
            break
    folders = sorted({parts[0] for parts in _under(contents, top) if len(parts) >= 2})
    if folders and all(name in SPLIT_FOLDERS for name in folders) and "train" in folders:
        layout = {SPLIT_FOLDERS[name]: (*top, name) for name in folders}
    else:
        layout = {"train": top}
    classes = {split: sorted({parts[0] for parts in _under(contents, folder) if len(parts) >= 2})
               for split, folder in layout.items()}
    where = f"{path}:{'/'.join(layout['train']) or '.'}"
    if not classes["train"]:
        raise InputError(f"{where} has no class sub-folders: put each class's images in "
                         "<folder>/<class name>/ before packing the folder.")
    for split, names in classes.items():
        extra = sorted(set(names) - set(classes["train"]))
        if extra:
            raise InputError(f"{path}:{'/'.join(layout[split])} has classes {extra} that the "
                             "train folder lacks.")
    return layout, classes["train"]


def _folder_order(parts):
    """Sort key of a file below its class folder: a folder's own files, then sub-folders."""
    return tuple((1, part) for part in parts[:-1]) + ((0, parts[-1]),)


def _decode_all(pool, blobs):
    """[(pixels, None) or (None, why skipped)] of encoded images, decoded in parallel."""
    chunks = [blobs[start:start + _DECODE_CHUNK] for start in range(0, len(blobs), _DECODE_CHUNK)]
    return [result for chunk in pool.map(_decode_chunk, chunks) for result in chunk]


def _decode_chunk(blobs):
    results = []
    for blob in blobs:
        try:
            results.append((decoded(io.BytesIO(blob))[0], None))
        except Exception as error:  # Pillow raises many types for damaged files.
            results.append((None, f"{type(error).__name__}: {error}"))
    return results
