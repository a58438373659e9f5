"""Reads a folder of images sorted into one sub-folder per class."""

import os
import warnings

import numpy as np
from PIL import Image

from kerascnn.errors import InputError


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = {"train": "train", "test": "test", "validation": "validation", "val": "validation"}
GREY_8BIT_MODES = ("1", "L", "LA")
_LISTED = 20


def read_folder(root):
    """Reads `root/<class>/**/<image>` (or `root/{train,test,validation}/<class>/...`).

    Classes are the sub-folder names, sorted. Images are decoded with Pillow and brought to
    one type and scale:

    - every image 16-bit grey: uint16 grey, values as stored (0..65535);
    - otherwise uint8 (0..255): 16-bit values are scaled by 255/65535 (rounded), so a white
      pixel is 255 whatever the file's depth;
    - grey when every image is grey, otherwise RGB (grey images repeated to three channels,
      alpha dropped; Pillow reads 16-bit RGB files as 8-bit RGB).

    Files that are not images, or that cannot be decoded, are skipped with one warning that
    counts and lists them; so are links back into the folder (see `list_files`).

    Args:
        root: the folder.

    Returns:
        A dict of `RawData` fields: name, x_train, y_train (and x_test, y_test, x_val, y_val
        for a split layout) with the images as lists, for `load` to stack or resize;
        class_names, sha256=None, kind="image".

    Raises:
        ValueError: for a folder without class sub-folders or a class without readable
            images.
    """
    layout, class_names, listed, skipped = list_files(root)
    total, fields = len(skipped), {}
    for split, entries in listed.items():
        images, labels = [], []
        for path, label in entries:
            total += 1
            image = _decode(path, skipped, root)
            if image is not None:
                images.append(image)
                labels.append(label)
        if split == "train":
            check_every_class(labels, class_names, layout["train"])
        add_split(fields, split, images, labels)
    finish_fields(fields, skipped, total, root)
    name = os.path.basename(os.path.normpath(root))
    return dict(name=name, class_names=class_names, sha256=None, kind="image", **fields)


def list_files(root):
    """Lists an image folder's files once, in the order both loaders read them.

    Links are followed only out of the folder, and at most once: a link that points back
    into `root` (`ln -s . self`), or to a folder holding it, or to a folder already listed,
    would read images twice or forever, and is skipped.

    Returns:
        ({split: folder}, sorted class names, {split: [(path, class index), ...]}, the links
        skipped as "relative path (why)" for `warn_skipped`).

    Raises:
        ValueError: as `folder_layout`.
    """
    links = []
    layout, class_names = folder_layout(root, links)
    listed = {split: [(path, label) for label, name in enumerate(class_names)
                      for path in class_files(folder, name, root, links)]
              for split, folder in layout.items()}
    return layout, class_names, listed, links


def check_every_class(labels, class_names, folder):
    """Raises ValueError naming the first class without a readable image among `labels`."""
    present = set(int(label) for label in labels)
    for label, name in enumerate(class_names):
        if label not in present:
            raise InputError(
                f"Class {name!r} has no readable images in {os.path.join(folder, name)}.")


def folder_layout(root, links=None):
    """Returns ({split: folder}, sorted class names) of an image folder.

    Args:
        root: the folder.
        links: None, or a list to append the links skipped (see `list_files`) to.

    Raises:
        ValueError: for a folder without class sub-folders, or a split folder with classes
            that the train folder lacks.
    """
    links = [] if links is None else links
    subfolders = _subfolders(root, root, links)
    if subfolders and all(name in SPLIT_FOLDERS for name in subfolders) and "train" in subfolders:
        layout = {SPLIT_FOLDERS[name]: os.path.join(root, name) for name in subfolders}
    else:
        layout = {"train": root}
    class_names = _subfolders(layout["train"], root, links if len(layout) > 1 else [])
    if not class_names:
        raise InputError(
            f"{layout['train']} has no class sub-folders: put each class's images in "
            "<folder>/<class name>/."
        )
    for split, folder in layout.items():
        extra = sorted(set(_subfolders(folder, root, links if split != "train" else []))
                       - set(class_names))
        if extra:
            raise InputError(f"{folder} has classes {extra} that the train folder lacks.")
    return layout, class_names


def class_files(folder, name, root=None, links=None):
    """Returns the paths of the files of class `name` in `folder`, in a fixed sorted order.

    Args:
        folder, name: the class's folder is `folder/name`.
        root: the image folder; links back into it are not followed (default: `folder`).
        links: None, or a list to append the links skipped to.
    """
    root = folder if root is None else root
    return _files(os.path.join(folder, name), root, [] if links is None else links)


def add_split(fields, split, images, labels):
    """Puts a split's images and labels into `fields` under keras.datasets' names."""
    key = {"train": "train", "test": "test", "validation": "val"}[split]
    fields[f"x_{key}"], fields[f"y_{key}"] = images, np.array(labels, np.int64)


def finish_fields(fields, skipped, total, root):
    """Warns once about the files skipped (at the caller of `load`), gives the images one
    type and drops empty splits."""
    warn_skipped(skipped, total, root, stacklevel=6)
    to_common_type(fields)
    for key in [k for k in fields if k.startswith("x_") and not fields[k]]:
        fields[key] = fields[key.replace("x_", "y_")] = None


def warn_skipped(skipped, total, root, stacklevel):
    """Warns once, counting and listing (the first few of) the files skipped in `root`."""
    if skipped:
        listed = "; ".join(skipped[:_LISTED]) + ("; ..." if len(skipped) > _LISTED else "")
        warnings.warn(f"Skipped {len(skipped)} of {total} files in {root}: {listed}",
                      stacklevel=stacklevel)


def _entries(folder, root, links, seen):
    """The visible entries of `folder` to read, sorted by name, links back in left out."""
    with os.scandir(folder) as scan:
        entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
    kept = []
    for entry in entries:
        if entry.is_symlink():
            why = _unfollowed(os.path.realpath(entry.path), os.path.realpath(root), seen)
            if why:
                links.append(f"{os.path.relpath(entry.path, root)} ({why}: not followed)")
                continue
        kept.append(entry)
    return kept


def _unfollowed(target, root, seen):
    """Why a link to `target` is not followed, or None (both real paths)."""
    if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
        return "a link back into the folder"
    if root.startswith(target.rstrip(os.sep) + os.sep):
        return "a link to a folder holding the folder"
    if target in seen:
        return "a link to a folder already read"
    return None


def _subfolders(folder, root, links):
    return [entry.name for entry in _entries(folder, root, links, set()) if entry.is_dir()]


def _files(folder, root, links, seen=None):
    """The files under `folder`, each folder's own files first, then its sub-folders'."""
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(folder))
    entries = _entries(folder, root, links, seen)
    paths = [entry.path for entry in entries if not entry.is_dir()]
    for entry in entries:
        if entry.is_dir() and os.path.realpath(entry.path) not in seen:
            paths.extend(_files(entry.path, root, links, seen))
    return paths


def decoded(file):
    """Decodes one image file as `read_folder` holds it.

    Args:
        file: a path, or a binary file object.

    Returns:
        (pixels, Pillow's format name, Pillow's mode): pixels as a uint8 array (H, W) or
        (H, W, 3), or uint16 (H, W) for 16-bit grey.

    Raises:
        Whatever Pillow raises for a file it cannot decode (many types), or ValueError.
    """
    with Image.open(file) as image:
        image.load()
        if image.mode.startswith("I"):  # 16-bit grey ("I;16", or "I" holding 16 bits)
            pixels = np.asarray(image)
            if pixels.min() < 0 or pixels.max() > 65535:
                raise InputError("32-bit grey values outside 0..65535 are not supported")
            return pixels.astype(np.uint16), image.format, image.mode
        grey = image.mode in GREY_8BIT_MODES
        return np.asarray(image.convert("L" if grey else "RGB")), image.format, image.mode


def decode_or_reason(path):
    """Decodes the file at `path` as `read_folder` does, or says why it skips it.

    Returns:
        ((pixels, format, mode) as `decoded` returns them, None), or (None, the reason:
        "not an image file", or the decoding error as "ErrorType: message").
    """
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        return None, "not an image file"
    try:
        return decoded(path), None
    except Exception as error:  # Pillow raises many types for damaged files.
        return None, f"{type(error).__name__}: {error}"


def _decode(path, skipped, root):
    """Returns the image at `path` as an array (H, W) or (H, W, 3), or None if skipped."""
    result, reason = decode_or_reason(path)
    if reason is not None:
        skipped.append(f"{os.path.relpath(path, root)} ({reason})")
        return None
    return result[0]


def to_common_type(fields):
    """Brings every image to uint8 (or uint16 if all are 16-bit grey), RGB if any is RGB."""
    keys = [key for key in fields if key.startswith("x_")]
    images = [image for key in keys for image in fields[key]]
    eight_bit = not all(image.dtype == np.uint16 for image in images)
    colour = any(image.ndim == 3 for image in images)
    for key in keys:
        fields[key] = [_converted(image, eight_bit, colour) for image in fields[key]]


def _converted(image, eight_bit, colour):
    if eight_bit and image.dtype == np.uint16:
        # 65535 -> 255 exactly: the rounded quotient by 257 (= 65535 / 255).
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if colour and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image
