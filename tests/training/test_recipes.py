"""Recipes and schedules construct what they say."""

import json
import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.training import RECIPES, OneCycle, Recipe, Triangle, get_recipe, network
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


def _former_warmup_cosine(lr, total, warmup, step):
    """kerascnn's own warm-up cosine before Keras' CosineDecay replaced it (NumPy)."""
    if step < warmup:
        return lr * (step + 1) / max(1, warmup)
    progress = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
    return 0.5 * lr * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("warmup_epochs", [0, 1, 2.5])
def test_warmup_cosine_is_keras_cosine_decay_with_the_former_sequence(warmup_epochs):
    recipe = Recipe(schedule="cosine", learning_rate=0.4, warmup_epochs=warmup_epochs)
    schedule = learning_rate(recipe, steps_per_epoch=10, epochs=10)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    warmup = round(warmup_epochs * 10)
    steps = np.arange(120)  # past the end: stays at 0
    values = np.array([lr_at(schedule, step) for step in steps])
    former = np.array([_former_warmup_cosine(0.4, 100, warmup, s) for s in steps])
    # The decay is the same step for step; Keras' warm-up starts at 0 on step 0, so it runs
    # one step behind the former one (which began at lr / warmup).
    np.testing.assert_allclose(values[warmup:], former[warmup:], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(values[1:warmup], former[:max(warmup - 1, 0)], rtol=1e-5)
    assert values[0] == (0.0 if warmup else pytest.approx(0.4))
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert lr_at(restored, 35) == pytest.approx(lr_at(schedule, 35))


def test_one_cycle_rises_then_falls():
    schedule = OneCycle(1.0, total_steps=100)
    values = np.array([lr_at(schedule, s) for s in range(100)])
    assert values[0] == pytest.approx(1 / 25, rel=1e-3)
    assert values.argmax() == 30 and values.max() == pytest.approx(1.0)
    assert values[-1] < 1e-3
    assert (np.diff(values[:30]) > 0).all() and (np.diff(values[31:]) < 0).all()


def test_triangle_is_numpys_piecewise_linear_interpolation_and_serializes():
    schedule = learning_rate(Recipe(schedule="triangle", learning_rate=2.0, epochs=5), 20, 5)
    assert isinstance(schedule, Triangle)
    steps = np.arange(101)
    expected = 2.0 * np.interp(steps, [0, 20, 100], [0.2, 1.0, 0.0])  # airbench's ablations
    np.testing.assert_allclose([lr_at(schedule, s) for s in steps], expected, atol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert lr_at(restored, 57) == pytest.approx(expected[57])


def test_a_recipe_carries_the_model_options_it_was_made_for():
    recipe = Recipe(name="wide", model_options={"norm": "batch", "width_multiplier": 2,
                                                "kernel_size": [3, 3]})
    # Sorted pairs, lists as tuples: the recipe stays frozen and hashable.
    assert recipe.model_options == (("kernel_size", (3, 3)), ("norm", "batch"),
                                    ("width_multiplier", 2))
    assert hash(recipe) == hash(Recipe(name="wide", model_options=(
        ("width_multiplier", 2), ("norm", "batch"), ("kernel_size", (3, 3)))))
    assert json.loads(json.dumps(recipe.to_dict()))["model_options"] == {
        "kernel_size": [3, 3], "norm": "batch", "width_multiplier": 2}
    assert get_recipe(recipe.to_dict()) == recipe  # a run.json's recipe rebuilds it
    assert get_recipe("mnist_fast", model_options={}).model_options == ()
    with pytest.raises(ValueError, match="cannot set 'dropout': use the recipe's own field"):
        Recipe(model_options={"dropout": 0.3})
    with pytest.raises(ValueError, match="must be a dict of builder options"):
        Recipe(model_options="norm=batch")


def test_recipe_model_options_merge_under_the_callers_and_are_checked_against_the_builder():
    best = RECIPES["mnist_best"]
    merged = network.model_options("lenet5", best, {"norm": "batch"})
    assert merged == {"dropout": 0.25, "activation": "relu", "pool_kind": "max", "norm": "batch",
                      "width_multiplier": 3}
    # resnet18 has no pool_kind: one line naming the option, the builder and the way out.
    with pytest.raises(ValueError) as error:
        network.model_options("resnet18", RECIPES["mnist_fast"], None)
    message = str(error.value)
    assert "\n" not in message
    assert ("'mnist_fast' sets the model option(s) filters, first_padding, hidden_units, "
            "kernel_size, pool_kind, which resnet18 does not") in message
    assert "--option" in message
    with pytest.raises(ValueError, match="lenet5 has no option widht; its options"):
        network.model_options("lenet5", best, {"widht": 2})
    assert network.model_options("lenet5", RECIPES["alexnet"]) == {"dropout": 0.5}


def test_train_builds_the_recipes_model_options_overridden_by_explicit_ones(tmp_path):
    recipe = Recipe(name="wide_bn", epochs=1, batch_size=64,
                    model_options={"norm": "batch", "activation": "relu", "width_multiplier": 2})
    result = kerascnn.train("lenet5", "digits", recipe=recipe, model_options={"width_multiplier": 3},
                            out=str(tmp_path / "run"), verbose=0)
    backbone = next(layer for layer in result.model.layers if isinstance(layer, keras.Model))
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [conv.filters for conv in convs] == [18, 48]  # LeNet-5's 6 and 16 maps, times 3
    assert sum(isinstance(layer, keras.layers.BatchNormalization)
               for layer in backbone.layers) >= 2  # the recipe's norm="batch"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["model_options"] == {"norm": "batch", "activation": "relu", "width_multiplier": 3}
    assert record["recipe"]["model_options"] == {"activation": "relu", "norm": "batch",
                                                 "width_multiplier": 2}


def test_the_catalog_the_command_line_reads_is_recipes():
    import json

    from kerascnn.training import recipes

    with open(recipes.CATALOG_PATH, encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(recipes.catalog())), (
            "kerascnn/training/recipes.json is out of date: python -c \"from kerascnn.training "
            "import recipes; recipes.write_catalog()\"")


def test_adams_betas_are_recipe_fields_that_reach_the_optimizer():
    import pytest

    from kerascnn.training import get_recipe
    from kerascnn.training.optimizers import build_optimizer

    for name in ("adam", "adamw"):
        optimizer = build_optimizer(get_recipe("quick", optimizer=name, beta_1=0.7, beta_2=0.9),
                                    1e-3, 10)
        assert (optimizer.beta_1, optimizer.beta_2) == (0.7, 0.9)
    default = build_optimizer(get_recipe("quick"), 1e-3, 10)
    assert (default.beta_1, default.beta_2) == (0.9, 0.999)  # Keras' and the paper's
    with pytest.raises(ValueError, match=r"beta_2 must be a finite number in \[0, 1\); got 1.0"):
        get_recipe("quick", beta_2=1.0)
