"""Fine-tuning end to end: from each saved model, a keras.applications network, a run folder;
feature extraction and the logistic-regression baseline."""

import json
import zipfile

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import kerascnn
from kerascnn.data import load
from kerascnn.transfer import TransferError


def _config_text(path):
    with zipfile.ZipFile(path) as archive:
        text = archive.read("config.json").decode()
    return text


@pytest.mark.parametrize("name", ["lenet5_mnist",
                                  pytest.param("resnet18_mnist", marks=pytest.mark.slow)])
def test_finetune_each_saved_model(name, digits, tmp_path):
    out = tmp_path / name
    result = kerascnn.finetune(name, digits, freeze="base", epochs=1, bn="train_affine",
                               lr_mult="0.1..1", renormalize=True, out=out, verbose=0)
    assert result.run_dir == str(out)
    assert result.metrics["accuracy"] > 0.3  # ten classes: chance is 0.1
    config = _config_text(out / "model.keras")
    # The file holds Keras' own BatchNorm and no optimizer: it loads without kerascnn.transfer.
    assert "FixedStatistics" not in config and "WithGroupRates" not in config
    loaded = keras.models.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(digits.x_test[:8], verbose=0),
                               result.model.predict(digits.x_test[:8], verbose=0), atol=1e-5)
    manifest = json.loads((out / "finetune.json").read_text())
    assert manifest["source"]["manifest"]["name"] == name
    assert manifest["lr_mult"]["head"] == pytest.approx(1.0)
    assert manifest["input_adaptation"]["normalisation"] == "re-adapted on the new training split"
    # The headline test metrics, as floats: the fine-tune's, then each phase's.
    assert manifest["test_metrics"] == {key: pytest.approx(result.metrics[key])
                                        for key in ("accuracy", "macro_f1", "log_loss")}
    assert manifest["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    [phase] = manifest["phases"]
    assert sorted(phase["test_metrics"]) == ["accuracy", "log_loss", "macro_f1"]
    assert all(isinstance(v, float) for v in phase["test_metrics"].values())


@pytest.mark.slow
def test_finetune_keras_applications_network_then_its_run_folder(digits, tmp_path):
    x, y = digits.arrays("train")
    rgb = load(((np.repeat(x[:400], 3, axis=-1), y[:400]),
                (np.repeat(digits.x_test[:100], 3, axis=-1), digits.y_test[:100])),
               validation_split=0.1)
    mobilenet = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), classes=7,
                                             alpha=0.25)
    first = kerascnn.finetune(mobilenet, rgb, freeze="base", epochs=1,
                              out=tmp_path / "mobilenet", verbose=0)
    assert first.model.outputs[0].shape[-1] == 10
    manifest = json.loads((tmp_path / "mobilenet" / "finetune.json").read_text())
    assert list(manifest["groups"]) == [f"stage{i}" for i in range(1, 6)] + ["head"]
    assert [r["layer"] for r in manifest["weights"] if r["status"] == "replaced"] == ["conv_preds"]
    assert manifest["phases"][0]["frozen_layers"][0] == "conv1"
    again = kerascnn.finetune(tmp_path / "mobilenet", digits, freeze="base", epochs=1,
                              verbose=0)  # a run folder as the source, grey data this time
    assert again.model.inputs[0].shape[-1] == 1
    assert again.model.outputs[0].shape[-1] == 10


def test_extract_features_and_the_logistic_regression_baseline(digits):
    features = kerascnn.extract_features("lenet5_mnist", digits)
    assert features["train"][0].shape == (digits.size("train"), 84)  # fc2, before the head
    pooled = kerascnn.extract_features("lenet5_mnist", digits, layer="pool2")
    assert pooled["test"][0].shape == (digits.size("test"), 5 * 5 * 16)
    with pytest.raises(TransferError, match="has no layer 'fc9'"):
        kerascnn.extract_features("lenet5_mnist", digits, layer="fc9")
    baseline = kerascnn.finetune("lenet5_mnist", digits, freeze="all", verbose=0)
    x, y = features["train"]
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    expected = reference.score(*features["test"])
    assert baseline.metrics["accuracy"] == pytest.approx(expected, abs=0.01)
    assert baseline.metrics["accuracy"] > 0.85
