"""Input adaptation: a network trained on C channels run on N, through its first convolution.

As timm's `adapt_input_conv`: for one channel the kernels of the C input channels are summed (a
grey image g seen as C equal channels gives the same response: sum_c K_c * g); for N channels
the C kernels are repeated cyclically and scaled by C / N. An image whose N channels all equal
g then gives the source's response to C channels of g exactly when N is a multiple of C (grey
to RGB, RGB to 6 channels); otherwise the response is preserved on average over the colour
channels, as in timm.
"""

import numpy as np


def adapt_kernel(kernel, channels):
    """Returns a convolution kernel (..., C, filters) converted to `channels` input channels.

    Args:
        kernel: NumPy array, input channels on axis -2.
        channels: the new number of input channels.
    """
    kernel = np.asarray(kernel)
    if channels == 1:
        return kernel.sum(axis=-2, keepdims=True)
    old = kernel.shape[-2]
    repeats = -(-channels // old)
    tiled = np.concatenate([kernel] * repeats, axis=-2)[..., :channels, :]
    return tiled * (old / channels)


def adapt_statistics(value, shape):
    """Returns per-channel normalisation statistics (mean or std) for another channel count.

    Channel statistics of one channel are repeated; several channels becoming one take their
    mean (exact for images whose channels are equal, the grey ↔ RGB case).
    """
    value = np.asarray(value)
    channels = shape[-1]
    if value.shape[-1] == 1:
        return np.broadcast_to(value, shape).copy()
    mean = value.mean(axis=-1, keepdims=True)
    return np.broadcast_to(mean, shape).copy() if channels == 1 else \
        np.broadcast_to(np.resize(value, shape), shape).copy()
