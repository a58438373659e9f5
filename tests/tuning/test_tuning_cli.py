"""`kerascnn tune`: a study file with flags overriding it, and its mistakes in one line."""

import json

import pytest

from kerascnn.cli import main


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_tune_a_study_with_overriding_flags(tmp_path, capsys):
    study = tmp_path / "small.toml"
    study.write_text('model = "lenet5"\ndata = "digits"\nfolds = 5\nmax_trials = 9\n'
                     '[space]\nlearning_rate = [0.003]\nbatch_size = [64]\n')
    out = tmp_path / "search"
    main(["tune", str(study), "--folds", "2", "--max-trials", "1", "--epochs", "1",
          "--train-size", "200", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "best hyperparameters" in printed and "test accuracy" in printed
    saved = json.loads((out / "results.json").read_text())["trials"]
    assert len(saved) == 1 and len(saved[0]["fold_scores"]) == 2  # the flags won
    assert saved[0]["hyperparameters"]["learning_rate"] == 0.003  # the study's space
    # --train-size: the search saw 200 training examples, its two folds partition them
    search = json.loads((out / "search.json").read_text())
    assert search["data"]["training_examples"] == 200 and search["data"]["train_size"] == 200
    folds = json.loads((out / "folds.json").read_text())["folds"]
    assert sorted(p for fold in folds for p in fold["held_out"]) == list(range(200))
    fold_run = json.loads((out / "trials/0/fold-0/run.json").read_text())
    assert fold_run["data"]["splits"]["train"]["size"] == 100


def test_tune_mistakes_are_one_line(tmp_path, capsys):
    study = tmp_path / "typo.toml"
    study.write_text('model = "lenet5"\ntunr = "random"\n')
    assert "unknown key 'tunr'. Did you mean 'tuner'?" in _fails(["tune", str(study)], capsys)
    err = _fails(["tune", "--tuner", "annealing", "--out", str(tmp_path / "s")], capsys)
    assert "kerascnn tune: error: Unknown tuner 'annealing'" in err
