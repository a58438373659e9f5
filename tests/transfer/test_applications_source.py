"""keras.applications networks as fine-tuning sources: offline, from local weights files."""

import json
import urllib.error

import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import densenet, efficientnet, mobilenet_v2, resnet
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

from kerascnn import cli
from kerascnn.cli import main
from kerascnn.transfer import applications
from kerascnn.transfer.source import TransferError, load_source

SOURCE = "keras.applications.MobileNet(alpha=0.25, input_shape=(32, 32, 3))"
# The file keras.applications downloads for MobileNetV2(alpha=0.35, input_shape=(96, 96, 3)).
V2_SOURCE = "keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))"
V2_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"


def _randomize_batch_norm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory):
    """(keras.applications' MobileNet α 0.25 on 32×32 with random weights, its .weights.h5)."""
    net = keras.applications.MobileNet(alpha=0.25, input_shape=(32, 32, 3), weights=None)
    _randomize_batch_norm(net)
    path = tmp_path_factory.mktemp("weights") / "mobilenet.weights.h5"
    net.save_weights(path)
    return net, path


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache ($KERAS_HOME) and no network: every download fails."""
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    return tmp_path / "keras_home"


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_source_computes_what_keras_applications_computes_after_preprocess_input(
        mobilenet_file):
    net, path = mobilenet_file
    model, provenance = load_source(SOURCE, weights=str(path))
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(
        net(keras.applications.mobilenet.preprocess_input(images.copy())))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), expected, atol=1e-5)
    assert provenance["name"] == SOURCE
    assert provenance["weights"]["origin"] == "file"
    assert provenance["weights"]["path"] == str(path)
    assert provenance["sha256"] == provenance["weights"]["sha256"]
    assert provenance["input"]["mean"] == [127.5] * 3 and provenance["input"]["std"] == [127.5] * 3


@pytest.mark.parametrize("module, mean, std, order", [
    (mobilenet_v2, [127.5] * 3, [127.5] * 3, [0, 1, 2]),  # "tf"
    (densenet, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375], [0, 1, 2]),  # "torch"
    (resnet, [123.68, 116.779, 103.939], [1, 1, 1], [2, 1, 0]),  # "caffe": BGR
    (efficientnet, [0, 0, 0], [1, 1, 1], [0, 1, 2]),  # inside the network
])
def test_input_statistics_are_measured_from_preprocess_input(module, mean, std, order):
    found = applications.input_statistics(module.preprocess_input)
    np.testing.assert_allclose(found["mean"], mean, atol=1e-3)
    np.testing.assert_allclose(found["std"], std, rtol=1e-5)
    assert found["order"] == order


def test_a_caffe_network_takes_rgb_through_its_first_convolution():
    # keras.applications' ResNet50 and VGG: BGR minus the channel means; kerascnn's
    # Preprocessing keeps RGB, and the first convolution's kernel takes the channels reversed.
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 3, name="conv1_conv")(keras.layers.ZeroPadding2D()(inputs))
    net = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(net(resnet.preprocess_input(images.copy())))
    statistics = applications.input_statistics(resnet.preprocess_input)
    assert applications._fold_channel_order(net, statistics["order"]) == "conv1_conv"
    model = applications._behind_preprocessing(net, statistics)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), expected, atol=1e-3)


@pytest.mark.slow
def test_finetune_command_runs_a_keras_application_and_records_it(mobilenet_file, tmp_path,
                                                                  capsys):
    _, path = mobilenet_file
    out = tmp_path / "ft"
    main(["finetune", SOURCE, "--weights", str(path), "--data", "digits", "--epochs", "1",
          "--head-epochs", "1", "--out", str(out)])
    printed = capsys.readouterr()
    assert f"run folder: {out}" in printed.out
    assert "conv_preds" in printed.err and "replaced" in printed.err  # its 1×1 classifier
    manifest = json.loads((out / "finetune.json").read_text())
    source = manifest["source"]
    assert source["kind"] == "keras.applications" and source["name"] == SOURCE
    assert source["weights"]["origin"] == "file" and source["weights"]["path"] == str(path)
    assert len(source["weights"]["sha256"]) == 64
    assert manifest["fingerprint"]["source"] == {"name": SOURCE, "sha256": source["sha256"]}
    # digits' 0-16 against the 0-255 the network expects: re-adapted on the training split.
    assert manifest["input_adaptation"]["normalisation_check"]["renormalized"] is True


def test_imagenet_offline_is_one_line_naming_the_file_url_cache_and_fix(offline, tmp_path,
                                                                         capsys):
    out = tmp_path / "out"
    line = _fails(["finetune", V2_SOURCE, "--weights", "imagenet", "--data", "digits",
                   "--out", str(out)], capsys)
    assert line.startswith("kerascnn finetune: error: weights='imagenet'")
    assert f"{mobilenet_v2.BASE_WEIGHT_PATH}{V2_FILE}" in line
    assert str(offline / "models") in line and "--weights PATH" in line
    assert not out.exists()


def test_imagenet_weights_in_keras_cache_need_no_network(offline, monkeypatch):
    net = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None)
    (offline / "models").mkdir()
    with h5py.File(offline / "models" / V2_FILE, "w") as f:  # the format Keras publishes
        legacy_h5_format.save_weights_to_hdf5_group(f, net)
    # A random stand-in for the published file: its hash is not the one Keras checks.
    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)
    model, provenance = load_source(V2_SOURCE)  # weights: "imagenet" by default
    weights = provenance["weights"]
    assert weights["origin"] == "imagenet" and weights["file"] == V2_FILE
    assert weights["url"] == f"{mobilenet_v2.BASE_WEIGHT_PATH}{V2_FILE}"
    assert weights["path"] == str(offline / "models" / V2_FILE)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer(net.name).get_layer("Conv1").kernel),
        keras.ops.convert_to_numpy(net.get_layer("Conv1").kernel))


@pytest.mark.parametrize("source, message", [
    ("keras.applications.NoSuchNet", "keras.applications has no network 'NoSuchNet'"),
    ("keras.applications.MobileNetv2", "Did you mean keras.applications.MobileNetV2"),
    ("MobileNetV2", "name it 'keras.applications.MobileNetV2'"),
    ("keras.applications.MobileNetV2(include_top=False)", "include_top is not a source's"),
    ("keras.applications.MobileNetV2(depth=3)", "takes no argument 'depth'"),
    ("keras.applications.MobileNetV2(alpha=x)", "literal values"),
])
def test_bad_names_and_arguments_are_refused_before_any_work(source, message, tmp_path,
                                                            capsys):
    out = tmp_path / "out"
    line = _fails(["finetune", source, "--data", "digits", "--out", str(out)], capsys)
    assert message in line
    assert not out.exists()


def test_a_weights_file_that_does_not_fit_is_named(mobilenet_file, tmp_path):
    _, path = mobilenet_file
    wider = "keras.applications.MobileNet(alpha=0.5, input_shape=(32, 32, 3))"
    with pytest.raises(TransferError, match=f"cannot load {path}: .*shape"):
        load_source(wider, weights=str(path))
    junk = tmp_path / "junk.h5"
    junk.write_text("not weights")
    with pytest.raises(TransferError, match=f"cannot load {junk}"):
        load_source(SOURCE, weights=str(junk))


@pytest.mark.parametrize("argv, message", [
    (["lenet5_mnist", "--weights", "imagenet"], "--weights is for keras.applications sources"),
    ([SOURCE, "--weights", "nowhere.h5"], "--weights nowhere.h5 is neither imagenet nor"),
])
def test_weights_mistakes_answer_at_once(argv, message, tmp_path, capsys):
    line = _fails(["finetune", *argv, "--data", "digits", "--out", str(tmp_path / "o")], capsys)
    assert message in line


def test_weights_are_refused_for_a_source_with_its_own():
    with pytest.raises(TransferError, match="brings its own weights"):
        load_source("lenet5_mnist", weights="imagenet")


def test_the_command_line_knows_the_prefix_without_keras():
    assert cli.APPLICATIONS == applications.PREFIX
