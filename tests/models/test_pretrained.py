"""Builders with keras.applications' weights ("imagenet" or a file): the twin's outputs, offline."""

import urllib.error

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

import kerascnn
from kerascnn.models import pretrained

# The first layer each kerascnn model shares with its twin, where the twin's own input
# normalisation (which kerascnn leaves to its Preprocessing layer) has been done.
STEMS = {"convnext_tiny": "convnext_tiny_stem",
         **{f"efficientnet_b{n}": "stem_conv_pad" for n in range(8)}}
# (variant, its twin's arguments): small inputs, every family; the siblings of a family
# proved in the default run are slow.
CASES = [
    ("mobilenet", dict(alpha=0.25, input_shape=(32, 32, 3), classes=10)),
    ("vgg16", dict(input_shape=(32, 32, 3), classes=10)),
    pytest.param("vgg19", dict(input_shape=(32, 32, 3), include_top=False, pooling="avg"),
                 marks=pytest.mark.slow),
    pytest.param("xception", dict(input_shape=(71, 71, 3), classes=10),
                 marks=pytest.mark.slow),
    *[pytest.param(f"densenet{n}", dict(input_shape=(32, 32, 3), include_top=False),
                   marks=pytest.mark.slow) for n in (121, 169, 201)],
    pytest.param("convnext_tiny", dict(input_shape=(32, 32, 3), include_top=False),
                 marks=pytest.mark.slow),
    *[pytest.param(f"efficientnet_b{n}", dict(input_shape=(32, 32, 3), include_top=False),
                   marks=pytest.mark.slow) for n in range(8)],
    pytest.param("inception_v3", dict(input_shape=(75, 75, 3), include_top=False),
                 marks=pytest.mark.slow),
    *[pytest.param(v, dict(input_shape=(64, 64, 3), include_top=False), marks=pytest.mark.slow)
      for v in ("resnet50v2", "resnet101v2")],
]


def _randomize(model, seed=0):
    """Random weights everywhere (BatchNorm statistics, layer scales), so copies are tested."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") if "variance" not in w.path
                       else rng.uniform(0.5, 1.5, w.shape).astype("float32")
                       for w in model.weights])


def _builder_arguments(twin_arguments):
    arguments = dict(twin_arguments)
    if "alpha" in arguments:
        arguments["width_multiplier"] = arguments.pop("alpha")
    return arguments


def _twin(variant, **arguments):
    return getattr(keras.applications, pretrained.FAMILIES[variant].twin)(weights=None,
                                                                          **arguments)


def _twin_inputs(variant, twin, images):
    """What the kerascnn model takes for `images`: the twin's tensor at its stem."""
    if variant not in STEMS:
        return images
    return keras.Model(twin.input, twin.get_layer(STEMS[variant]).input)(images)


@pytest.mark.parametrize("variant, arguments", CASES)
def test_weights_file_of_the_twin_gives_the_twins_outputs(variant, arguments, tmp_path):
    logits = {"classifier_activation": None} if arguments.get("include_top", True) else {}
    twin = _twin(variant, **logits, **arguments)
    _randomize(twin)
    path = tmp_path / "twin.weights.h5"
    twin.save_weights(path)
    ours = kerascnn.build_model(variant, weights=str(path), **logits,
                                **_builder_arguments(arguments))
    images = np.random.default_rng(1).uniform(-1, 1, (2, *arguments["input_shape"]))
    images = images.astype("float32")
    expected = keras.ops.convert_to_numpy(twin(images))
    got = keras.ops.convert_to_numpy(ours(_twin_inputs(variant, twin, images)))
    assert np.std(expected) > 1e-3
    # keras' DenseNet uses BatchNorm epsilon 1.001e-5, ours 1e-5.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def mobilenet_files(tmp_path_factory):
    """keras.applications' MobileNet α 0.25 at 128, random weights, with and without its top,
    saved as Keras publishes them (.h5) and as `save_weights` writes them (.weights.h5)."""
    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for top in (True, False):
        twin = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
                                            include_top=top, weights=None)
        _randomize(twin)
        files[top, "h5"] = folder / f"mobilenet_2_5_128_tf{'' if top else '_no_top'}.h5"
        with h5py.File(files[top, "h5"], "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, twin)
        files[top, "weights.h5"] = folder / f"top{top}.weights.h5"
        twin.save_weights(files[top, "weights.h5"])
        files[top] = twin
    return files


@pytest.mark.parametrize("top", [True, False])
@pytest.mark.parametrize("kind", ["h5", "weights.h5"])
def test_mobilenet_takes_keras_weights_files_with_and_without_the_top(mobilenet_files, top,
                                                                     kind):
    twin = mobilenet_files[top]
    ours = kerascnn.models.mobilenet(include_top=top, weights=str(mobilenet_files[top, kind]),
                                     input_shape=(128, 128, 3), width_multiplier=0.25)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(images)),
                               keras.ops.convert_to_numpy(twin(images)), rtol=1e-5, atol=1e-5)


def test_weights_that_do_not_fit_name_the_file(mobilenet_files):
    path = mobilenet_files[True, "weights.h5"]
    with pytest.raises(ValueError, match=f"{path} fits neither kerascnn's mobilenet nor its "
                                         "twin: .*alpha=0.5.*cannot load"):
        kerascnn.models.mobilenet(weights=str(path), input_shape=(128, 128, 3),
                                  width_multiplier=0.5)


def test_an_option_that_changes_the_layers_is_named(mobilenet_files):
    with pytest.raises(ValueError, match="does not take the weights of keras.applications."
                                         "MobileNet: .*conv1_bn"):
        kerascnn.models.mobilenet(weights=str(mobilenet_files[True, "h5"]),
                                  input_shape=(128, 128, 3), width_multiplier=0.25, norm="none")


def test_imagenet_offline_names_the_file_url_and_fix(tmp_path, monkeypatch):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    url = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
    with pytest.raises(ValueError, match=f"mobilenet_2_5_128_tf_no_top.h5, which Keras downloads "
                                         f"from {url}mobilenet_2_5_128_tf_no_top.h5 into "
                                         f"{tmp_path}/models .*weights=PATH"):
        kerascnn.models.mobilenet(weights="imagenet", include_top=False,
                                  input_shape=(128, 128, 3), width_multiplier=0.25)


@pytest.mark.parametrize("call, message", [
    (lambda: kerascnn.build_model("resnet18", weights="imagenet"),
     "resnet18: weights='imagenet' exist for the builders that equal a keras.applications "
     "network: mobilenet, xception, densenet121"),
    (lambda: kerascnn.models.mobilenet(weights="imagenet", classes=10),
     "with include_top=True has ImageNet's 1000 classes; got classes=10"),
    (lambda: kerascnn.models.vgg16(weights="nowhere.h5"),
     "weights='nowhere.h5' is neither None, 'imagenet' nor an existing weights file"),
])
def test_weights_mistakes_are_refused_before_building(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_weights_file_of_the_model_itself_still_loads(tmp_path):
    model = kerascnn.build_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    _randomize(model)
    model.save_weights(tmp_path / "lenet5.weights.h5")
    again = kerascnn.build_model("lenet5", input_shape=(32, 32, 1), num_classes=10,
                                 weights=str(tmp_path / "lenet5.weights.h5"))
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
