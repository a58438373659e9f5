"""EfficientNet-B0 to B7: Keras' counts, layer names and, with its weights, its outputs."""

import time

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.models import minimum_input_size, pretrained


@pytest.fixture(scope="module")
def twins():
    """(ours, keras.applications') at 224×224 with logits, Keras' weights copied in by name."""
    ours = kerascnn.build_model("efficientnet_b0", classifier_activation=None)
    twin = keras.applications.EfficientNetB0(weights=None, classifier_activation=None)
    pretrained.copy_weights("efficientnet_b0", twin, ours)
    return ours, twin


def _is_input_statistics(layer):
    # Keras' EfficientNet starts with Rescaling and Normalization (3 means, 3 variances, a count).
    return isinstance(layer, keras.layers.Normalization)


def test_counts_equal_keras_applications_and_the_paper(twins):
    ours, twin = twins
    assert sum(l.count_params() for l in twin.layers if _is_input_statistics(l)) == 7
    assert ours.count_params() == twin.count_params() - 7 == 5_330_564  # Keras: 5,330,571
    assert round(ours.count_params() / 1e6, 1) == 5.3  # the paper's Table 2
    # Without the top: keras.applications.EfficientNetB0(weights=None, include_top=False).
    assert ours.count_params() - ours.get_layer("predictions").count_params() == 4_049_571 - 7


def test_layers_in_keras_order_and_names_give_keras_outputs(twins):
    ours, twin = twins
    # Every layer with weights has its Keras name, in Keras' order (the input statistics aside).
    assert [l.name for l in ours.layers if l.weights] == \
        [l.name for l in twin.layers if l.weights and not _is_input_statistics(l)]
    x = np.random.default_rng(0).uniform(0, 1, size=(2, 224, 224, 3)).astype("float32")
    expected = np.asarray(twin(255 * x))  # Keras rescales by 1/255 first; ours takes x
    # At initialisation the logits are small (about 1e-5): compare relative to their size.
    scale = np.abs(expected).max()
    np.testing.assert_allclose(np.asarray(ours(x)) / scale, expected / scale, atol=1e-4)


def test_stochastic_depth_rises_as_keras_drop_connect_rate(twins):
    # keras.applications names it drop_connect_rate (0.2): block b of 16 drops with 0.2 × b / 16.
    ours, twin = twins
    for block in ("block2b", "block4c", "block6d"):
        assert ours.get_layer(f"{block}_drop_path").rate == \
            pytest.approx(twin.get_layer(f"{block}_drop").rate)


def test_one_dimensional_variant_trains():
    model = kerascnn.build_model("efficientnet_b0", input_shape=(64, 2), num_classes=3,
                                 width_multiplier=0.25)
    assert all(type(l).__name__.endswith("1D") for l in model.layers if "Conv" in type(l).__name__)
    assert model.get_layer("top_conv").output.shape[-1] == 320  # 1280 / 4, a multiple of 8
    x = np.random.default_rng(0).uniform(size=(2, 64, 2)).astype("float32")
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    assert np.isfinite(model.train_on_batch(x, keras.utils.to_categorical([0, 2], 3)))


def test_three_dimensional_variant_runs():
    model = kerascnn.build_model("efficientnet_b0", input_shape=(8, 8, 8, 1), num_classes=3,
                                 width_multiplier=0.25)
    assert all(type(l).__name__.endswith("3D") for l in model.layers if "Conv" in type(l).__name__)
    # The depthwise convolutions are grouped Conv3Ds, one group per channel.
    assert model.get_layer("block2a_dwconv").groups == model.get_layer("block2a_dwconv").filters
    out = model(np.random.default_rng(0).uniform(size=(2, 8, 8, 8, 1)).astype("float32"))
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


def test_minimum_input_is_computed_and_refused_instantly():
    assert minimum_input_size("efficientnet_b0") == 1  # "same" everywhere: any size works
    # Reflect padding needs maps wider than its 2 pixels: at 64×64 the 1/32 maps are 2 wide
    # under block6b's 5×5.
    assert minimum_input_size("efficientnet_b0", padding_mode="reflect") == 65
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"efficientnet_b0 needs inputs of at least 65×65; "
                                         r"got 64×64: the map vanishes at layer 'block6b_dwconv'"):
        kerascnn.build_model("efficientnet_b0", input_shape=(64, 64, 3), padding_mode="reflect")
    assert time.perf_counter() - start < 1.0


def test_inspector_counts_the_papers_multiply_adds(twins):
    ours, _ = twins
    # Table 2: EfficientNet-B0 takes 0.39B FLOPS (multiply-adds) at 224×224.
    report = kerascnn.inspect(ours)
    assert report.params == 5_330_564
    assert round(report.macs / 1e9, 2) == 0.39


# Table 2's parameters (millions, as printed) of each compound-scaled variant.
PAPER_MILLIONS = {1: 7.8, 2: 9.2, 3: 12, 4: 19, 5: 30, 6: 43, 7: 66}


# B1 in the default run; the larger variants build the same blocks (the test budget).
@pytest.mark.parametrize("variant", [1] + [pytest.param(v, marks=pytest.mark.slow)
                                           for v in range(2, 8)])
def test_compound_scaled_variants_equal_keras_applications(variant):
    ours = kerascnn.build_model(f"efficientnet_b{variant}", input_shape=(64, 64, 3))
    twin = getattr(keras.applications, f"EfficientNetB{variant}")(weights=None,
                                                                   input_shape=(64, 64, 3))
    assert ours.count_params() == twin.count_params() - 7  # Keras' input statistics aside
    assert [l.name for l in ours.layers if l.weights] == \
        [l.name for l in twin.layers if l.weights and not _is_input_statistics(l)]
    assert ours.get_layer("predictions_dropout").rate == twin.get_layer("top_dropout").rate
    # Table 2 prints 7.8M for B1, where the release's network has 7.86M (Keras' too).
    assert abs(ours.count_params() / 1e6 - PAPER_MILLIONS[variant]) < 0.1 * PAPER_MILLIONS[variant]
    side = kerascnn.models.get_model_entry(f"efficientnet_b{variant}").default_input_shape[0]
    assert side == {1: 240, 2: 260, 3: 300, 4: 380, 5: 456, 6: 528, 7: 600}[variant]
