"""LeNet's widths, kernel sizes and pooling order as options: the fast MNIST networks of the
speed records expressed in the course's vocabulary."""

import keras
import numpy as np
import pytest

import kerascnn

# tuomaso/train_mnist_fast's network: conv 5×5 ×24 → max-pool → ReLU → conv 3×3 ×32 →
# max-pool → ReLU → dense 256 → ReLU → dense 10, valid padding on 28×28 digits.
ANCHOR = dict(activation="relu", pool_kind="max", filters=(24, 32), kernel_size=(5, 3),
              hidden_units=(256,), first_padding="valid")


def _plain_keras(order):
    """The anchor network written layer by layer in plain Keras, activation before or after
    the pooling."""
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for i, (n, k) in enumerate(((24, 5), (32, 3)), start=1):
        x = keras.layers.Conv2D(n, k, name=f"conv{i}")(x)
        for step in order:
            x = keras.layers.MaxPooling2D(2)(x) if step == "pool" else keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def test_the_anchor_network_is_lenet5_options_with_its_count():
    model = kerascnn.build_model("lenet5", input_shape=(28, 28, 1), num_classes=10, **ANCHOR)
    # 5·5·24+24, 3·3·24·32+32, 5·5·32·256+256, 256·10+10: the PyTorch network's 215,194.
    assert model.count_params() == 624 + 6_944 + 205_056 + 2_570 == 215_194
    assert model.count_params() == _plain_keras(("relu", "pool")).count_params()


def test_max_pooling_before_a_monotone_activation_computes_the_same_function():
    model = kerascnn.build_model("lenet5", input_shape=(28, 28, 1), num_classes=10, **ANCHOR)
    names = [layer.name for layer in model.layers]
    assert names.index("pool1") < names.index("conv1_relu")  # pooled first: less work
    reference = _plain_keras(("relu", "pool"))  # the textbook order
    for name in ("conv1", "conv2", "fc1", "predictions"):
        reference.get_layer(name).set_weights(model.get_layer(name).get_weights())
    x = np.random.default_rng(0).normal(size=(16, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    # Average pooling does not commute with an activation: it keeps the paper's order.
    avg = [layer.name for layer in kerascnn.build_model("lenet5", activation="relu").layers]
    assert avg.index("conv1_relu") < avg.index("pool1")


def test_the_papers_widths_stay_the_default_and_bad_widths_are_named():
    assert kerascnn.build_model("lenet5").count_params() == 61_706
    assert kerascnn.build_model("lenet5", filters=(6, 16), hidden_units=(120, 84),
                                kernel_size=(5, 5)).count_params() == 61_706
    assert kerascnn.build_model("lenet5", width_multiplier=2).count_params() == \
        kerascnn.build_model("lenet5", filters=(12, 32), hidden_units=(240, 168)).count_params()
    for options, message in (({"filters": ()}, "filters=\\(\\) leaves no convolution"),
                             ({"filters": (24, -1)}, "filters=\\(24, -1\\) must be a tuple"),
                             ({"kernel_size": (5, 3, 3)}, "kernel_size=\\(5, 3, 3\\) must be"),
                             ({"kernel_size": 0}, "kernel_size=0 must be a positive int")):
        with pytest.raises(ValueError, match=message):
            kerascnn.build_model("lenet5", **options)
