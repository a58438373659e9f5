"""Training precision: bfloat16 only on CPUs with bfloat16 units; float32 outputs and models."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerascnn
from kerascnn.models.registry import build_model, get_model_entry
from kerascnn.training import network, precision


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {' '.join(flags)}\n\n")
    return str(path)


@pytest.mark.parametrize("flags, fast", [
    (["fpu", "avx2", "avx512f"], False),
    (["fpu", "avx512f", "avx512_bf16"], True),
    (["fpu", "amx_tile", "amx_bf16"], True),
])
def test_cpu_flags_decide(tmp_path, monkeypatch, flags, fast):
    monkeypatch.delenv(precision.CPU_BFLOAT16_ENV, raising=False)
    found, reason = precision.cpu_bfloat16_support(_cpuinfo(tmp_path, flags))
    assert found is fast
    assert ("has none" in reason) is not fast


def test_auto_keeps_float32_where_bfloat16_is_slow(monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "0")
    chosen = precision.choose_precision("auto", gpu=False)
    assert (chosen.name, chosen.policy) == ("float32", "float32")
    assert precision.CPU_BFLOAT16_ENV in chosen.reason


def test_auto_picks_bfloat16_on_a_bfloat16_cpu_and_float16_on_a_gpu(monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "1")
    assert precision.choose_precision("auto", gpu=False).policy == "mixed_bfloat16"
    assert precision.choose_precision("auto", gpu=True).policy == "mixed_float16"


def test_auto_keeps_depthwise_networks_in_float32_on_a_bfloat16_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "1")
    chosen = precision.choose_precision("auto")
    mobilenet = build_model("mobilenet", input_shape=(32, 32, 3), num_classes=3)
    kept = precision.for_model("auto", chosen, mobilenet)
    assert kept.name == "float32" and "DepthwiseConv2D" in kept.reason
    lenet = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    assert precision.for_model("auto", chosen, lenet) == chosen
    asked = precision.choose_precision("bfloat16")
    assert precision.for_model("bfloat16", asked, mobilenet) == asked  # asked for: kept

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    digits = kerascnn.data.load("digits", test_split=None, seed=0)
    result = kerascnn.train(keras.Model(inputs, outputs), digits, epochs=1, verbose=0,
                            out=tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["precision"]["name"] == "float32" and "DepthwiseConv2D" in run["precision"]["reason"]
    assert {layer.dtype_policy.name for layer in _layers(result.model)} == {"float32"}


def test_bad_requests_name_the_value():
    with pytest.raises(ValueError, match="'bf16'"):
        precision.choose_precision("bf16", gpu=False)
    with pytest.raises(ValueError, match="needs a GPU"):
        precision.choose_precision("float16", gpu=False)


def test_with_policy_keeps_preprocessing_and_softmax_in_float32():
    data = kerascnn.data.load("digits", seed=0)
    shape = network.network_input_shape("lenet5", data.input_shape, {})
    net = network.wrap(build_model("lenet5", input_shape=shape, num_classes=10), data,
                       "standardize")
    mixed = precision.with_policy(net, "mixed_bfloat16")
    policies = {layer.name: layer.dtype_policy.name
                for layer in [*mixed.layers, *mixed.get_layer("lenet5").layers]}
    assert policies["preprocessing"] == policies["predictions"] == "float32"
    assert policies["conv1"] == policies["fc2"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    x = data.arrays("test")[0][:64]
    reference = net.predict(x, verbose=0)
    outputs = mixed.predict(x, verbose=0)
    assert outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, reference, atol=0.02)  # bfloat16 keeps 8 bits
    back = precision.with_policy(mixed, "float32")
    assert {layer.dtype_policy.name for layer in back.get_layer("lenet5").layers} == {"float32"}
    np.testing.assert_array_equal(back.predict(x, verbose=0), reference)
    assert precision.with_policy(net, "float32") is net


def test_bfloat16_training_saves_a_float32_model_predicting_the_same_classes(tmp_path):
    # No test split (no test report: quicker); the validation split is held out.
    digits = kerascnn.data.load("digits", test_split=None, validation_split=0.1, seed=0)
    result = kerascnn.train("lenet5", digits, epochs=2, precision="bfloat16", out=tmp_path,
                            verbose=0)
    assert keras.config.dtype_policy().name == "float32"
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["precision"] == {"name": "bfloat16", "policy": "mixed_bfloat16",
                                "reason": "asked for"}
    # The checkpoint keeps the training policy: the weights were trained in bfloat16.
    trained = keras.models.load_model(tmp_path / "checkpoints" / "epoch-2.keras")
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in _layers(trained)}

    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert {layer.dtype_policy.name for layer in _layers(loaded)} == {"float32"}
    x, y = digits.arrays("validation")  # held out from training
    before, after = result.model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    assert after.dtype == np.float32
    assert np.array_equal(before.argmax(1), after.argmax(1))
    assert (after.argmax(1) == y).mean() > 0.5  # chance is 0.1
    assert (trained.predict(x, verbose=0).argmax(1) == after.argmax(1)).mean() > 0.97


def test_auto_follows_the_cpu_and_a_resumed_run_keeps_its_precision(tmp_path, monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "1")
    digits = kerascnn.data.load("digits", test_split=None, seed=0)  # no test report: quicker
    common = {"schedule": "constant", "verbose": 0}  # length-free: the epochs may grow
    first = kerascnn.train("lenet1", digits, epochs=1, out=tmp_path / "fast", **common)
    run = json.loads((tmp_path / "fast" / "run.json").read_text())
    assert run["precision"] == {"name": "bfloat16", "policy": "mixed_bfloat16",
                                "reason": f"{precision.CPU_BFLOAT16_ENV}=1"}

    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "0")
    longer = kerascnn.train("lenet1", digits, epochs=2, out=tmp_path / "fast", **common)
    run = json.loads((tmp_path / "fast" / "run.json").read_text())
    assert run["epochs_completed"] == 2
    assert longer.history["loss"][:1] == first.history["loss"]  # a longer run resumed
    assert run["precision"]["name"] == "bfloat16" and "resumed" in run["precision"]["reason"]
    with pytest.raises(ValueError, match="differs in precision bfloat16 -> float32"):
        kerascnn.train("lenet1", digits, epochs=3, out=tmp_path / "fast", precision="float32",
                       **common)

    keras.config.set_dtype_policy("mixed_bfloat16")  # a caller's global policy stays as it was
    try:
        result = kerascnn.train("lenet1", digits, epochs=1, out=tmp_path / "slow", **common)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    run = json.loads((tmp_path / "slow" / "run.json").read_text())
    assert run["precision"] == {"name": "float32", "policy": "float32",
                                "reason": f"{precision.CPU_BFLOAT16_ENV}=0"}
    assert {layer.dtype_policy.name for layer in _layers(result.model)} == {"float32"}


def test_float16_on_a_cpu_is_refused_before_any_work(tmp_path):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("float16 is allowed on a GPU")
    with pytest.raises(ValueError, match="precision='float16' needs a GPU"):
        kerascnn.train("lenet5", "digits", precision="float16", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="precision='bf16' is not supported; choose one of"):
        kerascnn.training.get_recipe("quick", precision="bf16")


def _layers(model):
    """Every layer of a model, those of nested models included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers(layer))
    return found


@pytest.mark.parametrize("command", [["train"], ["finetune", "model.keras", "--data", "digits"]])
def test_the_cli_offers_every_precision(command, capsys):
    from kerascnn.cli import parser

    for name in precision.PRECISIONS:
        assert parser().parse_args([*command, "--precision", name]).precision == name
    with pytest.raises(SystemExit):
        parser().parse_args([*command, "--precision", "bf16"])
    assert "invalid choice: 'bf16'" in capsys.readouterr().err


def _runs_in_bfloat16(name, input_shape):
    """Builds `name`, makes it compute in bfloat16, and compares its outputs with float32's."""
    model = build_model(name, input_shape=input_shape, num_classes=10)
    mixed = precision.with_policy(model, "mixed_bfloat16")
    x = np.random.default_rng(0).random((2, *input_shape), dtype=np.float32)
    for output, expected in zip(keras.tree.flatten(mixed(x)), keras.tree.flatten(model(x))):
        assert output.dtype == "float32"
        np.testing.assert_allclose(np.asarray(output), np.asarray(expected), atol=0.05)
    mixed(x, training=True)  # the training pass too
    return mixed


def test_lrn_stays_float32_under_bfloat16():
    mixed = _runs_in_bfloat16("alexnet", (96, 96, 3))  # TensorFlow's LRN takes float32 only
    policies = {layer.name: layer.dtype_policy.name for layer in _layers(mixed)}
    assert policies["lrn1"] == policies["lrn2"] == "float32"
    assert "mixed_bfloat16" in policies.values()


def test_patch_whitening_stays_float32_under_bfloat16(cifar10_slice):
    """The whitening amplifies the faintest patch directions: computed in bfloat16 its last
    channels were 15% wrong (RMS) on CIFAR-10; in float32 they match a NumPy reference."""
    data = kerascnn.data.load(str(cifar10_slice))
    net = network.wrap(build_model("airbench94"), data, "standardize")
    mixed = precision.with_policy(net, "mixed_bfloat16")
    whiten = mixed.get_layer("airbench94").get_layer("whiten")
    assert whiten.dtype_policy.name == "float32"
    images = keras.ops.convert_to_numpy(net.get_layer("preprocessing")(data.arrays("test")[0]))
    patches = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))
    kernel = keras.ops.convert_to_numpy(whiten.kernel)  # (2, 2, 3, 24)
    reference = np.einsum("nhwcij,ijcf->nhwf", patches.astype("float64"), kernel)
    outputs = keras.ops.convert_to_numpy(whiten(images))
    squared = ((outputs - reference) ** 2).mean((0, 1, 2)), (reference ** 2).mean((0, 1, 2))
    error = np.sqrt(squared[0] / squared[1])  # relative RMS error of each channel
    assert error.max() < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", kerascnn.list_models())
def test_every_registry_model_runs_in_bfloat16(name):
    shape = get_model_entry(name).default_input_shape
    if len(shape) == 3 and min(shape[:2]) > 96:  # small inputs, where the model takes them
        try:
            build_model(name, input_shape=(96, 96, shape[-1]), num_classes=10)
            shape = (96, 96, shape[-1])
        except ValueError:
            pass
    _runs_in_bfloat16(name, shape)
