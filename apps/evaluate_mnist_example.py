"""The README's evaluation example: small CNNs trained briefly on MNIST, then one full report.

Trains `--members` small CNNs (different seeds) on the offline MNIST copy, the last 5,000
training images held out for validation, and evaluates the first on the official 10,000 test
images with its learning curves, Monte-Carlo dropout and the ensemble of all members:

    PYTHONPATH=. python apps/evaluate_mnist_example.py --out runs/mnist_evaluation

The first model is saved as OUT/mnist_cnn.keras, so the same report comes from the CLI too:
`kerascnn evaluate OUT/mnist_cnn.keras --data mnist --out DIR --mc-dropout 20`.
"""

import argparse
import os
import time

import keras
import numpy as np

import kerascnn
from kerascnn import files

VALIDATION = 5000


def small_cnn(name):
    """Two conv-BN-ReLU-pool stages and a dropout-regularised dense head (~225k weights)."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets"))
    parser.add_argument("--out", default="runs/mnist_evaluation")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--mc-dropout", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with np.load(os.path.join(args.data_dir, "mnist.npz")) as mnist:
        x_train, y_train = mnist["x_train"][..., None], mnist["y_train"]
        x_test, y_test = mnist["x_test"][..., None], mnist["y_test"]
        class_names = [str(name) for name in mnist["class_names"]]
    fit_data = dict(x=x_train[:-VALIDATION], y=y_train[:-VALIDATION],
                    validation_data=(x_train[-VALIDATION:], y_train[-VALIDATION:]))

    members, histories = [], []
    for index in range(args.members):
        keras.utils.set_random_seed(args.seed + index)
        model = small_cnn(f"mnist_cnn_{index}")
        start = time.time()
        histories.append(model.fit(**fit_data, epochs=args.epochs, batch_size=128, verbose=2))
        print(f"{model.name}: trained in {time.time() - start:.0f} s")
        members.append(model)
    files.atomic_save_model(members[0], os.path.join(args.out, "mnist_cnn.keras"))

    start = time.time()
    report = kerascnn.evaluate(members[0], (x_test, y_test), history=histories[0],
                               mc_dropout=args.mc_dropout,
                               ensemble=members if args.members > 1 else None,
                               out=args.out, class_names=class_names, seed=args.seed)
    print(f"evaluated in {time.time() - start:.0f} s")
    print(report.summary())
    print("\n".join(report.files))


if __name__ == "__main__":
    main()
