"""The `kerascnn` command: each subcommand end to end, and user mistakes as clean errors."""

import json
import subprocess
import sys

import pytest

import kerascnn
from kerascnn.cli import main


def test_list_prints_every_model_with_its_paper(capsys):
    main(["list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == kerascnn.list_models()
    main(["list", "vgg*"])
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_inspect_json_matches_the_model(capsys, tmp_path):
    plot = tmp_path / "lenet5.png"
    main(["inspect", "lenet5", "--input-shape", "28,28,1", "--num-classes", "10", "--format", "json",
          "--plot", str(plot)])
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 61_706
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipes_lists_the_named_recipes(capsys):
    main(["recipes", "-v"])
    recipes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in recipes} == set(kerascnn.training.RECIPES)


def test_data_preview_writes_a_png(tmp_path, capsys):
    out = tmp_path / "preview.png"
    main(["data", "preview", "--data", "digits", "--augment", "rotate=10,crop=0.9", "--out", str(out), "-n", "8"])
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["inspect", "resnet17"], "Unknown model 'resnet17'"),
        (["train", "--model", "lenet5", "--data", "no_such_set", "--epochs", "1"], "no_such_set"),
        (["train", "--recipe", "fast"], "Unknown recipe 'fast'"),
        (["train", "--epochs", "0"], "epochs must be a positive number"),
    ],
)
def test_mistakes_exit_2_with_a_message_and_no_traceback(argv, message):
    result = subprocess.run([sys.executable, "-m", "kerascnn", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
