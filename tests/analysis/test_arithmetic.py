"""kerascnn.analysis.conv_output_size against Keras's own shape arithmetic."""

import itertools
import re

import keras
import pytest

from kerascnn.analysis import conv_output_size


def keras_size(size, kernel_size, stride, padding, dilation):
    layer = keras.layers.Conv1D(1, kernel_size, strides=stride, dilation_rate=dilation, padding=padding)
    return layer.compute_output_shape((None, size, 1))[1]


def test_valid_combinations_match_keras_and_invalid_ones_raise():
    checked = invalid = 0
    for size, k, s, p, d in itertools.product(range(1, 21), range(1, 6), range(1, 4), range(3), range(1, 3)):
        if s > 1 and d > 1:
            continue  # Keras refuses strides and dilation together
        span = size + 2 * p - d * (k - 1) - 1
        if span >= 0 and span % s == 0:
            assert conv_output_size(size, k, s, p, d) == keras_size(size + 2 * p, k, s, "valid", d)
            checked += 1
        else:
            with pytest.raises(ValueError, match=re.escape(f"({size} - {d * (k - 1) + 1} + 2*{p}) = {span}")):
                conv_output_size(size, k, s, p, d)
            invalid += 1
    assert checked > 500 and invalid > 300


def test_same_and_valid_padding():
    for size, k, s in itertools.product(range(1, 20), range(1, 6), range(1, 4)):
        assert conv_output_size(size, k, s, "same") == keras_size(size, k, s, "same", 1)
    assert conv_output_size(7, 3, 1, "valid") == 5
    assert conv_output_size(224, 7, 2, "SAME") == 112


def test_alexnet_224_is_invalid_and_the_message_says_how_to_fix_it():
    assert conv_output_size(227, 11, stride=4) == 55
    with pytest.raises(ValueError) as error:
        conv_output_size(224, 11, stride=4)
    message = str(error.value)
    assert "(224 - 11 + 2*0) = 213 is not divisible by stride 4" in message
    assert "223 or 227" in message and "No symmetric padding" in message
    assert "give 54 and ignore the last 1 input row(s)" in message  # what Keras/PyTorch do
    assert keras_size(224, 11, 4, "valid", 1) == 54


def test_suggested_padding_is_valid():
    with pytest.raises(ValueError, match=r"Use padding=(\d+)") as error:
        conv_output_size(10, 3, 3, padding=0, dilation=2)
    padding = int(re.search(r"padding=(\d+)", str(error.value)).group(1))
    assert conv_output_size(10, 3, 3, padding=padding, dilation=2) == (10 - 5 + 2 * padding) // 3 + 1


def test_kernel_larger_than_input_and_bad_values():
    with pytest.raises(ValueError, match=r"does not fit in the padded input. Use padding >= 2 or size >= 7"):
        conv_output_size(3, 7)
    for kwargs, text in (
        ({"size": 0, "kernel_size": 3}, "size must be an integer >= 1; got 0"),
        ({"size": 5, "kernel_size": 3, "stride": 1.5}, "stride must be an integer >= 1; got 1.5"),
        ({"size": 5, "kernel_size": 3, "padding": -1}, "padding must be an integer >= 0; got -1"),
        ({"size": 5, "kernel_size": 3, "padding": "full"}, "padding must be an int >= 0, 'same' or 'valid'; got 'full'"),
        ({"size": 5, "kernel_size": 3, "dilation": True}, "dilation must be an integer >= 1; got True"),
    ):
        with pytest.raises(ValueError, match=re.escape(text)):
            conv_output_size(**kwargs)
