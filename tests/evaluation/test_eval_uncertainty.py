"""MC dropout keeps only dropout stochastic; ensemble statistics against NumPy."""

import keras
import numpy as np
import pytest
from scipy import stats

from kerascnn.evaluation import uncertainty


def dropout_features(model):
    """The sub-model ending at the dropout layer (its outputs are 0 or kept / (1 - rate))."""
    return keras.Model(model.inputs[0], model.get_layer("dropout").output)


def test_mc_dropout_leaves_batch_norm_in_inference_mode(trained, digits):
    model, _ = trained
    x = digits[2][:64]
    features = dropout_features(model)
    mc_features, names = uncertainty.monte_carlo_model(features, seed=0)
    assert names == ["dropout"]
    assert mc_features.get_layer("bn") is model.get_layer("bn")  # shared weights

    inference = keras.Model(model.inputs[0], model.get_layer("flatten").output).predict(
        x, verbose=0)
    sample = mc_features.predict(x, verbose=0)
    dropped = sample == 0
    # Every kept unit is the inference-mode activation scaled by 1 / (1 - 0.3).
    np.testing.assert_allclose(sample[~dropped], inference[~dropped] / 0.7, rtol=1e-5,
                               atol=1e-6)
    assert 0.2 < dropped[inference != 0].mean() < 0.4
    # model(x, training=True) would have used batch statistics instead:
    batch_mode = keras.Model(model.inputs[0], model.get_layer("flatten").output)(
        x, training=True).numpy()
    assert not np.allclose(batch_mode, inference, atol=1e-3)


def test_mc_passes_vary_and_are_reproducible_with_a_seed(trained, digits):
    model, _ = trained
    x = digits[2][:50]

    def passes(seed):
        mc_model, _ = uncertainty.monte_carlo_model(model, seed=seed)
        return np.stack([mc_model.predict(x, verbose=0) for _ in range(4)])

    first, again, other = passes(7), passes(7), passes(8)
    assert not np.allclose(first[0], first[1])
    np.testing.assert_allclose(first, again)
    assert not np.allclose(first, other)
    # The ordinary model stays deterministic and untouched.
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_dropout_inside_a_nested_model_is_found():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.5, name="inner_drop")],
        name="backbone")
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inner(inputs)))
    _, names = uncertainty.monte_carlo_model(outer)
    assert names == ["inner_drop"]


def test_kerascnn_regularisers_count_as_dropout_and_keep_their_weights():
    from kerascnn.layers.regularization import DropConnectDense, StochasticDepth

    inputs = keras.Input((6,))
    x = DropConnectDense(6, rate=0.5, name="drop_connect")(inputs)
    x = keras.layers.Add()([inputs, StochasticDepth(0.5, name="drop_path")(x)])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    mc_model, names = uncertainty.monte_carlo_model(model, seed=0)
    assert names == ["drop_connect", "drop_path"]
    assert mc_model.get_layer("drop_connect_mc").layer is model.get_layer("drop_connect")
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    passes = np.stack([mc_model.predict(x, verbose=0) for _ in range(3)])
    assert not np.allclose(passes[0], passes[1])
    np.testing.assert_allclose(passes.sum(axis=2), 1.0, rtol=1e-5)


def test_a_model_without_dropout_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")],
                             name="plain")
    with pytest.raises(ValueError, match="'plain' has no dropout layer"):
        uncertainty.monte_carlo_model(model)


def test_always_stochastic_round_trips_through_its_config():
    layer = uncertainty.AlwaysStochastic(keras.layers.Dropout(0.25, seed=3), name="mc")
    clone = uncertainty.AlwaysStochastic.from_config(layer.get_config())
    assert clone.layer.rate == 0.25 and clone.layer.seed == 3 and clone.name == "mc"
    x = np.ones((2, 1000), "float32")
    assert (np.asarray(clone(x)) == 0).mean() == pytest.approx(0.25, abs=0.05)


def test_sample_statistics_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    samples = rng.dirichlet(np.ones(4), size=(6, 30))
    result = uncertainty.sample_statistics(samples)
    mean = samples.mean(axis=0)
    np.testing.assert_allclose(result["mean"], mean)
    predicted = mean.argmax(axis=1)
    np.testing.assert_allclose(
        result["variance"], [np.var(samples[:, i, c]) for i, c in enumerate(predicted)])
    np.testing.assert_allclose(result["entropy"], stats.entropy(mean, axis=1))
    expected_member_entropy = stats.entropy(samples, axis=2).mean(axis=0)
    np.testing.assert_allclose(result["mutual_information"],
                               stats.entropy(mean, axis=1) - expected_member_entropy)
    assert (result["mutual_information"] >= -1e-12).all()


def test_majority_vote_breaks_ties_towards_the_lower_class():
    one_hot = np.eye(3)
    samples = np.stack([one_hot[[0, 2, 1]], one_hot[[1, 2, 2]], one_hot[[1, 0, 0]]])
    # Example 0: votes 0, 1, 1 -> 1. Example 1: 2, 2, 0 -> 2. Example 2: 1, 2, 0 -> tie -> 0.
    np.testing.assert_array_equal(uncertainty.majority_vote(samples), [1, 2, 0])


def test_uncertainty_metrics_measure_how_entropy_flags_mistakes():
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    entropy = uncertainty.predictive_entropy(probabilities)
    y = np.array([0, 0, 1, 1])  # the two least confident predictions are the wrong ones
    result = uncertainty.uncertainty_metrics(y, probabilities, entropy)
    assert result["error_detection_auroc"] == 1.0
    assert result["mean_entropy_wrong"] == pytest.approx(entropy[2:].mean())
    assert result["mean_entropy_correct"] == pytest.approx(entropy[:2].mean())
    flipped = uncertainty.uncertainty_metrics(1 - y, probabilities, entropy)
    assert flipped["error_detection_auroc"] == 0.0
    all_right = uncertainty.uncertainty_metrics(np.zeros(4, int), probabilities, entropy)
    assert all_right["error_detection_auroc"] is None and all_right["mean_entropy_wrong"] is None
