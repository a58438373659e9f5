"""`kerascnn finetune`: a run end to end, and bad input as one line with nothing written."""

import json

import pytest

from kerascnn.cli import main


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip()


def test_finetune_command_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "ft"
    main(["finetune", "lenet5_mnist", "--data", "digits", "--epochs", "1", "--bn", "train",
          "--lr-mult", "conv1=0,head=1", "--out", str(out)])
    printed = capsys.readouterr()
    assert f"run folder: {out}" in printed.out
    assert "lenet5/predictions" in printed.err and "replaced" in printed.err  # weight report
    manifest = json.loads((out / "finetune.json").read_text())
    assert manifest["bn"] == "train" and manifest["lr_mult"]["conv1"] == 0.0


@pytest.mark.parametrize("argv, message", [
    (["--freeze", "conv7"], "freeze='conv7' names no stage of this network"),
    (["--lr-mult", "conv9=0.1"], "lr_mult names no group 'conv9'"),
    (["--bn", "sometimes"], "invalid choice: 'sometimes'"),
])
def test_bad_options_fail_in_one_line_before_writing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    err = _fails(["finetune", "lenet5_mnist", "--data", "digits", "--out", str(out), *argv],
                 capsys)
    assert message in err.splitlines()[-1]  # argparse's own errors follow its usage lines
    assert not out.exists()


def test_missing_source_is_one_line(tmp_path, capsys):
    err = _fails(["finetune", str(tmp_path / "gone.keras"), "--data", "digits",
                  "--out", str(tmp_path / "out")], capsys)
    assert err.startswith("kerascnn finetune: error:") and "does not exist" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_readme_example_renormalises_refuses_a_changed_rerun_and_starts_fresh(tmp_path, capsys):
    # Issue 24, items 1 and 13, through the command line: README's example kept MNIST's
    # statistics on digits (62.1%), and a rerun with other flags reused the old training.
    out = str(tmp_path / "ft")
    argv = ["finetune", "resnet18_mnist", "--data", "digits", "--freeze", "2",
            "--head-epochs", "1", "--epochs", "1", "--out", out]
    main(argv)
    printed = capsys.readouterr()
    assert "phase 1: head" in printed.out + printed.err
    manifest = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert manifest["test_accuracy"] > 0.8
    assert "re-adapted" in json.dumps(manifest["input_adaptation"])
    before = (tmp_path / "ft" / "finetune.json").read_text()
    err = _fails([*argv, "--renormalize", "no"], capsys)
    assert "differs in" in err and "--fresh" in err
    assert (tmp_path / "ft" / "finetune.json").read_text() == before
    main([*argv, "--renormalize", "no", "--fresh"])
    capsys.readouterr()
    manifest = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert "re-adapted" not in json.dumps(manifest["input_adaptation"])
