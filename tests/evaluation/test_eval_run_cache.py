"""Evaluating a run folder never writes to a cache path read from its run.json (issue 24)."""

import json

import numpy as np
from PIL import Image

import kerascnn


def test_a_recorded_cache_path_is_never_written(tmp_path):
    rng = np.random.default_rng(0)
    for label in range(2):
        (tmp_path / "images" / f"class{label}").mkdir(parents=True)
        for i in range(10):
            pixels = (rng.integers(0, 80, (8, 8)) + 150 * label).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / f"class{label}" / f"{i}.png")
    run = tmp_path / "run"
    kerascnn.train("lenet1", str(tmp_path / "images"), epochs=1, seed=1, out=run, verbose=0,
                   stream=True, cache=str(tmp_path / "cache"))
    record = json.loads((run / "run.json").read_text())
    assert record["data"]["source"]["cache"] == str(tmp_path / "cache")
    expected = kerascnn.evaluate(str(run)).metrics["confusion_matrix"]

    # A run.json edited to point the cache at someone else's files, or at a new folder.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    np.save(theirs / "train.npy", np.arange(5))
    for cache in (theirs, tmp_path / "new"):
        record["data"]["source"]["cache"] = str(cache)
        (run / "run.json").write_text(json.dumps(record))
        report = kerascnn.evaluate(str(run))
        assert report.metrics["confusion_matrix"] == expected
    assert sorted(p.name for p in theirs.iterdir()) == ["train.npy"]
    np.testing.assert_array_equal(np.load(theirs / "train.npy"), np.arange(5))
    assert not (tmp_path / "new").exists()
