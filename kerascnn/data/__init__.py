"""Data sets and the tf.data input pipeline: sources, validation, splits, folds, augmentation.

`load(source)` reads keras.datasets names, TFDS sets, scikit-learn digits, `.npz` files,
image folders (or tar archives of them), TFRecord shards (`TFRecords`) or arrays into a
`Data` (an image folder, TFDS set or TFRecords larger than memory is streamed from its
files: `kerascnn.data.streaming`, `kerascnn.data.records`); `Data.pipeline(split, batch_size, augment=...)`
builds the tf.data pipeline; `Preprocessing` is the model's first layer (cast, resize,
channels, normalisation); `augmentation(spec)` parses an augmentation spec; `preview` draws
augmented samples; `to_npz` writes a data set as a keras-layout `.npz`
(`python -m kerascnn.data.make_npz SOURCE OUT.npz`).
"""

from kerascnn.data.augment import (
    Augmentation,
    LensDistortion,
    PixelShift,
    RandomAffine,
    augmentation,
    parse_spec,
)
from kerascnn.data.dataset import Data
from kerascnn.data.errors import CacheError, DataError, FileChangedError
from kerascnn.data.npz import to_npz
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.data.preview import preview
from kerascnn.data.records import TFRecords
from kerascnn.data.sources import DATA_DIR_ENV, IMAGE_FOLDER_COPIES, KERAS_DATASETS, load

__all__ = [
    "DATA_DIR_ENV",
    "IMAGE_FOLDER_COPIES",
    "KERAS_DATASETS",
    "Augmentation",
    "CacheError",
    "Data",
    "DataError",
    "FileChangedError",
    "LensDistortion",
    "PixelShift",
    "Preprocessing",
    "RandomAffine",
    "TFRecords",
    "augmentation",
    "load",
    "parse_spec",
    "preview",
    "to_npz",
]
