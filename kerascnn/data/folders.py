"""Reads a folder of images sorted into one sub-folder per class."""

import os
import warnings

import numpy as np
from PIL import Image


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
    counts and lists them.

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
    layout, class_names = folder_layout(root)
    skipped, total, fields = [], 0, {}
    for split, folder in layout.items():
        images, labels = [], []
        for label, name in enumerate(class_names):
            for path in class_files(folder, name):
                total += 1
                image = _decode(path, skipped, root)
                if image is not None:
                    images.append(image)
                    labels.append(label)
            if split == "train" and label not in labels:
                raise ValueError(
                    f"Class {name!r} has no readable images in {os.path.join(folder, name)}."
                )
        key = {"train": "train", "test": "test", "validation": "val"}[split]
        fields[f"x_{key}"], fields[f"y_{key}"] = images, np.array(labels, np.int64)
    warn_skipped(skipped, total, root, stacklevel=5)  # the caller of load()
    _to_common_type(fields)
    for key in [k for k in fields if k.startswith("x_") and not fields[k]]:
        fields[key] = fields[key.replace("x_", "y_")] = None
    name = os.path.basename(os.path.normpath(root))
    return dict(name=name, class_names=class_names, sha256=None, kind="image", **fields)


def folder_layout(root):
    """Returns ({split: folder}, sorted class names) of an image folder.

    Raises:
        ValueError: for a folder without class sub-folders, or a split folder with classes
            that the train folder lacks.
    """
    subfolders = _subfolders(root)
    if subfolders and all(name in SPLIT_FOLDERS for name in subfolders) and "train" in subfolders:
        layout = {SPLIT_FOLDERS[name]: os.path.join(root, name) for name in subfolders}
    else:
        layout = {"train": root}
    class_names = _subfolders(layout["train"])
    if not class_names:
        raise ValueError(
            f"{layout['train']} has no class sub-folders: put each class's images in "
            "<folder>/<class name>/."
        )
    for folder in layout.values():
        extra = sorted(set(_subfolders(folder)) - set(class_names))
        if extra:
            raise ValueError(f"{folder} has classes {extra} that the train folder lacks.")
    return layout, class_names


def class_files(folder, name):
    """Returns the paths of the files of class `name` in `folder`, in a fixed sorted order."""
    return _files(os.path.join(folder, name))


def warn_skipped(skipped, total, root, stacklevel):
    """Warns once, counting and listing (the first few of) the files skipped in `root`."""
    if skipped:
        listed = "; ".join(skipped[:_LISTED]) + ("; ..." if len(skipped) > _LISTED else "")
        warnings.warn(f"Skipped {len(skipped)} of {total} files in {root}: {listed}",
                      stacklevel=stacklevel)


def _subfolders(folder):
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _files(folder):
    paths = []
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        paths.extend(os.path.join(parent, f) for f in sorted(files) if not f.startswith("."))
    return paths


def _decode(path, skipped, root):
    """Returns the image at `path` as an array (H, W) or (H, W, 3), or None if skipped."""
    shown = os.path.relpath(path, root)
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        skipped.append(f"{shown} (not an image file)")
        return None
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith("I"):  # 16-bit grey ("I;16", or "I" holding 16 bits)
                pixels = np.asarray(image)
                if pixels.min() < 0 or pixels.max() > 65535:
                    raise ValueError("32-bit grey values outside 0..65535 are not supported")
                return pixels.astype(np.uint16)
            return np.asarray(image.convert("L" if image.mode in GREY_8BIT_MODES else "RGB"))
    except Exception as error:  # Pillow raises many types for damaged files.
        skipped.append(f"{shown} ({type(error).__name__}: {error})")
        return None


def _to_common_type(fields):
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
