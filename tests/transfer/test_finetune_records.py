"""A fine-tune's records say what happened and it does what they say (issue 24): reruns with
other settings, the input normalisation, safe mode, heads, nested BatchNorm, phase output."""

import json
import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.data.preprocessing import split_network
from kerascnn.evaluation import plots
from kerascnn.run_folder import RunFolderError
from kerascnn.transfer import TransferError, normalisation, surgery


def _run(out, digits, **settings):
    return kerascnn.finetune("lenet5_mnist", digits, **{
        "freeze": "base", "epochs": 1, "out": out, "verbose": 0, **settings})


def _stamps(out):
    """{file: modification time} of a run folder's files (not its lock, which every run
    that enters takes)."""
    return {p: p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.name != ".kerascnn-run.lock"}


def _manifest(out):
    return json.loads((out / "finetune.json").read_text())


@pytest.mark.parametrize("changed, named", [
    ({"renormalize": False}, "renormalized True -> False"),
    # The other settings a phase depends on, each a few more fine-tunes: with -m slow.
    pytest.param({"lr_mult": "0.5..1"}, "lr_mult.conv1 1.0 -> 0.5", marks=pytest.mark.slow),
    pytest.param({"bn": "train"}, "bn frozen -> train", marks=pytest.mark.slow),
    pytest.param({"learning_rate": 0.01}, "learning_rate", marks=pytest.mark.slow),
])
def test_a_rerun_with_other_settings_is_refused_before_training(changed, named, digits,
                                                               tmp_path):
    out = tmp_path / "ft"
    _run(out, digits)
    before = _stamps(out)
    with pytest.raises(RunFolderError) as error:
        _run(out, digits, **changed)
    message = str(error.value)
    assert "\n" not in message and "holds another fine-tune" in message
    assert named in message and "fresh=True" in message
    # Nothing trained, nothing rewritten: the records still say what the first run did.
    assert _stamps(out) == before


@pytest.mark.slow
def test_fresh_starts_over_and_the_same_settings_resume(digits, tmp_path):
    out = tmp_path / "ft"
    first = _run(out, digits, renormalize=True)
    again = _run(out, digits, renormalize=True)  # the same settings: nothing to train
    assert again.seconds == 0.0
    assert again.history == first.history
    assert again.metrics["accuracy"] == pytest.approx(first.metrics["accuracy"])
    assert _manifest(out)["phases"][0]["seconds"] > 0  # the time the phase trained for
    (out / "notes.txt").write_text("mine")  # not kerascnn's: fresh must leave it
    with pytest.raises(RunFolderError, match="did not write"):
        _run(out, digits, renormalize=False, fresh=True)
    (out / "notes.txt").unlink()
    fresh = _run(out, digits, renormalize=False, fresh=True)
    manifest = _manifest(out)
    assert manifest["fingerprint"]["renormalized"] is False
    assert manifest["input_adaptation"]["normalisation"] == "the source's statistics"
    assert manifest["test_accuracy"] == pytest.approx(fresh.metrics["accuracy"])


@pytest.mark.slow
def test_a_folder_without_a_recorded_fingerprint_is_refused(digits, tmp_path):
    out = tmp_path / "ft"
    _run(out, digits)
    manifest = _manifest(out)
    del manifest["fingerprint"]  # as an older kerascnn wrote it
    (out / "finetune.json").write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match="settings were not recorded.*fresh=True"):
        _run(out, digits)


@pytest.mark.slow
def test_auto_renormalisation_of_digits_under_mnist_statistics(digits, tmp_path, capsys):
    out = tmp_path / "ft"
    result = kerascnn.finetune("lenet5_mnist", digits, epochs=1, out=out)
    err = capsys.readouterr().err
    assert "normalisation: the data's values (mean 4.89" in err and "re-adapted" in err
    adaptation = _manifest(out)["input_adaptation"]
    assert adaptation["normalisation"] == "re-adapted on the new training split"
    check = adaptation["normalisation_check"]
    assert check["renormalize"] == "auto" and check["renormalized"] is True
    assert check["source"]["mean"] == pytest.approx(33.3, abs=0.5)  # MNIST, 0-255
    assert check["factor"] > normalisation.MISMATCH_FACTOR
    preprocessing, _ = split_network(result.model)
    # The digits' statistics, as the layer sees them (resized to 28×28 like MNIST).
    x = np.asarray(preprocessing.transform(digits.x_train), dtype=np.float64)
    np.testing.assert_allclose(np.asarray(preprocessing.mean), [x.mean()], rtol=1e-3)
    np.testing.assert_allclose(np.asarray(preprocessing.std), [x.std()], rtol=1e-3)


def test_auto_keeps_statistics_that_fit_the_data(digits):
    source = kerascnn.train("lenet1", digits, epochs=1, seed=0, verbose=0).model
    record = normalisation.plan(source, digits, "auto")
    assert record["renormalized"] is False and record["factor"] < 1.5
    assert normalisation.plan(source, digits, True)["renormalized"] is True
    with pytest.raises(TransferError, match="renormalize must be 'auto', True or False"):
        normalisation.plan(source, digits, "yes")


def _lambda_model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="fc")(x))


@pytest.mark.slow
def test_no_safe_mode_holds_for_every_rebuild_and_resume(digits, tmp_path):
    _lambda_model().save(tmp_path / "lambda.keras")
    out = tmp_path / "ft"
    settings = dict(freeze="none", head_epochs=1, epochs=1, out=out, verbose=0,
                    safe_mode=False)
    result = kerascnn.finetune(tmp_path / "lambda.keras", digits, **settings)
    assert result.metrics["accuracy"] > 0.1
    again = kerascnn.finetune(tmp_path / "lambda.keras", digits, **settings)  # resumes
    assert again.seconds == 0.0
    with pytest.raises(TransferError, match="Lambda layer"):  # and safe mode still refuses
        kerascnn.finetune(tmp_path / "lambda.keras", digits, **{**settings, "safe_mode": True})


def test_a_regressor_finetuned_to_classes_gets_a_softmax_head(digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    regressor = keras.Model(inputs, keras.layers.Dense(1, name="value")(x))
    result = kerascnn.finetune(regressor, digits, epochs=1, verbose=0)
    _, backbone = split_network(result.model)
    assert backbone.get_layer("value").get_config()["activation"] == "softmax"
    probabilities = result.model.predict(digits.x_test[:4], verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("lr_mult, shown", [
    ({"head": math.inf}, "inf"), ([1.0, math.nan, 1.0], "nan"), ("1..inf", "1..inf"),
    ("conv1=nan", "nan"),
])
def test_infinite_or_nan_multipliers_are_refused_up_front(lr_mult, shown, digits, tmp_path):
    with pytest.raises(TransferError, match=f"finite.*{shown}|{shown}.*finite"):
        _run(tmp_path / "ft", digits, lr_mult=lr_mult)
    assert not (tmp_path / "ft").exists()


def test_an_unbuilt_sequential_source_says_to_build_it(digits):
    unbuilt = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(TransferError, match="is not built.*keras.Input"):
        kerascnn.finetune(unbuilt, digits, verbose=0)


def test_frozen_batchnorm_holds_in_a_nested_base(digits):
    # Keras' transfer-learning guide: a base model inside a Sequential.
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    base = keras.Model(inputs, keras.layers.ReLU()(x), name="base")
    model = keras.Sequential([keras.Input((8, 8, 1)), base,
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
    norm = base.get_layer("norm")
    mean, variance = (np.linspace(1, 2, 8, dtype="float32"),
                      np.linspace(2, 3, 8, dtype="float32"))
    norm.moving_mean.assign(mean)
    norm.moving_variance.assign(variance)
    result = kerascnn.finetune(model, digits, freeze="none", head_epochs=0, epochs=1,
                               bn="frozen", verbose=0)
    trained = next(layer for name, layer in surgery.flat_layers(result.model)
                   if name.endswith("base/norm"))
    np.testing.assert_array_equal(np.asarray(trained.moving_mean), mean)
    np.testing.assert_array_equal(np.asarray(trained.moving_variance), variance)
    trained_conv = next(layer for name, layer in surgery.flat_layers(result.model)
                        if name.endswith("base/conv"))
    assert not np.array_equal(np.asarray(trained_conv.kernel), np.asarray(base.get_layer(
        "conv").kernel))  # the base did learn


@pytest.mark.slow
def test_phases_are_named_and_the_report_spans_all_of_them(digits, tmp_path, capsys,
                                                           monkeypatch):
    drawn = []
    draw = plots.learning_curves_png
    monkeypatch.setattr(plots, "learning_curves_png",
                        lambda history, *args: drawn.append(history) or draw(history, *args))
    out = tmp_path / "ft"
    result = kerascnn.finetune("lenet5_mnist", digits, freeze=1, head_epochs=1, epochs=2,
                               out=out, verbose=2)
    printed = capsys.readouterr().out
    first = printed.index("phase 1: head, base frozen (1 epoch, learning rate")
    second = printed.index("phase 2: unfreeze conv2 + head (2 epochs, learning rate")
    assert "val_accuracy" in printed[first:second]  # phase 1's epoch (Keras heads none)
    assert second < printed.index("Epoch 1/2")
    # The top-level report's learning curves: both phases' 3 epochs (the last phase's
    # report drew its own 2).
    assert [len(history["loss"]) for history in drawn] == [1, 2, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert _manifest(out)["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert json.loads((out / "run.json").read_text())["test_accuracy"] == pytest.approx(
        metrics["accuracy"])
    assert (out / "learning_curves.png").is_file()
