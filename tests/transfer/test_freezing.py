"""Stages and phases: what is trainable in each phase, and which variables really change."""

import json
import re
import shutil

import keras
import numpy as np
import pytest

import kerascnn
from transfer_helpers import SAVED_MODELS
from kerascnn.data.preprocessing import split_network
from kerascnn.transfer import TransferError, freezing


def _kernels(model):
    _, backbone = split_network(model)
    return {l.name: np.asarray(l.kernel).copy() for l in backbone.layers
            if getattr(l, "kernel", None) is not None}


def test_stage_boundaries_of_kerascnn_models():
    resnet = keras.models.load_model(SAVED_MODELS / "resnet18_mnist.keras")
    groups = freezing.layer_groups(resnet)
    assert list(groups) == ["stem", "conv2", "conv3", "conv4", "conv5", "head"]
    assert groups["head"] == ["avg_pool", "predictions"]
    assert all(name.startswith("conv3_") for name in groups["conv3"])
    vgg = kerascnn.build_model("vgg11", input_shape=(32, 32, 3), num_classes=3,
                               width_multiplier=0.0625, hidden_units=(8, 8))
    assert list(freezing.layer_groups(vgg)) == [f"block{i}" for i in range(1, 6)] + ["head"]


def test_phase_plans():
    groups = {"stem": [], "conv2": [], "conv3": [], "head": []}
    plan = freezing.plan_phases("gradual", groups, head_epochs=2, epochs=3, learning_rate=1.0,
                                unfreeze_factor=0.1)
    assert [p.trainable for p in plan] == [
        ["head"], ["conv3", "head"], ["conv2", "conv3", "head"], ["stem", "conv2", "conv3", "head"]]
    assert [p.epochs for p in plan] == [2, 3, 3, 3]
    assert [p.learning_rate for p in plan] == [1.0, 0.1, 0.1, 0.1]
    named = freezing.plan_phases("conv2", groups, head_epochs=0, epochs=1, learning_rate=1.0,
                                 unfreeze_factor=0.1)
    assert [p.trainable for p in named] == [["conv2", "conv3", "head"]]
    with pytest.raises(TransferError, match="freeze=4 must count 1 to 3 stages.*stem, conv2"):
        freezing.plan_phases(4, groups, head_epochs=1, epochs=1, learning_rate=1.0,
                             unfreeze_factor=0.1)


@pytest.mark.slow
def test_each_phase_changes_only_its_trainable_layers(digits, tmp_path):
    source = keras.models.load_model(SAVED_MODELS / "lenet5_mnist.keras")
    out = tmp_path / "run"
    result = kerascnn.finetune("lenet5_mnist", digits, freeze=1, head_epochs=1, epochs=1, out=out,
                               verbose=0)
    start = _kernels(source)
    phase1 = _kernels(keras.models.load_model(out / "phase-1" / "model.keras"))
    phase2 = _kernels(keras.models.load_model(out / "phase-2" / "model.keras"))
    for name in ("conv1", "conv2"):  # phase 1: the base is frozen
        np.testing.assert_array_equal(phase1[name], start[name])
    for name in ("fc1", "fc2"):
        assert not np.array_equal(phase1[name], start[name])
    np.testing.assert_array_equal(phase2["conv1"], start["conv1"])  # phase 2: top stage only
    assert not np.array_equal(phase2["conv2"], phase1["conv2"])
    manifest = json.loads((out / "finetune.json").read_text())
    assert [p["frozen_layers"] for p in manifest["phases"]] == [["conv1", "conv2"], ["conv1"]]
    assert manifest["phases"][1]["learning_rates"] == {"conv2": pytest.approx(2e-4),
                                                       "head": pytest.approx(2e-4)}
    assert manifest["bn"] == "frozen" and manifest["source"]["sha256"].startswith("b7ed05fe")
    assert manifest["classes"]["target"]["9"] == "9"
    assert result.history["phase"] == [1, 2]
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == \
        pytest.approx(result.metrics["accuracy"])
    assert (out / "history.csv").read_text().startswith("epoch,")
    # The folder is a run folder `kerascnn evaluate` reads: its model on its own test split.
    assert kerascnn.evaluate(str(out)).metrics["accuracy"] == \
        pytest.approx(result.metrics["accuracy"])
    # Killed during phase 2: the rerun takes phase 1 from its folder and redoes phase 2 only.
    shutil.rmtree(out / "phase-2")
    again = kerascnn.finetune("lenet5_mnist", digits, freeze=1, head_epochs=1, epochs=1, out=out,
                              verbose=0)
    phases = json.loads((out / "finetune.json").read_text())["phases"]
    # Phase 1 resumed finished: it keeps the seconds it trained for (its run.json's).
    assert phases[0]["seconds"] == manifest["phases"][0]["seconds"] > 0
    assert phases[1]["seconds"] > 0
    assert again.metrics["accuracy"] == result.metrics["accuracy"]  # deterministic on a CPU


def test_unknown_stage_is_refused_before_anything_is_written(digits, tmp_path):
    with pytest.raises(TransferError, match="freeze='conv7' names no stage.*conv1, conv2"):
        kerascnn.finetune("lenet5_mnist", digits, freeze="conv7", out=tmp_path / "x", verbose=0)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name, options, stages", [
    ("resnet50v2", {"input_shape": (32, 32, 3), "width_multiplier": 0.125},
     ["stem", "conv2", "conv3", "conv4", "conv5"]),
    ("efficientnet_b0", {"input_shape": (32, 32, 3), "width_multiplier": 0.25},
     ["stem", *(f"block{i}" for i in range(1, 8)), "top"]),
    ("inception_v3", {"input_shape": (75, 75, 3), "width_multiplier": 1 / 16},
     ["stem", *(f"mixed{i}" for i in range(11))]),
])
def test_stage_boundaries_of_resnet_v2_efficientnet_and_inception_v3(name, options, stages):
    model = kerascnn.build_model(name, num_classes=3, **options)
    groups = freezing.layer_groups(model)
    assert list(groups) == stages + ["head"]
    assert groups["head"][-1] == "predictions"
    for stage in stages[1:-1]:  # a stage holds its own layers only (block1 is no prefix of block10)
        assert all(re.match(rf"{stage}(?!\d)", layer) for layer in groups[stage])
    # freeze=<stage>: that stage and every one above it learn, everything below is frozen.
    (phase,) = freezing.plan_phases(stages[-2], groups, head_epochs=0, epochs=1,
                                    learning_rate=1.0, unfreeze_factor=0.1)
    frozen = set(freezing.set_trainable(model, groups, phase.trainable, bn="frozen"))
    below = {layer for stage in stages[:-2] for layer in groups[stage]}
    assert below <= frozen | {l.name for l in model.layers if not l.weights}
    learning = [l for l in model.layers if l.name in groups[stages[-1]] and l.weights]
    assert all(l.trainable != isinstance(l, keras.layers.BatchNormalization) for l in learning)


def test_squeezenet_layers_fall_in_the_stem_and_fire_modules():
    # SqueezeNet's classifier is a 1×1 convolution before the global pooling (conv10).
    model = kerascnn.build_model("squeezenet1_1", input_shape=(32, 32, 3), num_classes=3,
                                 width_multiplier=0.125)
    patterns = freezing._patterns(model.name)
    found = {layer.name: freezing._match(layer.name, patterns) for layer in model.layers}
    assert found["conv1"] == found["pool1"] == "stem" and found["pool3"] == "fire3"
    assert {group for name, group in found.items() if name.startswith("fire")} == \
        {f"fire{i}" for i in range(2, 10)}
    assert found["conv10"] is None
