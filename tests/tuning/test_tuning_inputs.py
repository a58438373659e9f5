"""Bad input to kerascnn.tune and study files: one clear line each, before any training."""

import json

import numpy as np
import pytest
from tuning_models import tiny

import kerascnn
from kerascnn.data import load
from kerascnn.tuning import load_study
from kerascnn.tuning.space import check_space, default_space, hyperparameters

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("space, message", [
    ({"learnig_rate": [1e-3]}, r"Unknown hyperparameter 'learnig_rate' for lenet5"),
    ({"dropout": {"min": 0.3, "max": 0.3}}, r"range 'dropout' is empty: min=0.3, max=0.3"),
    ({"learning_rate": {"min": 1e-2, "max": 1e-4}}, r"range 'learning_rate' is inverted"),
    ({"batch_size": []}, r"'batch_size' has an empty list of choices"),
    ({"optimizer": ["adam", "adamx"]}, r"hyperparameter 'optimizer': optimizer='adamx'"),
    ({"validation_split": [0.1, 0.2]},
     r"'validation_split' takes \[0.1, 0.2\] here.*drawn once for the whole search; fix it"),
])
def test_bad_spaces_fail_in_one_line(tmp_path, space, message):
    with pytest.raises(ValueError, match=message) as error:
        kerascnn.tune("lenet5", "digits", space=space, out=tmp_path / "s", verbose=0)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "s").exists()  # nothing written


def test_unknown_tuner_and_objective(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown tuner 'hyperbnd'; choose one of \['bayesian'"):
        kerascnn.tune("lenet5", "digits", tuner="hyperbnd", out=tmp_path / "s")
    with pytest.raises(ValueError, match=r"Unknown objective 'accuracy'"):
        kerascnn.tune("lenet5", "digits", objective="accuracy", out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_more_folds_than_the_smallest_class(tmp_path):
    x = np.zeros((30, 8, 8, 1), np.uint8)
    y = np.array([0] * 26 + [1] * 4)
    data = load((x, y), test_split=None)
    with pytest.raises(ValueError, match=r"Class '1' has 4 training examples, fewer than k=5"):
        kerascnn.tune(tiny, data, folds=5, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_one_split_without_a_held_out_fraction_is_refused(tmp_path):
    """As airbench94's recipe, which holds out nothing: folds=1 scored trials on one image a
    class."""
    with pytest.raises(ValueError, match=r"folds=1 scores each trial on a held-out part of the "
                                         r"training split.*which is 0.0 here"):
        kerascnn.tune("lenet5", "digits", folds=1, out=tmp_path / "s", verbose=0,
                      recipe=kerascnn.training.get_recipe("quick", validation_split=0.0))
    assert not (tmp_path / "s").exists()


def test_one_split_holds_out_the_fraction_the_space_fixes(tmp_path):
    """tuning/cifar_fast.toml's case: a recipe holding out nothing (cifar_fast) and
    `validation_split = 0.2` in the space; folds=1 was refused as if the space said nothing."""
    data = load("digits", seed=0)
    kerascnn.tune(tiny, data, folds=1, max_trials=1, epochs=1, out=tmp_path, verbose=0,
                  space={"batch_size": [64], "validation_split": 0.2},
                  recipe=kerascnn.training.get_recipe("quick", validation_split=0.0))
    (fold,) = json.loads((tmp_path / "folds.json").read_text())["folds"]
    counts = np.bincount(data.training_labels(), minlength=10)
    assert len(fold["held_out"]) == sum(round(0.2 * n) for n in counts)
    assert len(fold["held_out"]) + len(fold["train"]) == counts.sum()


def test_a_folder_of_another_kind_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="did not write"):
        kerascnn.tune(tiny, "digits", space={"batch_size": [64]}, folds=2, max_trials=1,
                      epochs=1, out=tmp_path, verbose=0)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_study_typo_names_the_key_and_the_fix(tmp_path):
    study = tmp_path / "typo.toml"
    study.write_text('model = "lenet5"\nmax_trails = 3\n')
    with pytest.raises(ValueError, match=r"unknown key 'max_trails'. Did you mean 'max_trials'\?"):
        load_study(study)
    study.write_text('model = "lenet5"\nfolds = "five"\n')
    with pytest.raises(ValueError, match=r"folds must be int; got 'five'"):
        load_study(study)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "tuning").glob("*.toml")))
def test_shipped_studies_are_valid(name):
    study = load_study(REPO / "tuning" / name)
    hp = hyperparameters(study.get("space"), study["model"])
    assert len(hp.space) >= 3


def test_default_spaces_follow_the_family():
    lenet = hyperparameters(None, "lenet5")
    assert {"learning_rate", "optimizer", "batch_size", "dropout", "width_multiplier", "norm",
            "activation", "augment"} <= {p.name for p in lenet.space}
    assert "drop_path_rate" not in default_space("lenet5")


def test_every_registry_model_has_a_valid_default_space():
    recipe = kerascnn.training.get_recipe("quick")
    for name in kerascnn.list_models():
        space = hyperparameters(None, name)
        names = {p.name for p in space.space}
        assert {"learning_rate", "optimizer", "batch_size"} <= names, name
        check_space(space, name, recipe, "val_accuracy")  # every value its builder takes
