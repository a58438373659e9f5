"""Every registered model: builds, runs forward, trains a step and survives a .keras round trip."""

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.models import base, get_model_entry, minimum_input_size
from kerascnn.models.lenet import LeNet
from kerascnn.models.registry import auxiliary_loss_weight, register_model

MODELS = kerascnn.list_models()
# Deeper twins of a registered network build the same blocks: their round trip runs with -m slow.
DEEPER_TWINS = {"vgg13", "vgg16", "vgg19", "resnet34", "resnet101", "resnet152", "resnet101v2",
                "densenet169", "densenet201", "squeezenet1_0"} | {
                    f"efficientnet_b{v}" for v in range(1, 8)}
# Round-tripped in their family's tests already (ConvNeXt, Xception, ResNet-RS), or built of
# resnet50's blocks (ResNeXt, SE-ResNet) or of Keras' stock layers only (DenseNet-121,
# Inception-v3), and among the costliest graphs: with -m slow too (the test budget).
COSTLY_REPEATS = {"convnext_tiny", "xception", "resnet_rs50", "resnext50_32x4d", "se_resnet50",
                  "densenet121", "inception_v3"}
ROUND_TRIP = [pytest.param(n, marks=pytest.mark.slow) if n in DEEPER_TWINS | COSTLY_REPEATS
              else n for n in MODELS]
CLASSES = 3
NARROW = {"width_multiplier": 0.125}  # same graph, an eighth of the widths: keeps the run short


def small_input_shape(name, rank=2):
    """32 per side, or the model's minimum side when that is larger, with the paper's channels."""
    entry = get_model_entry(name)
    side = max(32, minimum_input_size(name, rank=rank, **NARROW))
    return (side,) * rank + (entry.default_input_shape[-1],)


def one_hot_targets(model, n):
    y = keras.utils.to_categorical(np.arange(n) % CLASSES, CLASSES)
    return [y] * len(model.outputs) if len(model.outputs) > 1 else y


def as_list(outputs):
    return [keras.ops.convert_to_numpy(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_build_forward_train_step_and_round_trip(name, tmp_path):
    shape = small_input_shape(name)
    model = kerascnn.build_model(name, input_shape=shape, num_classes=CLASSES, **NARROW)
    x = np.random.default_rng(0).uniform(size=(4, *shape)).astype("float32")
    for out in as_list(model(x)):
        assert out.shape == (4, CLASSES)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-4)

    # Eager steps: tracing hundreds of layers would cost more than the step itself.
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", run_eagerly=True)
    loss = model.train_on_batch(x, one_hot_targets(model, 4))
    assert np.all(np.isfinite(loss))
    # At an eighth of the width a few ReLU branches can be dead at initialisation, and
    # ConvNeXt's 1e-6 layer scale makes some first-step updates vanish: most must move.
    changed = [not np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_weights, before)]
    assert np.mean(changed) > 0.9

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    for a, b in zip(as_list(model(x)), as_list(loaded(x))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_registry_entry_and_public_builder(name):
    entry = get_model_entry(name)
    assert getattr(kerascnn.models, name) is entry.builder
    assert entry.paper and len(entry.default_input_shape) >= 2
    for option in ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                   "classifier_activation", "name"):
        assert option in entry.options


@pytest.mark.parametrize("name", ["resnet18", "vgg11",
                                  pytest.param("densenet121", marks=pytest.mark.slow)])
@pytest.mark.parametrize("shape", [(64, 2), (32, 32, 32, 1)], ids=["1d", "3d"])
def test_one_and_three_dimensional_variants_train(name, shape):
    if name not in MODELS:
        pytest.skip(f"{name} is not registered yet")
    options = NARROW if name != "densenet121" else {"growth_rate": 4}
    model = kerascnn.build_model(name, input_shape=shape, num_classes=CLASSES, **options)
    conv_layers = [l for l in model.layers if "Conv" in type(l).__name__]
    assert all(type(l).__name__.endswith(f"{len(shape) - 1}D") for l in conv_layers)
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    assert np.isfinite(model.train_on_batch(x, one_hot_targets(model, 2)))


def test_build_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown model 'resnet17'.*Did you mean"):
        kerascnn.build_model("resnet17")
    with pytest.raises(ValueError, match="num_classes\\) must be a positive int; got 0"):
        kerascnn.build_model("lenet5", num_classes=0)
    with pytest.raises(ValueError, match="lenet5 has no option colour"):
        kerascnn.build_model("lenet5", colour="red")
    with pytest.raises(ValueError, match=r"input_shape=\(28, 28, 0\) must be positive ints, channels last"):
        kerascnn.build_model("lenet5", input_shape=(28, 28, 0))
    with pytest.raises(ValueError, match="weights='imagenet' exist for the builders that equal"):
        kerascnn.build_model("lenet5", weights="imagenet")


def test_too_small_input_names_layer_and_minimum():
    with pytest.raises(ValueError, match=r"lenet1 needs inputs of at least 16×16; got 8×8: .*'conv2'"):
        kerascnn.build_model("lenet1", input_shape=(8, 8, 1))
    assert minimum_input_size("lenet1") == 16
    kerascnn.build_model("lenet1", input_shape=(16, 16, 1))


def test_lenet_counts_match_the_literature():
    # LeNet-5 with full C3 connectivity and plain pooling: 61,706 (d2l.ai, ch. 7.6); by hand:
    assert kerascnn.build_model("lenet5").count_params() == (
        6 * (25 + 1) + 16 * (6 * 25 + 1) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    ) == 61_706
    # LeNet-1 (4 and 12 maps of 5×5, 4×4×12 features into 10 outputs), full connectivity.
    assert kerascnn.build_model("lenet1").count_params() == 4 * 26 + 12 * (4 * 25 + 1) + 192 * 10 + 10
    padded = kerascnn.build_model("lenet5", input_shape=(28, 28, 1))
    assert padded.get_layer("conv1").output.shape[1:3] == (28, 28)
    assert padded.count_params() == 61_706


def test_families_declare_the_loss_weights_of_their_auxiliary_outputs():
    # GoogLeNet's 0.3 (Szegedy et al. 2015, section 5), Inception-v3's 0.4 (TF-slim).
    assert auxiliary_loss_weight("aux1_predictions") == auxiliary_loss_weight("aux2_predictions") == 0.3
    assert auxiliary_loss_weight("aux_predictions") == 0.4
    assert auxiliary_loss_weight("predictions") == 1.0
    assert auxiliary_loss_weight("extra_head") == 0.3
    assert auxiliary_loss_weight("extra_head", default=0.5) == 0.5
    model = kerascnn.build_model("googlenet", input_shape=(32, 32, 3), num_classes=CLASSES,
                                 width_multiplier=1 / 16)
    assert set(model.output_names) == set(get_model_entry("googlenet").loss_weights)


def test_an_output_name_has_one_loss_weight_across_the_registry():
    @base.variant(LeNet, classes=10)
    def clashing(**arguments):
        """A model weighting Inception-v3's auxiliary output otherwise."""

    with pytest.raises(TypeError, match="clashing weighs 'aux_predictions' by 0.5, inception_v3 by 0.4"):
        register_model(default_input_shape=(32, 32, 1), paper="none",
                       loss_weights={"aux_predictions": 0.5})(clashing)
    assert "clashing" not in kerascnn.list_models()
