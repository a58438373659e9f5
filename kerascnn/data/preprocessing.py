"""The first layer of every kerascnn model: raw examples in, normalised model input out."""

import keras
import numpy as np
import tensorflow as tf

from kerascnn.data.errors import reading_files
from kerascnn.data.running_stats import RunningMoments
from kerascnn.errors import InputError

MODES = ("scale", "mean_image", "channel_mean", "standardize", None)
INTERPOLATIONS = (
    "bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"
)
# ITU-R BT.601 luma weights, as tf.image.rgb_to_grayscale uses.
LUMA = (0.2989, 0.587, 0.114)


@keras.saving.register_keras_serializable(package="kerascnn")
class Preprocessing(keras.layers.Layer):
    """Casts, reshapes, resizes and normalises raw examples inside the model.

    A saved model then takes examples as the data set stores them (e.g. uint8 (28, 28) or
    (28, 28, 1) MNIST digits). In order, the layer:
    1. casts to float32;
    2. adds a channel axis when the input has one axis fewer than `target_shape` (or drops a
       size-1 channel axis when it has one more);
    3. converts grey to RGB (repeats the channel) or RGB to grey (ITU-R BT.601 luma);
    4. resizes the spatial axes to `target_shape`: bilinear for images, linear for 1D signals,
       trilinear for volumes (`interpolation` picks another tf.image method);
    5. normalises with statistics of the training split, kept as non-trainable weights:
       - "scale": (x - low) / (high - low) into [0, 1], with `value_range` or the observed range;
       - "mean_image": x minus the mean training image (AlexNet, Krizhevsky et al., 2012);
       - "channel_mean": x minus the per-channel mean (VGG, Simonyan & Zisserman, 2015);
       - "standardize": (x - channel mean) / channel standard deviation;
       - None: no normalisation.

    Statistics come from `adapt(x_train)`; until then "mean_image", "channel_mean" and
    "standardize" leave values unchanged (and "scale" without `value_range` too).

    Args:
        target_shape: per-example shape the model expects, channels last, e.g. (32, 32, 1),
            (224, 224, 3), (length, channels) or (D, H, W, C); None keeps the input shape.
        mode: one of `MODES`.
        value_range: (low, high) of the raw values for mode "scale", e.g. (0, 255); None
            takes the range observed by `adapt`.
        interpolation: tf.image.resize method.
    """

    def __init__(
        self, target_shape=None, mode="scale", value_range=None, interpolation="bilinear", **kwargs
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}; got mode={mode!r}.")
        if interpolation not in INTERPOLATIONS:
            raise InputError(
                f"interpolation must be one of {INTERPOLATIONS}; got {interpolation!r}."
            )
        if target_shape is not None:
            target_shape = tuple(int(d) for d in target_shape)
            if not 2 <= len(target_shape) <= 4 or min(target_shape) < 1:
                raise InputError(
                    "target_shape is the per-example shape with channels last, (length, "
                    f"channels), (H, W, C) or (D, H, W, C); got {target_shape}."
                )
        if value_range is not None:
            value_range = tuple(float(v) for v in value_range)
            if len(value_range) != 2 or not value_range[0] < value_range[1]:
                raise InputError(
                    f"value_range must be (low, high) with low < high; got {value_range}."
                )
        self.target_shape = target_shape
        self.mode = mode
        self.value_range = value_range
        self.interpolation = interpolation
        self.is_adapted = mode is None or (mode == "scale" and value_range is not None)

    def build(self, input_shape):
        example = tuple(input_shape[1:])
        target = self.target_shape or example
        self._expand = len(example) == len(target) - 1
        self._squeeze = len(example) == len(target) + 1 and example[-1] == 1
        if not (self._expand or self._squeeze or len(example) == len(target)):
            raise InputError(
                f"Preprocessing cannot turn inputs of shape {example} into {target}: the "
                "ranks must match, up to one channel axis."
            )
        channels = 1 if self._expand else example[-2] if self._squeeze else example[-1]
        self._channel_change = None
        if channels != target[-1]:
            if (channels, target[-1]) not in ((1, 3), (3, 1)):
                raise InputError(
                    f"Preprocessing converts 1 <-> 3 channels only; got {channels} channels "
                    f"for a target of {target[-1]} (target_shape={target})."
                )
            self._channel_change = (channels, target[-1])
        self._output_shape = target
        shapes = {
            "scale": ((), ()),
            "mean_image": (target, ()),
            "channel_mean": (target[-1:], ()),
            "standardize": (target[-1:], target[-1:]),
        }
        if self.mode is not None:
            mean_shape, std_shape = shapes[self.mode]
            low, high = self.value_range or (0.0, 1.0)
            scale = self.mode == "scale"
            self.mean = self.add_weight(
                name="mean",
                shape=mean_shape,
                trainable=False,
                initializer=keras.initializers.Constant(low if scale else 0.0),
            )
            self.std = self.add_weight(
                name="std",
                shape=std_shape,
                trainable=False,
                initializer=keras.initializers.Constant(high - low if scale else 1.0),
            )

    def transform(self, inputs):
        """Steps 1 to 4 (cast, channel axis, channels, resize), without normalisation."""
        x = tf.cast(inputs, tf.float32)
        if self._expand:
            x = x[..., tf.newaxis]
        elif self._squeeze:
            x = x[..., 0]
        if self._channel_change == (3, 1):
            x = tf.reduce_sum(x * tf.constant(LUMA), axis=-1, keepdims=True)
        x = self._resize(x)
        if self._channel_change == (1, 3):
            x = tf.repeat(x, 3, axis=-1)
        return x

    def _resize(self, x):
        target = self._output_shape[:-1]
        if x.shape[1:-1] == target:
            return x
        if len(target) == 2:
            return tf.image.resize(x, target, method=self.interpolation)
        if len(target) == 1:
            x = tf.image.resize(x[:, :, tf.newaxis, :], (target[0], 1), method=self.interpolation)
            return x[:, :, 0, :]
        # Trilinear as two separable passes: (H, W) of every depth slice, then depth.
        depth, height, width = target
        shape = tf.shape(x)
        batch, channels = shape[0], x.shape[-1]
        slices = tf.reshape(x, (-1, shape[2], shape[3], channels))
        slices = tf.image.resize(slices, (height, width), method=self.interpolation)
        columns = tf.reshape(slices, (batch, shape[1], height * width, channels))
        columns = tf.image.resize(columns, (depth, height * width), method=self.interpolation)
        return tf.reshape(columns, (batch, depth, height, width, channels))

    def call(self, inputs):
        x = self.transform(inputs)
        if self.mode is None:
            return x
        return (x - self.mean) / self.std

    def adapt(self, data, batch_size=256, progress=None):
        """Computes the normalisation statistics from training examples, in one pass.

        Batches are transformed (cast, channels, resize) and merged into float64 running
        statistics of constant size (`RunningMoments`: per-channel mean and variance by the
        pairwise update of Chan et al.; the mean image when the mode needs it), so memory
        does not grow with the data.

        Args:
            data: array-like of raw training examples (examples first), a tf.data dataset
                of such batches or of (batch, labels) pairs, or streamed examples (an object
                with `as_dataset(batch_size)`, as `x_train` of a streaming `Data`).
            batch_size: examples per batch when `data` is an array or streamed.
            progress: show a progress bar (keras.utils.Progbar); None shows one for
                streamed examples only.
        """
        if self.mode is None or (self.mode == "scale" and self.value_range is not None):
            self.is_adapted = True  # fixed statistics: no pass over the data
            return
        steps = None
        streamed = hasattr(data, "as_dataset")
        if streamed:
            steps = -(-len(data) // batch_size)
            data = data.as_dataset(batch_size)
        if isinstance(data, tf.data.Dataset):
            chunks = _batches(data)
        else:
            steps = -(-len(data) // batch_size)
            chunks = (data[start : start + batch_size] for start in range(0, len(data), batch_size))
        bar = keras.utils.Progbar(steps, unit_name="batch") if (
            streamed if progress is None else progress) else None
        channel_moments, image_sum, count, low, high = None, 0.0, 0, np.inf, -np.inf
        for chunk in chunks:
            if not self.built:
                self.build((None,) + tuple(np.shape(chunk)[1:]))
            x = self.transform(chunk).numpy()
            if channel_moments is None:
                channel_moments = RunningMoments(axis=tuple(range(x.ndim - 1)))
            channel_moments.update(x)
            if self.mode == "mean_image":
                image_sum = image_sum + x.sum(axis=0, dtype=np.float64)
            count += len(x)
            low, high = min(low, float(x.min())), max(high, float(x.max()))
            if bar is not None:
                bar.add(1)
        if not count:
            raise InputError("adapt() needs at least one training example.")
        mean_image = image_sum / count
        channel_mean, channel_std = channel_moments.mean, channel_moments.std
        if self.mode == "scale" and self.value_range is None:
            self.mean.assign(low)
            self.std.assign(high - low if high > low else 1.0)
        elif self.mode == "mean_image":
            self.mean.assign(mean_image)
        elif self.mode in ("channel_mean", "standardize"):
            self.mean.assign(channel_mean)
        if self.mode == "standardize":
            self.std.assign(np.where(channel_std > 0, channel_std, 1.0))
        self.is_adapted = True

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.is_adapted = True

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
        return (input_shape[0],) + tuple(self._output_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "target_shape": self.target_shape,
            "mode": self.mode,
            "value_range": self.value_range,
            "interpolation": self.interpolation,
        }


def _batches(dataset):
    """The example batches of `dataset`; a streamed file changed since loading: one line."""
    with reading_files():
        for batch in dataset:
            yield batch[0] if isinstance(batch, tuple) else batch


def split_network(model):
    """Returns (preprocessing layer or None, backbone) of a model.

    A kerascnn-trained model is `inputs -> Preprocessing -> backbone (a nested Model)`; any
    other model is its own backbone.
    """
    preprocessing = next((l for l in model.layers[:3] if isinstance(l, Preprocessing)), None)
    nested = [l for l in model.layers if isinstance(l, keras.Model)]
    if preprocessing is not None and len(nested) == 1:
        return preprocessing, nested[0]
    return preprocessing, model
