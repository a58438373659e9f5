"""Feature extraction: a trained network's embeddings, and a logistic or ridge regression on
them (the feature baselines of classification and regression)."""

import keras
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import (accuracy_score, f1_score, mean_absolute_error, r2_score,
                             root_mean_squared_error)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kerascnn.data import Data, load
from kerascnn.data.dataset import predict
from kerascnn.data.preprocessing import split_network
from kerascnn.transfer import surgery
from kerascnn.transfer.source import TransferError, load_source

SPLITS = ("train", "validation", "test")
RIDGE_ALPHAS = tuple(10.0 ** k for k in range(-3, 4))  # the ridge baseline's penalties to try


def feature_model(model, layer=None, input_shape=None):
    """Returns a keras.Model from the raw inputs to a layer's output (flattened).

    Args:
        model: a keras.Model (a kerascnn Preprocessing wrapper included).
        layer: a layer name of the backbone; None takes the input of the classifier (the
            layer before the head: pooled features, or the last hidden layer).
        input_shape: per-example shape of the raw inputs when it differs from the model's
            (its Preprocessing layer resizes them and converts grey <-> RGB).

    Raises:
        TransferError: a layer the network does not have.
    """
    preprocessing, backbone = split_network(model)
    if layer is None:
        classifier = backbone.get_layer(surgery.find_classifiers(model)[0])
        tensor = keras.tree.flatten(classifier.input)[0]
    else:
        names = [l.name for l in backbone.layers]
        if layer not in names:
            raise TransferError(f"{model.name!r} has no layer {layer!r}; its layers: "
                                f"{', '.join(names[1:])}.")
        tensor = keras.tree.flatten(backbone.get_layer(layer).output)[0]
    trunk = keras.Model(backbone.inputs, tensor, name=f"{backbone.name}_features")
    shape = tuple(input_shape or model.inputs[0].shape[1:])
    inputs = keras.Input(shape, name="inputs")
    if backbone is not model and shape != tuple(model.inputs[0].shape[1:]):
        preprocessing = _rebuilt_for(preprocessing, shape)
    x = trunk(preprocessing(inputs) if backbone is not model else inputs)
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="features_flatten")(x)
    return keras.Model(inputs, x, name=f"{model.name}_features")


def extract_features(source, data, layer=None, *, batch_size=256, data_dir=None,
                     safe_mode=True):
    """Embeddings of a data set from a trained network's layer.

    Args:
        source: a `.keras` file, a `saved_models/` name, a run folder or a keras.Model.
        data: anything `kerascnn.data.load` takes, or a `kerascnn.data.Data`.
        layer: the layer whose output is returned; None takes the one before the
            classifier (e.g. the global average pool of a ResNet, fc2 of LeNet-5).
        batch_size: examples per forward pass.
        data_dir: where offline copies of named data sets lie.
        safe_mode: load files in Keras' safe mode.

    Returns:
        {split: (features, labels)} for each split of the data: float32 arrays
        (examples, features) and int class indices.

    Raises:
        TransferError: a source that cannot be loaded, no classification head (with
            layer=None), or an unknown layer.
    """
    model, _ = load_source(source, safe_mode=safe_mode)
    data = load_data(data, data_dir)
    return split_features(feature_model(model, layer, data.input_shape), data, batch_size)


def split_features(extractor, data, batch_size=256):
    """{split: (features, labels)} of every split of `data` through a `feature_model`."""
    return {split: (predict(extractor, data.arrays(split)[0], batch_size),
                    data.arrays(split)[1])
            for split in SPLITS if data.size(split)}


def _rebuilt_for(preprocessing, shape):
    """A copy of a Preprocessing layer (same statistics) built for raw inputs of `shape`."""
    copy = type(preprocessing).from_config(preprocessing.get_config())
    copy.build((None, *shape))
    copy.set_weights(preprocessing.get_weights())
    copy.is_adapted = True
    return copy


def logistic_regression(features, *, seed=0, max_iter=2000):
    """Fits a standardised logistic regression on {split: (X, y)}; returns (model, metrics).

    The metrics are the test split's accuracy and macro F1 (the validation split's when
    there is no test split), from scikit-learn.
    """
    x_train, y_train = features["train"]
    classifier = make_pipeline(StandardScaler(),
                               LogisticRegression(max_iter=max_iter, random_state=seed))
    classifier.fit(x_train, y_train)
    split = "test" if "test" in features else "validation"
    metrics = {}
    if split in features:
        x, y = features[split]
        predicted = classifier.predict(x)
        metrics = {"accuracy": float(accuracy_score(y, predicted)),
                   "macro_f1": float(f1_score(y, predicted, average="macro")),
                   "split": split, "examples": int(len(y))}
    return classifier, metrics


def ridge_regression(features, *, alphas=RIDGE_ALPHAS):
    """Fits a standardised ridge regression on {split: (X, y)}; returns (model, metrics).

    The penalty is chosen from `alphas` by scikit-learn's `RidgeCV` (efficient leave-one-out
    on the training split). The metrics are the test split's R², MAE and RMSE (the
    validation split's when there is no test split), from scikit-learn, averaged uniformly
    over the targets.
    """
    x_train, y_train = features["train"]
    regressor = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
    regressor.fit(x_train, y_train)
    split = "test" if "test" in features else "validation"
    metrics = {}
    if split in features:
        x, y = features[split]
        predicted = regressor.predict(x).reshape(y.shape)
        metrics = {"r2": float(r2_score(y, predicted)),
                   "mae": float(mean_absolute_error(y, predicted)),
                   "rmse": float(root_mean_squared_error(y, predicted)),
                   "split": split, "examples": len(y)}
    return regressor, metrics


def load_data(data, data_dir, validation_split=None, seed=0, task="classification"):
    """A `Data` as is, or anything `kerascnn.data.load` takes, loaded for `task`."""
    if isinstance(data, Data):
        return data
    return load(data, data_dir=data_dir, validation_split=validation_split, seed=seed,
                task=task)
