"""Head surgery: the classifier found and rebuilt, every other weight carried and reported."""

import keras
import numpy as np
import pytest

import kerascnn
from transfer_helpers import SAVED_MODELS
from kerascnn.data import load
from kerascnn.transfer import TransferError, surgery
from kerascnn.transfer.finetune import adapt


def _weights_by_layer(model):
    return {name: [np.asarray(w) for w in layer.weights]
            for name, layer in surgery.flat_layers(model) if layer.weights}


def test_saved_model_head_replaced_rest_copied_through_preprocessing(digits):
    source = keras.models.load_model(SAVED_MODELS / "lenet5_mnist.keras")
    three = digits  # 10 classes; use a 3-class subset to change the head's size
    x, y = three.arrays("train")
    keep = y < 3
    data = load((x[keep], y[keep]), validation_split=0.1)
    new, rows, _ = adapt(source, data, bn="frozen")
    assert new.outputs[0].shape[-1] == 3
    status = {r["layer"]: r["status"] for r in rows}
    assert status.pop("lenet5/predictions") == "replaced"
    assert set(status.values()) == {"kept"}
    assert "preprocessing" in status  # the source's normalisation statistics travel
    before, after = _weights_by_layer(source), _weights_by_layer(new)
    for name in status:
        for old, copied in zip(before[name], after[name]):
            np.testing.assert_array_equal(old, copied)
    assert after["lenet5/predictions"][0].shape == (84, 3)
    table = surgery.report_table(rows)
    assert "lenet5/predictions  replaced" in table and "total: kept 5 layers" in table


def test_googlenet_auxiliary_heads_all_replaced(digits):
    net = kerascnn.build_model("googlenet", input_shape=(32, 32, 1), num_classes=4,
                               width_multiplier=0.1)
    assert surgery.find_classifiers(net) == ["predictions", "aux1_predictions",
                                             "aux2_predictions"]
    new, rows, _ = adapt(net, digits, bn="frozen")
    assert [tuple(o.shape) for o in new.outputs] == [(None, 10)] * 3
    replaced = sorted(r["layer"] for r in rows if r["status"] == "replaced")
    assert replaced == ["aux1_predictions", "aux2_predictions", "predictions"]
    assert {r["status"] for r in rows if r["layer"] not in replaced} == {"kept"}
    _, head = surgery.head_path(net)
    assert {"aux1_conv", "aux2_fc", "avg_pool", "predictions"} <= set(head)
    assert not any(name.startswith("inception") for name in head)


def test_keras_applications_head_with_reshape(digits):
    mobilenet = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), classes=10,
                                             alpha=0.25)
    assert surgery.find_classifiers(mobilenet) == ["conv_preds"]
    x, y = digits.arrays("train")
    data = load((np.repeat(x[y < 4], 3, axis=-1), y[y < 4]), validation_split=0.1)
    new, rows, _ = adapt(mobilenet, data, bn="frozen")
    assert new.outputs[0].shape[-1] == 4
    assert new.get_layer("conv_preds").kernel.shape == (1, 1, 256, 4)
    assert [r["layer"] for r in rows if r["status"] != "kept"] == ["conv_preds"]
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    features = keras.Model(new.inputs[0], new.get_layer("conv_pw_13_relu").output)
    reference = keras.Model(mobilenet.inputs[0], mobilenet.get_layer("conv_pw_13_relu").output)
    np.testing.assert_allclose(features(images), reference(images), rtol=1e-5, atol=1e-5)


def test_squeezenet_convolutional_classifier_before_the_pooling(digits):
    net = kerascnn.build_model("squeezenet1_1", input_shape=(32, 32, 1), num_classes=4,
                               width_multiplier=0.25)
    assert surgery.find_classifiers(net) == ["conv10"]
    new, rows, _ = adapt(net, digits, bn="frozen")
    assert new.get_layer("conv10").kernel.shape == (1, 1, 128, 10)
    assert [r["layer"] for r in rows if r["status"] != "kept"] == ["conv10"]
    assert surgery.head_path(net)[1] == ["conv10", "conv10_relu", "avg_pool", "predictions"]
    # Without the top, the map averaged by the pooling is features, not class scores.
    trunk = kerascnn.build_model("squeezenet1_1", input_shape=(32, 32, 1), include_top=False,
                                 pooling="avg", width_multiplier=0.25)
    with pytest.raises(TransferError, match="has no classification head"):
        surgery.find_classifiers(trunk)


def test_no_classification_head_is_one_clear_error(digits):
    trunk = kerascnn.build_model("lenet5", input_shape=(16, 16, 1), include_top=False,
                                 pooling="avg")
    with pytest.raises(TransferError, match="has no classification head.*include_top=True"):
        adapt(trunk, digits, bn="frozen")
