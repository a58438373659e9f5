"""kerascnn.analysis.reference against TensorFlow's own convolution and pooling ops."""

import itertools

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from kerascnn.analysis import reference

RNG = np.random.default_rng(0)
SPATIAL = {1: (11,), 2: (9, 10), 3: (7, 6, 8)}


def random(*shape):
    return RNG.normal(size=shape).astype("float32")


def tf_pad(x, width, mode):
    """Pads the spatial axes in TensorFlow: tf.pad, or gathers for the modes it lacks."""
    pads = [(0, 0)] + [(width, width)] * (x.ndim - 2) + [(0, 0)]
    if mode in ("zeros", "reflect", "symmetric"):
        return tf.pad(x, pads, mode={"zeros": "CONSTANT"}.get(mode, mode.upper()))
    y = tf.constant(x)
    for axis in range(1, x.ndim - 1):
        index = np.arange(-width, x.shape[axis] + width)
        index = np.clip(index, 0, x.shape[axis] - 1) if mode == "replicate" else index % x.shape[axis]
        y = tf.gather(y, index, axis=axis)
    return y


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_equals_tensorflow_across_strides_paddings_dilations(rank):
    x = random(2, *SPATIAL[rank], 3)
    w = random(*([3] * rank), 3, 4)
    b = random(4)
    for stride, padding, dilation in itertools.product([1, 2], ["valid", "same", 0, 1, 2], [1, 2]):
        ours = reference.conv(x, w, b, stride=stride, padding=padding, dilation=dilation)
        if padding == "same":
            if dilation > 1 and stride > 1:
                continue  # TensorFlow refuses strides and dilation together
            theirs = tf.nn.convolution(x, w, strides=stride, padding="SAME", dilations=dilation)
        else:
            padded = tf_pad(x, 0 if padding == "valid" else padding, "zeros")
            # Strides subsample the stride-1 output (TensorFlow refuses both at once).
            theirs = tf.nn.convolution(padded, w, padding="VALID", dilations=dilation)
            theirs = theirs[(slice(None),) + (slice(None, None, stride),) * rank]
        np.testing.assert_allclose(ours, theirs + b, atol=1e-4, err_msg=f"{stride} {padding} {dilation}")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "symmetric", "replicate", "circular"])
def test_conv_padding_modes(mode):
    for rank in (1, 2, 3):
        x = random(1, *SPATIAL[rank], 2)
        w = random(*([3] * rank), 2, 3)
        ours = reference.conv(x, w, stride=2, padding=2, padding_mode=mode)
        theirs = tf.nn.convolution(tf_pad(x, 2, mode), w, strides=2, padding="VALID")
        np.testing.assert_allclose(ours, theirs, atol=1e-4, err_msg=f"rank {rank}")


def test_grouped_and_depthwise_conv():
    x = random(2, 8, 9, 6)
    w = random(3, 3, 2, 9)  # 3 groups of 2 input channels -> 3 filters each
    ours = reference.conv(x, w, stride=2, padding="same", groups=3)
    theirs = tf.concat(
        [
            tf.nn.convolution(x[..., 2 * g : 2 * g + 2], w[..., 3 * g : 3 * g + 3], strides=2, padding="SAME")
            for g in range(3)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    depthwise = random(3, 3, 6, 2)  # Keras layout (k, k, channels, multiplier)
    ours = reference.conv(x, depthwise.reshape(3, 3, 1, 12), padding="same", groups=6)
    theirs = tf.nn.depthwise_conv2d(x, depthwise, strides=[1, 1, 1, 1], padding="SAME")
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_conv_is_one_matrix_product_of_im2col_and_the_filters():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(
        reference.im2col(x, 2, stride=2),
        [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]],
    )
    x, w = random(2, 7, 8, 3), random(3, 2, 3, 5)
    rows = reference.im2col(x, (3, 2), stride=(2, 1), padding=1)
    assert rows.shape == (2 * 4 * 9, 3 * 2 * 3)
    np.testing.assert_allclose(
        reference.conv(x, w, stride=(2, 1), padding=1).reshape(-1, 5), rows @ w.reshape(-1, 5), rtol=1e-6
    )


def test_conv_is_a_correlation_not_a_flipped_convolution():
    x, k = random(1, 6, 7, 1), random(3, 2)
    ours = reference.conv(x, k[:, :, None, None])[0, :, :, 0]
    np.testing.assert_allclose(ours, scipy.signal.correlate2d(x[0, :, :, 0], k, mode="valid"), rtol=1e-5, atol=1e-5)
    assert not np.allclose(ours, scipy.signal.convolve2d(x[0, :, :, 0], k, mode="valid"), atol=1e-3)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_pool_equals_tensorflow(rank):
    x = random(2, *SPATIAL[rank], 3)
    for kind, size, stride, padding in itertools.product(["max", "mean"], [2, 3], [None, 1, 2], ["valid", "same"]):
        ours = reference.pool(x, size, stride, padding=padding, kind=kind)
        theirs = tf.nn.pool(
            x, [size] * rank, {"max": "MAX", "mean": "AVG"}[kind], strides=[stride or size] * rank, padding=padding.upper()
        )
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, err_msg=f"{kind} {size} {stride} {padding}")


def test_global_pool():
    x = random(2, 5, 6, 7, 3)
    np.testing.assert_allclose(reference.global_pool(x, "mean"), tf.reduce_mean(x, axis=(1, 2, 3)), rtol=1e-5)
    assert reference.global_pool(x, "max", keepdims=True).shape == (2, 1, 1, 1, 3)
    np.testing.assert_array_equal(reference.global_pool(x, "max")[0], x[0].max(axis=(0, 1, 2)))


def test_bad_arguments_are_explained():
    x = random(1, 5, 5, 4)
    with pytest.raises(ValueError, match=r"Kernel of shape \(3, 3, 3, 2\) does not fit input \(1, 5, 5, 4\)"):
        reference.conv(x, random(3, 3, 3, 2))
    with pytest.raises(ValueError, match="groups=3"):
        reference.conv(x, random(3, 3, 2, 2), groups=3)
    with pytest.raises(ValueError, match="padding_mode must be one of .* got 'mirror'"):
        reference.conv(x, random(3, 3, 4, 2), padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match="kind must be 'max' or 'mean'; got 'sum'"):
        reference.pool(x, 2, kind="sum")
    with pytest.raises(ValueError, match="stride must be an int >= 1 or 2 of them; got 0"):
        reference.im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match="does not fit the padded input"):
        reference.im2col(x, 7)
