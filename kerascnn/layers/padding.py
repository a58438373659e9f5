"""Spatial padding with a choice of mode, for 1D, 2D and 3D inputs."""

import keras
from keras import ops

from kerascnn.errors import InputError

PADDING_MODES = ("zeros", "reflect", "replicate")


def normalize_padding(padding, rank):
    """Returns padding as `rank` (before, after) pairs.

    Args:
        padding: an int, one int per spatial axis, or one (before, after) pair per axis.
        rank: the number of spatial axes.
    """
    if isinstance(padding, int):
        return tuple((padding, padding) for _ in range(rank))
    padding = tuple(padding)
    if len(padding) != rank:
        raise InputError(
            f"padding={padding!r} has {len(padding)} entries but the input has {rank} spatial "
            f"axes; give one int, or one int or (before, after) pair per axis."
        )
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
    if any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise InputError(f"padding={padding!r} must be non-negative ints or (before, after) pairs.")
    return pairs


@keras.saving.register_keras_serializable(package="kerascnn")
class SpatialPadding(keras.layers.Layer):
    """Pads the spatial axes of a channels-last tensor with zeros, a reflection or the edge.

    `reflect` mirrors without repeating the border (PyTorch `reflect`, NumPy `reflect`);
    `replicate` repeats the border value (PyTorch `replicate`, NumPy `edge`).

    Args:
        padding: int, one int per spatial axis, or one (before, after) pair per axis.
        mode: one of "zeros", "reflect", "replicate".
    """

    def __init__(self, padding=1, mode="zeros", **kwargs):
        super().__init__(**kwargs)
        if mode not in PADDING_MODES:
            raise InputError(f"padding mode {mode!r} is unknown; choose one of {PADDING_MODES}.")
        self.padding = padding
        self.mode = mode

    def build(self, input_shape):
        self.pairs = normalize_padding(self.padding, len(input_shape) - 2)
        if self.mode == "reflect":
            for axis, (before, after) in enumerate(self.pairs, start=1):
                size = input_shape[axis]
                if size is not None and max(before, after) >= size:
                    raise InputError(
                        f"{self.name}: reflect padding of {max(before, after)} needs a spatial "
                        f"size above it; got {size}. Use mode='replicate' or 'zeros'."
                    )

    def call(self, x):
        if self.mode == "zeros":
            return ops.pad(x, ((0, 0),) + self.pairs + ((0, 0),))
        for axis, (before, after) in enumerate(self.pairs, start=1):
            x = self._pad_axis(x, axis, before, after)
        return x

    def _pad_axis(self, x, axis, before, after):
        if before == 0 and after == 0:
            return x
        size = ops.shape(x)[axis]
        if self.mode == "replicate":
            head = ops.repeat(_take(x, axis, 0, 1), before, axis=axis)
            tail = ops.repeat(_take(x, axis, size - 1, size), after, axis=axis)
        else:
            head = ops.flip(_take(x, axis, 1, before + 1), axis=axis)
            tail = ops.flip(_take(x, axis, size - after - 1, size - 1), axis=axis)
        return ops.concatenate([head, x, tail], axis=axis)

    def compute_output_shape(self, input_shape):
        pairs = normalize_padding(self.padding, len(input_shape) - 2)
        spatial = [None if n is None else n + sum(p) for n, p in zip(input_shape[1:-1], pairs)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "mode": self.mode}


def _take(x, axis, start, stop):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


@keras.saving.register_keras_serializable(package="kerascnn")
class CeilModePadding(keras.layers.Layer):
    """Repeats the last row (column, ...) so a pooling window that runs past the map counts.

    Caffe's and cuda-convnet's "ceil mode" pooling on maps whose size is known only when the
    network runs (inputs of variable size); for a max-pool the repeated edge changes no
    maximum. Channels-last, 1D to 3D.

    Args:
        pool_size: the pooling window.
        strides: the pooling stride.
    """

    def __init__(self, pool_size, strides, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = pool_size, strides

    def _extra(self, size):
        return (self.pool_size - size) % self.strides

    def call(self, x):
        for axis in range(1, len(x.shape) - 1):
            size = ops.shape(x)[axis]
            tail = ops.repeat(_take(x, axis, size - 1, size), self._extra(size), axis=axis)
            x = ops.concatenate([x, tail], axis=axis)
        return x

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else n + self._extra(n) for n in input_shape[1:-1]]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}
