"""Receptive fields against the input region a unit's gradient actually reaches."""

import keras
import numpy as np
import tensorflow as tf

from kerascnn.analysis import ReceptiveField, inspect, receptive_field

L = keras.layers


def measured_field(model, unit):
    """Size per axis of the input region that output `unit` (spatial index) depends on.

    With positive weights and linear layers nothing cancels, so the non-zero
    gradient marks exactly the receptive field.
    """
    for weight in model.weights:
        weight.assign(np.ones(weight.shape, weight.dtype))
    x = tf.zeros((1, *model.input.shape[1:]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        picked = tf.reduce_sum(y[(0, *unit)])
    grad = tape.gradient(picked, x).numpy()[0]
    touched = np.nonzero(np.abs(grad).sum(axis=-1))
    return tuple(int(idx.max() - idx.min() + 1) for idx in touched), tuple(int(idx.min()) for idx in touched)


def stack(input_shape, *layers):
    x = keras.Input(input_shape)
    y = x
    for layer in layers:
        y = layer(y)
    return keras.Model(x, y)


def check(model, unit):
    """The reported field of the output equals the measured size; the jump, the step."""
    reported = inspect(model).layers[-1].receptive_field
    sizes, start = measured_field(model, unit)
    assert tuple(f.size for f in reported) == sizes
    for axis, field in enumerate(reported):
        neighbour = list(unit)
        neighbour[axis] += 1
        assert measured_field(model, neighbour)[1][axis] - start[axis] == field.jump


def test_1d_dilation_pooling_stride():
    model = stack((64, 1), L.Conv1D(1, 3, dilation_rate=2), L.AveragePooling1D(2), L.Conv1D(1, 5, strides=3))
    assert inspect(model).layers[-1].receptive_field == (ReceptiveField(6 + 4 * 2, 6),)
    check(model, (3,))


def test_2d_anisotropic_depthwise_separable():
    model = stack(
        (40, 40, 1),
        L.Conv2D(2, (3, 5), strides=(1, 2)),
        L.DepthwiseConv2D(3, dilation_rate=2),
        L.AveragePooling2D(3, strides=2),
        L.SeparableConv2D(1, 3),
    )
    check(model, (4, 2))


def test_3d():
    model = stack((20, 20, 20, 1), L.Conv3D(1, 3, strides=2), L.AveragePooling3D(2), L.Conv3D(1, 2))
    check(model, (1, 1, 1))


def test_merge_takes_the_largest_branch():
    x = keras.Input((30, 30, 1))
    small = L.Conv2D(1, 3, padding="same")(x)
    large = L.Conv2D(1, 3, dilation_rate=3, padding="same")(L.Conv2D(1, 3, padding="same")(x))
    model = keras.Model(x, L.Conv2D(1, 1)(L.Add()([small, large])))
    assert inspect(model).layers[-1].receptive_field == ((9, 1), (9, 1))
    check(model, (15, 15))


def test_transposed_convolution_and_upsampling_divide_the_jump():
    model = stack((32, 32, 1), L.Conv2D(1, 3, strides=2), L.Conv2DTranspose(1, 3, strides=2), L.Conv2D(1, 3))
    assert inspect(model).layers[-1].receptive_field == ((7, 1), (7, 1))
    # Transposed outputs see 1 or 2 inputs depending on parity: the field is the largest.
    assert max(measured_field(model, (u, 10))[0][0] for u in (9, 10)) == 7
    upsampled = stack((16, 16, 1), L.Conv2D(1, 3), L.UpSampling2D(2))
    assert inspect(upsampled).layers[-1].receptive_field == ((3, 0.5), (3, 0.5))


def test_padding_layers_and_whole_input_after_pooling():
    x = keras.Input((20, 20, 1))
    y = L.ZeroPadding2D(2)(L.Conv2D(1, 3)(x))
    y = L.Cropping2D(1)(L.Conv2D(1, 3)(y))
    out = L.Dense(2)(L.GlobalMaxPooling2D()(y))
    rows = inspect(keras.Model(x, out)).layers
    assert [r.receptive_field for r in rows[-4:-2]] == [((5, 1), (5, 1))] * 2
    assert rows[-1].receptive_field == ((20, None), (20, None))
    assert receptive_field(keras.Model(x, out)) == ((5, 1), (5, 1))


def test_squeeze_excite_gate_is_ignored_by_the_merge():
    x = keras.Input((16, 16, 4))
    y = L.Conv2D(4, 3, padding="same")(x)
    gate = L.Dense(4, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(y))
    y = L.Conv2D(4, 3, padding="same")(L.Multiply()([y, gate]))
    assert receptive_field(keras.Model(x, y)) == ((5, 1), (5, 1))


def test_published_receptive_fields():
    # Araujo et al., "Computing Receptive Fields of CNNs" (Distill 2019) and the
    # TensorFlow receptive_field library: VGG-16 212, ResNet-50 483, MobileNet 315.
    for build, size in (
        (keras.applications.VGG16, 212),
        (keras.applications.ResNet50, 483),
        (keras.applications.MobileNet, 315),
    ):
        model = build(weights=None, include_top=False, input_shape=(224, 224, 3))
        assert receptive_field(model) == ((size, 32), (size, 32)), model.name
