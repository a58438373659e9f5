"""Training and evaluating on a folder streamed from its files, from the command line."""

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import kerascnn
from kerascnn.cli import main


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """scikit-learn's digits 0-2 as 16×16 grey PNGs in class sub-folders."""
    root = tmp_path_factory.mktemp("digit_folder") / "digits"
    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        if label < 3:
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            pixels = np.kron(image * 255 / 16, np.ones((2, 2))).round().astype(np.uint8)
            Image.fromarray(pixels).save(root / str(label) / f"{index:04d}.png")
    return root


def test_a_streamed_run_is_evaluated_from_its_files_like_one_in_memory(digit_folder, tmp_path,
                                                                       capsys):
    run = tmp_path / "run"
    main(["train", "--model", "lenet1", "--data", str(digit_folder), "--stream", "--epochs", "2",
          "--cache", str(tmp_path / "cache"), "--out", str(run)])
    source = json.loads((run / "run.json").read_text())["data"]["source"]
    assert source["stream"] is True and source["cache"] == str(tmp_path / "cache")
    trained = json.loads((run / "metrics.json").read_text())
    again = kerascnn.evaluate(str(run))  # reloads the folder streamed, as run.json says
    assert again.metrics["accuracy"] == trained["accuracy"] > 0.6
    in_memory = kerascnn.data.load(digit_folder, stream=False, seed=0)
    reference = kerascnn.evaluate(str(run / "model.keras"), in_memory)
    assert reference.metrics["accuracy"] == trained["accuracy"]
    np.testing.assert_array_equal(again.metrics["confusion_matrix"],
                                  reference.metrics["confusion_matrix"])
    streamed = kerascnn.extract_features(str(run), kerascnn.data.load(digit_folder, stream=True))
    for split, (features, labels) in kerascnn.extract_features(str(run), in_memory).items():
        np.testing.assert_allclose(streamed[split][0], features, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(streamed[split][1], labels)
    with pytest.raises(ValueError, match="stream=True tells how to read a data source"):
        kerascnn.train("lenet1", in_memory, stream=True, verbose=0)


@pytest.mark.slow  # the test budget: streamed training equal to in-memory stays in the default
# run (test_streaming), cross-validation in the tuning tests
def test_cross_validation_scores_a_streamed_folder_as_one_in_memory(digit_folder, tmp_path):
    scores = []
    for stream in (True, False):
        data = kerascnn.data.load(digit_folder, stream=stream, seed=0)
        result = kerascnn.tune("lenet1", data, space={"learning_rate": [1e-2]}, folds=2,
                               max_trials=1, epochs=1, out=tmp_path / str(stream), refit=False,
                               seed=1, verbose=0)
        scores.append(result.trials[0]["fold_scores"])
    assert scores[0] == scores[1] and len(scores[0]) == 2
