"""BatchNorm while fine-tuning (keras#11590): which of its variables learn, and in which mode.

- "frozen": the layers are not trainable, so Keras 3 runs them in inference mode: γ, β and
  the moving statistics all stay as the source learnt them (Keras' transfer-learning guide).
- "train_affine": γ and β learn with their stage; the layers always normalise with the
  source's moving statistics, which never update (`FixedStatisticsBatchNormalization`).
- "train": everything learns with its stage; the statistics follow the new data's batches.
"""

import keras

from kerascnn.errors import InputError

POLICIES = ("frozen", "train_affine", "train")


@keras.saving.register_keras_serializable(package="kerascnn")
class FixedStatisticsBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always normalises with its moving statistics.

    Its γ and β stay trainable while the moving mean and variance never update: the
    "train_affine" policy of fine-tuning. Same arguments and weights as BatchNormalization.
    """

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


def check_policy(bn):
    """Raises ValueError unless `bn` is one of POLICIES."""
    if bn not in POLICIES:
        raise InputError(f"bn must be one of {', '.join(POLICIES)}; got bn={bn!r}.")


def is_batchnorm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def layer_classes(bn):
    """The layer swap `surgery.rebuild` makes for a policy ({} when none)."""
    if bn == "train_affine":
        return {("keras.layers", "BatchNormalization"): FixedStatisticsBatchNormalization}
    return {}


# Rebuilding an inference copy restores Keras' own class (same weights), so a fine-tuned file
# loads without kerascnn.transfer.
RESTORE = {("kerascnn.transfer.batchnorm", "FixedStatisticsBatchNormalization"):
           keras.layers.BatchNormalization}
