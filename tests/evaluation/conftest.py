"""Shared fixtures: small CNNs really trained on scikit-learn's 8x8 digits (seconds)."""

import keras
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """(x_train, y_train, x_test, y_test): 8x8x1 float images in [0, 1], integer labels."""
    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    return x[:1400], data.target[:1400], x[1400:], data.target[1400:]


def small_cnn(name, num_classes=10, activation="softmax"):
    """Conv -> BatchNorm -> Dropout -> Dense: every layer kind MC dropout must treat right."""
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dropout(0.3, name="dropout"),
        keras.layers.Dense(num_classes, activation=activation, name="predictions"),
    ], name=name)
    loss = "binary_crossentropy" if activation == "sigmoid" else "sparse_categorical_crossentropy"
    model.compile("adam", loss, metrics=["accuracy"])
    return model


@pytest.fixture(scope="session")
def trained(digits):
    """(model, history) of a small CNN trained 3 epochs with a validation split."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(1)
    model = small_cnn("digits_cnn")
    history = model.fit(x_train, y_train, epochs=3, batch_size=64, validation_split=0.2,
                        verbose=0)
    return model, history


@pytest.fixture(scope="session")
def second_model(digits):
    """Another small CNN (other seed, 2 epochs) for ensembles."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(2)
    model = small_cnn("digits_cnn_2")
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def sigmoid_model(digits):
    """A one-sigmoid-output CNN trained 2 epochs on "is it an 8?"."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(3)
    model = small_cnn("eight_or_not", num_classes=1, activation="sigmoid")
    model.fit(x_train, (y_train == 8).astype("float32"), epochs=2, batch_size=64, verbose=0)
    return model

