"""Fine-tuning and feature extraction from trained networks.

`finetune(source, data, ...)` replaces the classifier for the new classes, adapts the input
channels, and trains by phases (head first, then more of the base at a lower rate) with a
BatchNorm policy and per-group learning rates; `extract_features(source, data, layer=None)`
returns a layer's embeddings. Sources: `.keras` files (loaded in safe mode), `saved_models/`
names, run folders, or keras.Model objects.
"""

from kerascnn.transfer.batchnorm import FixedStatisticsBatchNormalization
from kerascnn.transfer.features import extract_features
from kerascnn.transfer.finetune import finetune
from kerascnn.transfer.source import TransferError

__all__ = ["FixedStatisticsBatchNormalization", "TransferError", "extract_features", "finetune"]
