"""keras.applications' checks, run against every registry builder: signatures, positional
arguments, variable input sizes, channels-first, instant refusal of too-small inputs."""

import inspect
import sys
import time

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.models import base, get_model_entry, minimum_input_size
from kerascnn.models.lenet import LeNet

MODELS = kerascnn.list_models()
KERAS_DEFAULTS = {"include_top": True, "weights": None, "input_tensor": None, "input_shape": None,
                  "pooling": None, "classifier_activation": "softmax"}


def family_builder(name):
    """The generic builder of `name`'s family: the module's function with positional-only
    architecture arguments (ResNet, VGG, ...)."""
    module = sys.modules[get_model_entry(name).builder.__module__]
    return next(
        f for f in vars(module).values()
        if inspect.isfunction(f) and f.__module__ == module.__name__
        and any(p.kind is p.POSITIONAL_ONLY for p in inspect.signature(f).parameters.values())
    )


def documented(builder):
    """The builder's docstring, and that of the builder it points to ("Args: as `vgg16`")."""
    doc = builder.__doc__
    for word in doc.split("`")[1::2]:
        if word in MODELS:
            doc += get_model_entry(word).builder.__doc__
    return doc


@pytest.mark.parametrize("name", MODELS)
def test_signature_names_keras_arguments_then_every_option(name):
    builder = get_model_entry(name).builder
    parameters = inspect.signature(builder).parameters
    kinds = [p.kind for p in parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    assert tuple(parameters)[:8] == base.KERAS_ARGUMENTS
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in list(parameters.values())[:8])
    assert {k: parameters[k].default for k in KERAS_DEFAULTS} == KERAS_DEFAULTS
    assert parameters["name"].default == name and parameters["classes"].default >= 10
    options = [p for p in list(parameters.values())[8:]]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in options)
    # The family builder takes exactly these arguments: none is dropped or invented.
    family = inspect.signature(family_builder(name)).parameters
    assert [p for p in family if family[p].kind is inspect.Parameter.KEYWORD_ONLY] == list(parameters)
    assert get_model_entry(name).options == tuple(parameters)
    missing = [p.name for p in options if p.name not in documented(builder)]
    assert not missing, f"{name}'s docstring does not describe {missing}"


def test_variants_take_their_family_signature_with_their_own_defaults():
    signature = inspect.signature(kerascnn.models.resnext50_32x4d)
    assert {k: signature.parameters[k].default for k in ("name", "groups", "base_width")} == {
        "name": "resnext50_32x4d", "groups": 32, "base_width": 4}
    assert inspect.signature(kerascnn.models.resnet50).parameters["groups"].default == 1
    assert inspect.signature(kerascnn.models.lenet1).parameters["classes"].default == 10
    assert "stem: " in kerascnn.models.resnet50.__doc__
    with pytest.raises(TypeError, match=r"resnet50\(\): got an unexpected keyword argument 'colour'"):
        kerascnn.models.resnet50(colour="red")
    with pytest.raises(TypeError, match=r"lenet5\(\): too many positional arguments"):
        kerascnn.models.lenet5(*[None] * 9)
    with pytest.raises(TypeError, match="LeNet has no option groups"):
        base.variant(LeNet, groups=2)(lambda **arguments: None)


@pytest.mark.parametrize("name", MODELS)
def test_too_small_input_is_refused_in_under_a_second(name):
    options = {}
    if minimum_input_size(name) == 1:  # "same" paddings everywhere: only reflections vanish
        options["padding_mode"] = "reflect"
    side = minimum_input_size(name, **options)
    channels = get_model_entry(name).default_input_shape[-1]
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"{name} needs inputs of at least {side}×{side}; "
                                         rf"got {side - 1}×{side}: the map vanishes at layer '"):
        kerascnn.build_model(name, input_shape=(side - 1, side, channels), **options)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name", MODELS)
def test_channels_first_is_refused_not_built_wrong(name):
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match=rf"{name}: kerascnn builds channels-last networks"):
            kerascnn.build_model(name)
    finally:
        keras.config.set_image_data_format("channels_last")


ONE_PER_FAMILY = ["lenet5", "alexnet", "zfnet", "vgg11", "googlenet", "resnet18", "mobilenet",
                  "xception", "densenet121", "convnext_tiny", "squeezenet1_1", "resnet50v2"]


@pytest.mark.parametrize("name", [
    n if n in ONE_PER_FAMILY else pytest.param(n, marks=pytest.mark.slow) for n in MODELS
])
def test_positional_arguments_and_variable_size_without_top(name):
    entry = get_model_entry(name)
    channels = entry.default_input_shape[-1]
    narrow = {"width_multiplier": 1 / 16} if "width_multiplier" in entry.options else {}
    # As keras.applications.VGG16(False, None, None, (None, None, 3), "avg").
    model = entry.builder(False, None, None, (None, None, channels), "avg", **narrow)
    assert model.inputs[0].shape[1:] == (None, None, channels)
    side = max(minimum_input_size(name, **narrow), 8)
    features = [model(np.zeros((1, s, s + 3, channels), "float32")) for s in (side, side + 5)]
    assert features[0].shape == features[1].shape == (1, model.outputs[0].shape[-1])


def test_default_input_without_top_takes_any_size_with_the_papers_channels():
    assert kerascnn.models.lenet5(include_top=False).inputs[0].shape == (None, None, None, 1)
    assert kerascnn.build_model("lenet5").inputs[0].shape == (None, 32, 32, 1)
    with pytest.raises(ValueError, match=r"lenet5: with include_top=True every input size must be known"):
        kerascnn.build_model("lenet5", input_shape=(None, None, 1))


def test_variable_length_1d_and_3d_inputs():
    model = kerascnn.build_model("resnet18", input_shape=(None, 2), include_top=False,
                                 pooling="max", width_multiplier=1 / 16)
    assert model(np.zeros((1, 40, 2), "float32")).shape == model(np.zeros((1, 70, 2), "float32")).shape
    model = kerascnn.build_model("vgg11", input_shape=(None, None, None, 1), include_top=False,
                                 width_multiplier=1 / 16)
    assert model(np.zeros((1, 32, 64, 32, 1), "float32")).shape == (1, 1, 2, 1, 32)


def test_zfnet_ceil_mode_pools_match_on_variable_sizes():
    # Ceil-mode pools on maps known only at run time give the fixed-size network's maps.
    fixed = kerascnn.build_model("zfnet", input_shape=(224, 224, 3), include_top=False,
                                 width_multiplier=1 / 16)
    variable = kerascnn.build_model("zfnet", include_top=False, width_multiplier=1 / 16)
    variable.set_weights(fixed.get_weights())
    x = np.random.default_rng(0).uniform(size=(1, 224, 224, 3)).astype("float32")
    assert fixed.outputs[0].shape[1:3] == (6, 6)  # Fig. 3's 13×13 layer-5 maps, then a pool
    np.testing.assert_allclose(variable(x), fixed(x), rtol=1e-5, atol=1e-6)


def test_classes_and_num_classes_name_the_same_count():
    assert kerascnn.build_model("lenet5", classes=4).outputs[0].shape[-1] == 4
    assert kerascnn.build_model("lenet5", num_classes=4, classes=4).outputs[0].shape[-1] == 4
    with pytest.raises(ValueError, match="num_classes=3 and classes=4 name the same count"):
        kerascnn.build_model("lenet5", num_classes=3, classes=4)


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18",
                                  "mobilenet", "xception", "densenet121", "convnext_tiny"])
@pytest.mark.parametrize("value", [0, -1, True, "1"])
def test_every_family_refuses_a_bad_width_multiplier(name, value):
    with pytest.raises(ValueError, match=rf"{name}: width_multiplier must be a positive number; got {value!r}"):
        kerascnn.build_model(name, width_multiplier=value)


def test_googlenet_outputs_are_documented_and_one_option_away():
    entry = get_model_entry("googlenet")
    assert "aux1_predictions, aux2_predictions" in entry.outputs
    assert "THREE outputs" in entry.builder.__doc__
    model = kerascnn.models.googlenet(input_shape=(32, 32, 3), classes=3, aux_logits=False,
                                      width_multiplier=1 / 16)
    assert model.output_names == ["predictions"] or len(model.outputs) == 1
