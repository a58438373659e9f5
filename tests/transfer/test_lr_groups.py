"""Per-group learning rates: 0 freezes a group, 0.1 moves it a tenth as far (plain SGD)."""

import json
import zipfile

import keras
import numpy as np
import pytest

from transfer_helpers import small_lenet
from kerascnn.training.optimizers import build_optimizer
from kerascnn.training.recipes import get_recipe
from kerascnn.transfer import TransferError, freezing, lr_groups


def _sgd_step(model, make_optimizer):
    """One optimizer step with fixed gradients; returns the change of every variable."""
    variables = model.trainable_variables
    before = [np.asarray(v).copy() for v in variables]
    gradients = [keras.ops.ones_like(v) * (i + 1) for i, v in enumerate(variables)]
    make_optimizer().apply(gradients, variables)
    return {v.path: np.asarray(v) - b for v, b in zip(variables, before)}


@pytest.mark.parametrize("weight_decay, mode", [(0.0, "decoupled"), (0.01, "decoupled"),
                                                (0.01, "l2")])
def test_group_at_zero_stays_and_at_a_tenth_moves_a_tenth(weight_decay, mode):
    recipe = get_recipe("quick", optimizer="sgd", momentum=0.0, learning_rate=0.5,
                        weight_decay=weight_decay, weight_decay_mode=mode)
    plain_model, scaled_model = small_lenet(), small_lenet()
    scaled_model.set_weights(plain_model.get_weights())
    groups = freezing.layer_groups(scaled_model)
    assert list(groups) == ["conv1", "conv2", "head"]
    multipliers = lr_groups.group_multipliers({"conv1": 0.0, "conv2": 0.1}, groups)
    scales = lr_groups.variable_multipliers(scaled_model, groups, multipliers)
    reference = _sgd_step(plain_model, lambda: build_optimizer(recipe, 0.5, 10))  # unscaled
    scaled = _sgd_step(scaled_model,
                       lambda: lr_groups.optimizer_factory(scales)(recipe, 0.5, 10))
    for path, step in scaled.items():
        layer = path.split("/")[-2]
        expected = {"conv1": 0.0, "conv2": 0.1}.get(layer, 1.0) * reference[path]
        np.testing.assert_allclose(step, expected, rtol=1e-5, atol=1e-7, err_msg=path)
    assert np.all(scaled[[p for p in scaled if "conv1" in p][0]] == 0)


def test_low_high_range_is_geometric_and_bad_values_are_refused():
    assert lr_groups.group_multipliers("0.01..1", ["stem", "conv2", "head"]) == \
        pytest.approx({"stem": 0.01, "conv2": 0.1, "head": 1.0})
    with pytest.raises(TransferError, match="names no group 'conv9'.*stem, head"):
        lr_groups.group_multipliers({"conv9": 0.1}, ["stem", "head"])
    assert lr_groups.group_multipliers("stem=0", ["stem", "head"]) == {"stem": 0.0, "head": 1.0}
    assert lr_groups.group_multipliers("0.5,2", ["stem", "head"]) == {"stem": 0.5, "head": 2.0}
    with pytest.raises(TransferError, match="'low..high'"):
        lr_groups.group_multipliers("fast", ["stem", "head"])


def test_optimizer_round_trips_through_a_saved_model(tmp_path):
    model = small_lenet()
    recipe = get_recipe("quick", optimizer="adam")
    optimizer = lr_groups.optimizer_factory({model.layers[1].kernel.path: 0.25})(recipe, 1e-3, 5)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    model.fit(np.zeros((4, 16, 16, 1)), np.eye(10)[:4], verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "AdamWithGroupRates"
    assert loaded.optimizer.multipliers == {model.layers[1].kernel.path: 0.25}
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert config["compile_config"]["optimizer"]["registered_name"] == \
        "kerascnn>AdamWithGroupRates"
