"""ResNet-9 (Page, davidcpage/cifar10-fast): its parameter count by hand, the same function as
Page's network written in plain Keras, the keras.applications options, a training step and a
.keras round trip."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import minimum_input_size
from kerascnn.transfer import surgery

# Page's `net()` as (input channels, output channels) of each 3×3 convolution, in order:
# prep, layer1, layer1's two residual convolutions, layer2, layer3, layer3's two.
CONVOLUTIONS = ((3, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 512),
                (512, 512), (512, 512))


def page_resnet9(classes=10):
    """Page's network layer by layer in plain Keras: MaxPool(4) and Flatten over the 4×4 map,
    a bias-free Linear, then Mul(0.125) on the logits, then the softmax."""

    def conv_bn(x, filters):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
        return keras.layers.ReLU()(x)

    def residual(x):
        return keras.layers.Add()([x, conv_bn(conv_bn(x, x.shape[-1]), x.shape[-1])])

    inputs = keras.Input((32, 32, 3))
    x = conv_bn(inputs, 64)
    x = residual(keras.layers.MaxPooling2D(2)(conv_bn(x, 128)))
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 256))
    x = residual(keras.layers.MaxPooling2D(2)(conv_bn(x, 512)))
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(x))
    x = keras.layers.Dense(classes, use_bias=False)(x)
    x = keras.layers.Rescaling(0.125)(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))


def weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def test_parameter_count_by_hand_is_pages_and_the_plain_keras_networks():
    model = kerascnn.build_model("resnet9")
    convolutions = sum(3 * 3 * c_in * c_out for c_in, c_out in CONVOLUTIONS)  # no biases
    norm_channels = sum(c_out for _, c_out in CONVOLUTIONS)  # one BatchNorm a convolution
    classifier = 512 * 10  # bias-free
    assert (convolutions, norm_channels) == (6_563_520, 2_240)
    # Page's 6.57 M is PyTorch's count: BatchNorm's gamma and beta, no running statistics.
    trainable = convolutions + 2 * norm_channels + classifier
    assert trainable == 6_573_120
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    # Keras also counts the moving mean and variance.
    assert model.count_params() == trainable + 2 * norm_channels == 6_577_600
    assert model.count_params() == page_resnet9().count_params()


def test_computes_pages_function_with_the_same_weights():
    model = kerascnn.build_model("resnet9")
    reference = page_resnet9()
    pairs = list(zip(weighted_layers(model), weighted_layers(reference), strict=True))
    rng = np.random.default_rng(0)
    for ours, theirs in pairs:
        assert type(ours) is type(theirs)
        # Random statistics too, so inference-mode BatchNorm is no identity.
        weights = [w if w.ndim > 1 else rng.uniform(0.5, 1.5, w.shape).astype("float32")
                   for w in ours.get_weights()]
        ours.set_weights(weights)
        theirs.set_weights(weights)
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    ours, theirs = model(x, training=False), reference(x, training=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.sum(ours, axis=1), 1.0, rtol=1e-5)


def test_layers_are_named_after_pages_and_no_convolution_has_a_bias():
    model = kerascnn.build_model("resnet9")
    for name, shape in (("prep_relu", (32, 32, 64)), ("layer1_pool", (16, 16, 128)),
                        ("layer1_add", (16, 16, 128)), ("layer2_pool", (8, 8, 256)),
                        ("layer3_add", (4, 4, 512)), ("max_pool", (512,)),
                        ("predictions", (10,))):
        assert model.get_layer(name).output.shape[1:] == shape
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == len(CONVOLUTIONS)
    assert not any(layer.use_bias for layer in convolutions)
    assert not model.get_layer("predictions").use_bias
    assert model.get_layer("logit_scale").scale == 0.125
    # The classifier is what kerascnn.transfer replaces; the features are the 4×4×512 map.
    assert surgery.find_classifiers(model) == ["predictions"]
    features, head = surgery.head_path(model)
    assert features.shape[1:] == (4, 4, 512)
    assert set(head) == {"max_pool", "logit_scale", "predictions"}


def test_logit_scale_multiplies_the_logits_and_is_validated():
    logits = {scale: kerascnn.build_model("resnet9", classifier_activation=None,
                                          width_multiplier=0.125, logit_scale=scale)
              for scale in (0.125, 1.0)}
    logits[1.0].set_weights(logits[0.125].get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(8 * logits[0.125](x), logits[1.0](x), rtol=1e-5, atol=1e-6)
    for value in (0, -0.125, True, "0.125", None):
        with pytest.raises(ValueError, match=rf"resnet9: logit_scale must be a positive number; "
                                             rf"got {value!r}"):
            kerascnn.build_model("resnet9", logit_scale=value)


def test_keras_applications_options_without_top_and_narrow():
    features = kerascnn.models.resnet9(include_top=False)
    assert features.inputs[0].shape[1:] == (None, None, 3)
    assert features(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 4, 4, 512)
    assert features(np.zeros((1, 64, 40, 3), "float32")).shape == (1, 8, 5, 512)
    for pooling in ("avg", "max"):
        model = kerascnn.models.resnet9(False, None, None, (32, 32, 3), pooling)
        assert model.outputs[0].shape == (None, 512)
    narrow = kerascnn.build_model("resnet9", width_multiplier=0.5, num_classes=100)
    assert narrow.get_layer("layer3_add").output.shape[-1] == 256
    assert narrow.outputs[0].shape == (None, 100)
    plain = kerascnn.build_model("resnet9", norm="none", activation="gelu", width_multiplier=0.125)
    assert plain.get_layer("prep_conv").use_bias and "prep_gelu" in [l.name for l in plain.layers]


def test_too_small_input_names_the_pool_where_the_map_vanishes():
    assert minimum_input_size("resnet9") == 8
    with pytest.raises(ValueError, match=r"resnet9 needs inputs of at least 8×8; got 7×7: "
                                         r"the map vanishes at layer 'layer3_pool'"):
        kerascnn.build_model("resnet9", input_shape=(7, 7, 3))
    assert kerascnn.build_model("resnet9", input_shape=(8, 8, 3)).outputs[0].shape == (None, 10)


def test_a_training_step_is_finite_and_the_model_round_trips(tmp_path):
    model = kerascnn.build_model("resnet9")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % 10, 10)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy")
    before = model.get_layer("predictions").get_weights()[0].copy()
    assert np.isfinite(model.train_on_batch(x, y))
    assert not np.array_equal(model.get_layer("predictions").get_weights()[0], before)

    model.save(tmp_path / "resnet9.keras")
    loaded = keras.models.load_model(tmp_path / "resnet9.keras", safe_mode=True)
    assert loaded.get_layer("logit_scale").scale == 0.125
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
