"""Recipes and schedules construct what they say."""

import math

import keras
import numpy as np
import pytest

from kerascnn.training import RECIPES, OneCycle, Recipe, WarmupCosine, get_recipe
from kerascnn.training.schedules import learning_rate


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_named_recipes_follow_their_papers():
    alexnet = RECIPES["alexnet"]
    assert (alexnet.optimizer, alexnet.momentum, alexnet.learning_rate) == ("sgd", 0.9, 0.01)
    assert (alexnet.schedule, alexnet.factor, alexnet.batch_size, alexnet.dropout) == ("plateau", 0.1, 128, 0.5)
    assert RECIPES["resnet"].schedule == "step" and RECIPES["resnet"].weight_decay == 1e-4
    rs = RECIPES["resnet_rs"]
    assert (rs.schedule, rs.label_smoothing, rs.ema) == ("cosine", 0.1, 0.9999)
    assert "randaugment" in rs.augment and rs.weight_decay == 4e-5
    assert RECIPES["quick"].optimizer == "adam"


def test_recipes_override_field_by_field_and_reject_unknown_fields():
    recipe = get_recipe("alexnet", epochs=3, learning_rate=0.05, batch_size=None)
    assert (recipe.epochs, recipe.learning_rate, recipe.batch_size) == (3, 0.05, 128)
    assert RECIPES["alexnet"].epochs == 90  # the named recipe itself is unchanged
    assert get_recipe({"optimizer": "rmsprop", "epochs": 2}).optimizer == "rmsprop"
    with pytest.raises(ValueError, match="Recipe has no field lr"):
        get_recipe("quick", lr=0.1)
    with pytest.raises(ValueError, match="Unknown recipe 'fast'"):
        get_recipe("fast")
    with pytest.raises(ValueError, match="optimizer='lamb'"):
        Recipe(optimizer="lamb")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1; got 0"):
        get_recipe("quick", epochs=0)


def test_plateau_recipe_divides_the_learning_rate_by_ten():
    recipe = RECIPES["alexnet"]
    assert learning_rate(recipe, 10, 5) == 0.01  # a float the callback can change
    callback = keras.callbacks.ReduceLROnPlateau("val_loss", factor=recipe.factor, patience=0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate(recipe, 10, 5)), "mse")
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, loss in enumerate([1.0, 1.0, 1.0]):
        callback.on_epoch_end(epoch, {"val_loss": loss})
    assert math.isclose(float(model.optimizer.learning_rate), 0.01 * 0.1 * 0.1, rel_tol=1e-6)


def test_step_schedule_divides_at_the_milestones():
    schedule = learning_rate(RECIPES["resnet"], steps_per_epoch=10, epochs=90)
    assert lr_at(schedule, 0) == pytest.approx(0.1)
    assert lr_at(schedule, 299) == pytest.approx(0.1)
    assert lr_at(schedule, 301) == pytest.approx(0.01)
    assert lr_at(schedule, 601) == pytest.approx(0.001)


def test_inverse_time_is_one_over_k():
    schedule = learning_rate(Recipe(schedule="inverse_time", learning_rate=0.1), 10, 5)
    for epoch in range(4):
        assert lr_at(schedule, epoch * 10 + 5) == pytest.approx(0.1 / (1 + epoch))


def test_warmup_cosine_matches_the_formula():
    schedule = WarmupCosine(0.4, total_steps=100, warmup_steps=10)
    assert lr_at(schedule, 4) == pytest.approx(0.4 * 5 / 10)
    for step in (10, 35, 60, 99):
        expected = 0.5 * 0.4 * (1 + math.cos(math.pi * (step - 10) / 90))
        assert lr_at(schedule, step) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    config = keras.saving.serialize_keras_object(schedule)
    assert lr_at(keras.saving.deserialize_keras_object(config), 35) == pytest.approx(lr_at(schedule, 35))


def test_one_cycle_rises_then_falls():
    schedule = OneCycle(1.0, total_steps=100)
    values = np.array([lr_at(schedule, s) for s in range(100)])
    assert values[0] == pytest.approx(1 / 25, rel=1e-3)
    assert values.argmax() == 30 and values.max() == pytest.approx(1.0)
    assert values[-1] < 1e-3
    assert (np.diff(values[:30]) > 0).all() and (np.diff(values[31:]) < 0).all()
