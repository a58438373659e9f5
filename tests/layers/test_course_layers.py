"""The course's layers: Maxout, leaky ReLU with its slope, PReLU, DropConnect on convolutions,
locally connected 1D/2D: values against NumPy, counts through kerascnn.inspect, a training
step and a .keras round trip."""

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.layers import (
    DropConnectConv2D,
    LocallyConnected1D,
    LocallyConnected2D,
    Maxout,
    conv,
    factories,
)

RNG = np.random.default_rng(0)


def test_partial_connection_example_has_444_parameters():
    # 7×7 input, 6×6 windows, 3 maps: 2×2 positions × 3 filters × (36 weights + 1 bias).
    inputs = keras.Input((7, 7, 1))
    model = keras.Model(inputs, LocallyConnected2D(3, 6, name="partial")(inputs))
    report = kerascnn.inspect(model)
    assert report.params == 2 * 2 * 3 * (6 * 6 + 1) == 444
    assert report.macs == 2 * 2 * 3 * 6 * 6
    assert report.neurons == 2 * 2 * 3
    # A convolution with the same windows shares them: 3 × (36 + 1) parameters.
    shared = keras.Model(inputs, keras.layers.Conv2D(3, 6)(inputs))
    assert kerascnn.inspect(shared).params == 111


def test_locally_connected_2d_matches_numpy():
    layer = LocallyConnected2D(4, (3, 2), strides=(2, 1))
    x = RNG.uniform(size=(2, 7, 5, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    bias_random = RNG.normal(size=bias.shape).astype("float32")
    layer.bias.assign(bias_random)
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (2, 3, 4, 4)
    for i in range(3):
        for j in range(4):
            window = x[:, 2 * i:2 * i + 3, j:j + 2, :].reshape(2, -1)
            np.testing.assert_allclose(out[:, i, j], window @ kernel[i, j] + bias_random[i, j],
                                       rtol=1e-5, atol=1e-5)


def test_locally_connected_1d_matches_numpy_and_counts():
    layer = LocallyConnected1D(2, 3, strides=2)
    x = RNG.uniform(size=(2, 9, 2)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    assert out.shape == (2, 4, 2) and layer.count_params() == 4 * 2 * (3 * 2 + 1)
    for i in range(4):
        np.testing.assert_allclose(out[:, i], x[:, 2 * i:2 * i + 3].reshape(2, -1) @ kernel[i] + bias[i],
                                   rtol=1e-5, atol=1e-6)


def test_maxout_is_the_max_of_k_affine_pieces_and_inspect_counts_it():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, Maxout(5, pieces=3, name="maxout")(inputs))
    report = kerascnn.inspect(model)
    assert report.params == 3 * 5 * (8 + 1) == 135 and report.macs == 3 * 5 * 8
    assert report.neurons == 5  # one unit per max, not one per piece
    layer = model.get_layer("maxout")
    layer.bias.assign(RNG.normal(size=15).astype("float32"))
    x = RNG.normal(size=(4, 8)).astype("float32")
    pieces = (x @ layer.kernel.numpy() + layer.bias.numpy()).reshape(4, 5, 3)
    np.testing.assert_allclose(model(x), pieces.max(axis=-1), rtol=1e-5, atol=1e-6)


def test_leaky_relu_slope_is_an_option():
    x = keras.ops.convert_to_tensor(np.array([[-2.0, -0.5, 0.0, 3.0]], "float32"))
    y = keras.ops.convert_to_numpy(factories.activation(x, "leaky_relu:0.1", "act"))
    np.testing.assert_allclose(y, [[-0.2, -0.05, 0.0, 3.0]], rtol=1e-6)
    model = kerascnn.build_model("lenet5", activation="leaky_relu:0.1", input_shape=(28, 28, 1))
    slopes = [l.negative_slope for l in model.layers if isinstance(l, keras.layers.LeakyReLU)]
    assert slopes == [0.1] * 4  # conv1, conv2, fc1, fc2
    with pytest.raises(ValueError, match=r"activation='leaky_relu:x': 'x' is not a number"):
        kerascnn.build_model("lenet5", activation="leaky_relu:x")
    with pytest.raises(ValueError, match="maxout needs at least 2 pieces"):
        kerascnn.build_model("lenet5", activation="maxout:1")


def test_prelu_and_maxout_as_activation_choices_count_their_parameters():
    plain = kerascnn.build_model("lenet5").count_params()
    prelu = kerascnn.build_model("lenet5", activation="prelu").count_params()
    assert prelu - plain == 6 + 16 + 120 + 84  # one slope per channel / unit (He et al., 2015)
    maxout = kerascnn.build_model("lenet1", activation="maxout:2")
    # Each maxout keeps the width: 2 pieces × c × (c + 1) parameters for c channels.
    assert maxout.count_params() - kerascnn.build_model("lenet1").count_params() == \
        2 * 4 * 5 + 2 * 12 * 13


def test_drop_connect_convolution_trains_masked_and_infers_plain():
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, conv(inputs, 4, 3, name="conv", drop_connect=0.5))
    layer = model.get_layer("conv")
    assert isinstance(layer, DropConnectConv2D) and layer.rate == 0.5
    reference = keras.layers.Conv2D(4, 3, padding="same")
    reference.build((None, 6, 6, 2))
    reference.set_weights(layer.get_weights())
    x = RNG.normal(size=(2, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(model(x), reference(x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model(x, training=True), reference(x))
    with pytest.raises(ValueError, match="drop_connect applies to 'standard'"):
        conv(inputs, 4, 3, name="separable", kind="depthwise_separable", drop_connect=0.5)


def test_course_layers_train_and_survive_a_keras_round_trip(tmp_path):
    image = keras.Input((10, 10, 2))
    x = conv(image, 4, 3, name="conv", drop_connect=0.2)
    x = factories.activation(x, "leaky_relu:0.1", "conv_leaky")
    x = LocallyConnected2D(3, 3, strides=2, name="local")(x)
    x = factories.activation(x, "prelu", "local_prelu")
    x = keras.layers.Flatten()(x)
    x = factories.activation(x, "maxout:3", "flat_maxout")
    signal = keras.Input((12, 2))
    y = LocallyConnected1D(2, 4, name="local1d")(signal)
    y = keras.layers.Flatten()(Maxout(6, pieces=2, name="maxout1d")(y))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([x, y]))
    model = keras.Model([image, signal], outputs)
    data = [RNG.normal(size=(8, 10, 10, 2)).astype("float32"), RNG.normal(size=(8, 12, 2)).astype("float32")]
    labels = keras.utils.to_categorical(np.arange(8) % 3, 3)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(data, labels))
    assert all(not np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_weights, before))
    model.save(tmp_path / "course.keras")
    loaded = keras.models.load_model(tmp_path / "course.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(data), model(data), rtol=1e-5, atol=1e-6)
    assert loaded.get_layer("conv").get_config()["rate"] == 0.2
