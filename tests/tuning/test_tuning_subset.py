"""`tune(train_size=N)` / `kerascnn tune --train-size N`: a search on N training examples drawn
in proportion to the classes (`Data.subset`); bad sizes are refused in one line before anything
is written. A search on a subset through the CLI: test_tuning_cli."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedShuffleSplit

import kerascnn
from kerascnn.cli import main
from kerascnn.data import load


def test_a_subset_is_scikit_learns_stratified_draw_and_keeps_the_test_split():
    data = load("digits", seed=0)
    x, y = data.arrays("train")
    small = data.subset(300, seed=3)
    expected, _ = next(StratifiedShuffleSplit(1, train_size=300, test_size=None, random_state=3)
                       .split(np.zeros(len(y)), y))
    xs, ys = small.arrays("train")
    np.testing.assert_array_equal(xs, x[np.sort(expected)])
    np.testing.assert_array_equal(ys, y[np.sort(expected)])
    # every class in proportion: 300 of 1,438 training digits is about 30 of each
    assert np.abs(np.bincount(ys, minlength=10) - 300 * np.bincount(y) / len(y)).max() <= 1
    assert small.size("validation") == 0
    np.testing.assert_array_equal(small.arrays("test")[1], data.arrays("test")[1])
    assert small.split_digests()["train"] != data.subset(300, seed=4).split_digests()["train"]


@pytest.mark.parametrize("size", [5, 1438, 0, 2.5, True])
def test_a_size_outside_one_per_class_to_all_but_one_is_refused(size):
    data = load("digits", seed=0)
    with pytest.raises(ValueError, match=rf"train_size={size!r} must be a whole number of "
                                         r"examples from 10 \(one per class\) to 1437"):
        data.subset(size)


def test_a_bad_train_size_fails_in_one_line_before_writing(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('model = "lenet5"\ndata = "digits"\ntrain_size = 1\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", str(study), "--out", str(tmp_path / "search")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "train_size must be a number of training examples >= 2" in err
    with pytest.raises(ValueError, match="train_size and groups cannot be combined"):
        kerascnn.tune("lenet5", "digits", train_size=100, groups=np.zeros(1438))
    assert not (tmp_path / "search").exists()
