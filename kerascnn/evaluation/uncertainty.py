"""Predictive uncertainty: Monte-Carlo dropout and ensembles of models.

Monte-Carlo dropout (Gal & Ghahramani, 2016) keeps dropout on at test time and averages M
stochastic passes. Calling `model(x, training=True)` would do that but would also switch
BatchNormalization to batch statistics (and turn on any augmentation layers), so the
predictions would change for the wrong reason. Instead `monte_carlo_model` clones the model
sharing every layer and its weights, and wraps only the dropout-family layers in
`AlwaysStochastic`, which calls them with `training=True`; everything else runs in inference
mode exactly as in `model.predict`.
"""

import keras
import numpy as np
from sklearn import metrics as sk_metrics

from kerascnn.errors import InputError

DROPOUT_LAYERS = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout)
# Class-name markers of dropout-family layers outside keras: kerascnn.layers' DropConnectDense
# and StochasticDepth, and timm-style DropPath.
DROPOUT_NAME_MARKERS = ("Dropout", "DropConnect", "DropPath", "StochasticDepth")


@keras.saving.register_keras_serializable(package="kerascnn")
class AlwaysStochastic(keras.layers.Wrapper):
    """Runs the wrapped dropout-family layer in training mode at every call.

    Args:
        layer: the dropout-family layer to keep stochastic.
    """

    def call(self, inputs):
        return self.layer(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def is_dropout_layer(layer):
    """Returns whether `layer` is dropout-family (a keras dropout or a kerascnn regulariser)."""
    return isinstance(layer, DROPOUT_LAYERS) or any(
        marker in type(layer).__name__ for marker in DROPOUT_NAME_MARKERS)


def monte_carlo_model(model, seed=None):
    """Returns a copy of `model` whose dropout-family layers stay on, and their names.

    The copy shares all other layers (and so all weights) with `model`.

    Args:
        model: a Functional or Sequential keras model (nested ones included).
        seed: base seed of the dropout masks (layer i gets `seed + i`); None keeps the
            layers' own seeds.

    Returns:
        `(mc_model, names)`: the names of the layers made stochastic.

    Raises:
        ValueError: if the model cannot be cloned or has no dropout-family layer.
    """
    names = []

    def clone(layer):
        if not is_dropout_layer(layer):
            return layer
        config = layer.get_config()
        if seed is not None and "seed" in config and not layer.weights:
            # A fresh copy (it has no weights to lose) draws reproducible masks.
            layer = type(layer).from_config({**config, "seed": seed + len(names)})
        names.append(layer.name)
        return AlwaysStochastic(layer, name=f"{layer.name}_mc")

    try:
        mc_model = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as error:
        raise InputError(
            f"Monte-Carlo dropout needs a Functional or Sequential model; "
            f"{type(model).__name__} '{model.name}' cannot be cloned: {error}"
        ) from error
    if not names:
        raise InputError(
            f"Model '{model.name}' has no dropout layer, so Monte-Carlo dropout would repeat "
            "one deterministic prediction. Use mc_dropout=0 or a model with Dropout."
        )
    return mc_model, names


def predictive_entropy(probabilities):
    """Returns the entropy (nats) of each row of class probabilities."""
    p = np.clip(probabilities, 1e-12, 1.0)
    return -np.sum(probabilities * np.log(p), axis=-1)


def sample_statistics(samples):
    """Summarises stochastic predictions (MC-dropout passes or ensemble members).

    Args:
        samples: class probabilities of shape (samples, n, classes).

    Returns:
        A dict of per-example arrays: `mean` (n, classes), `variance` (n,) of the probability
        of the predicted class across samples, `entropy` (n,) of the mean prediction, and
        `mutual_information` (n,) = entropy - mean entropy of the samples (the part of the
        uncertainty due to the model, Houlsby et al., 2011).
    """
    mean = samples.mean(axis=0)
    predicted = mean.argmax(axis=1)
    variance = samples[:, np.arange(len(predicted)), predicted].var(axis=0)
    entropy = predictive_entropy(mean)
    return {
        "mean": mean,
        "variance": variance,
        "entropy": entropy,
        "mutual_information": entropy - predictive_entropy(samples).mean(axis=0),
    }


def majority_vote(samples):
    """Returns the class most members predict, per example (ties go to the lower index)."""
    votes = samples.argmax(axis=2)
    num_classes = samples.shape[2]
    return np.array([np.bincount(v, minlength=num_classes).argmax() for v in votes.T])


def uncertainty_metrics(y_true, probabilities, entropy):
    """Returns how well the uncertainty of a predictor flags its own mistakes.

    Returns:
        A dict: `mean_entropy_correct`, `mean_entropy_wrong` and `error_detection_auroc`
        (ROC AUC of the entropy as a score for "this prediction is wrong"; 0.5 = chance,
        None when every prediction is right or every one wrong).
    """
    wrong = probabilities.argmax(axis=1) != y_true
    return {
        "mean_entropy_correct": float(entropy[~wrong].mean()) if (~wrong).any() else None,
        "mean_entropy_wrong": float(entropy[wrong].mean()) if wrong.any() else None,
        "error_detection_auroc": (
            float(sk_metrics.roc_auc_score(wrong, entropy)) if 0 < wrong.sum() < len(wrong)
            else None),
    }


def predictor_summary(metrics, y_true, probabilities, entropy):
    """Returns the headline metrics (from `classification_metrics`) and uncertainty metrics
    of one predictor, for the single-model / MC-dropout / ensemble comparison."""
    headline = {key: metrics[key] for key in (
        "accuracy", "top_k_accuracy", "macro_f1", "weighted_f1", "log_loss", "ece",
        "accuracy_by_coverage")}
    return {**headline, **uncertainty_metrics(y_true, probabilities, entropy)}
