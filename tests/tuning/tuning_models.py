"""A model small enough that one fold of digits trains in about a second (tests and jobs)."""

import keras

# The recipe fields the tests search: few values, so each search stays small.
SPACE = {"learning_rate": [3e-3, 1e-2], "batch_size": [64]}


def tiny(hp):
    """One hidden layer on 8×8 digits; `units` is the builder's own hyperparameter."""
    units = hp.Int("units", 8, 32, step=8)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny")
