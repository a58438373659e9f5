"""A recipe's lookahead: airbench94's weight averaging every k steps, checked against a NumPy
transcription of airbench's loop, resumed bitwise, and refused where it cannot apply."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.training import L2SGD, Recipe, get_recipe
from training_helpers import KillAfterFirstEpoch, Killed


def airbench_lookahead(w, gradients, lr, momentum, k, total):
    """airbench 0.1.8's loop in NumPy: a Nesterov step (Keras' form), then every k steps
    `ema.lerp_(w, 1 - decay)` and `w = ema`, decay 0.95^k (t / total)^3; at the last step the
    weights become the average (decay 1 when it is not a multiple of k)."""
    velocity, slow = np.zeros_like(w), w.copy()
    for step, gradient in enumerate(gradients, start=1):
        velocity = momentum * velocity - lr * gradient
        w = w + momentum * velocity - lr * gradient
        if step % k == 0:
            decay = 0.95**k * (step / total) ** 3
            slow = slow + (1 - decay) * (w - slow)
            w = slow.copy()
        if step == total:
            w = slow.copy()
    return w


def test_lookahead_follows_airbench_and_its_averages_are_optimizer_state():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=6).astype("float32")
    gradients = rng.normal(size=(12, 6)).astype("float32")
    w = keras.Variable(w0, name="w")
    optimizer = L2SGD(lookahead=5, total_steps=12, learning_rate=0.1, momentum=0.85,
                      nesterov=True)
    moved = []
    for gradient in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(gradient)], [w])
        moved.append(keras.ops.convert_to_numpy(w).copy())
    for steps in (4, 5, 9, 10, 12):  # before and at each averaging, and the last step
        np.testing.assert_allclose(
            moved[steps - 1],
            airbench_lookahead(w0, gradients[:steps], 0.1, 0.85, 5, 12) if steps != 12 else
            airbench_lookahead(w0, gradients, 0.1, 0.85, 5, 12), rtol=1e-5, atol=1e-6)
    assert not np.allclose(moved[9], moved[8])  # the averaging did something
    assert any("lookahead" in v.name for v in optimizer.variables)  # checkpoints keep it
    restored = L2SGD.from_config(optimizer.get_config())
    assert (restored.lookahead, restored.total_steps) == (5, 12)


def test_a_lookahead_run_killed_and_resumed_matches_the_uninterrupted_one(tmp_path):
    options = dict(optimizer="sgd", learning_rate=0.05, momentum=0.85, nesterov=True,
                   lookahead=5, schedule="triangle", triangle=(0.2, 0.23, 0.07), epochs=2,
                   batch_size=128, seed=1)
    whole = kerascnn.train("lenet1", "digits", verbose=0, **options)
    assert isinstance(whole.model.optimizer, L2SGD) and whole.model.optimizer.lookahead == 5
    with pytest.raises(Killed):
        kerascnn.train("lenet1", "digits", out=tmp_path, verbose=0,
                       callbacks=[KillAfterFirstEpoch()], **options)
    resumed = kerascnn.train("lenet1", "digits", out=tmp_path, verbose=0, **options)
    assert resumed.history == whole.history
    assert all(np.array_equal(a, b)
               for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()))


def test_lookahead_and_triangle_mistakes_are_refused_by_name():
    with pytest.raises(ValueError, match=r"lookahead=5 is implemented for SGD.*optimizer='adam'"):
        Recipe(optimizer="adam", lookahead=5)
    with pytest.raises(ValueError, match=r"recipe lookahead must be an integer >= 0; got -1"):
        Recipe(optimizer="sgd", lookahead=-1)
    with pytest.raises(ValueError, match=r"recipe triangle must be \(start, peak, end\)"):
        Recipe(triangle=(0.2, 0.5))
    with pytest.raises(ValueError, match=r"recipe triangle peak must be a finite number in "
                                         r"\(0, 1\); got 1.5"):
        Recipe(triangle=(0.2, 1.5, 0.0))
    assert get_recipe("cifar_fast").triangle == (0.2, 0.23, 0.07)


def test_run_folders_fingerprinted_before_lookahead_and_triangle_still_resume():
    """The two fields at their old behaviour stay out of the fingerprint: a run folder written
    before they existed has the same digest."""
    from kerascnn.data import load
    from kerascnn.training import fingerprints, precision

    data, chosen = load("digits"), precision.choose_precision("float32")
    plain = fingerprints.fingerprint("lenet1", {}, data, get_recipe("quick"), 0, chosen)
    assert not {"lookahead", "triangle"} & set(plain["recipe"])
    averaged = fingerprints.fingerprint(
        "lenet1", {}, data, get_recipe("quick", optimizer="sgd", lookahead=5), 0, chosen)
    assert averaged["recipe"]["lookahead"] == 5 and averaged["digest"] != plain["digest"]
