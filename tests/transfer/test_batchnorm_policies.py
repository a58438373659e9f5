"""BatchNorm under each fine-tuning policy: which of its variables move in one real epoch."""

import numpy as np
import pytest

import kerascnn
from transfer_helpers import small_lenet
from kerascnn.transfer import surgery


def _values(model):
    """{layer/variable: value}, layers named without the wrapper's prefix."""
    return {f"{name.split('/')[-1]}/{w.name}": np.asarray(w).copy()
            for name, layer in surgery.flat_layers(model) for w in layer.weights}


@pytest.mark.parametrize("bn, moves", [
    ("frozen", set()),
    pytest.param("train_affine", {"gamma", "beta"}, marks=pytest.mark.slow),
    pytest.param("train", {"gamma", "beta", "moving_mean", "moving_variance"},
                 marks=pytest.mark.slow),
])
def test_which_batchnorm_variables_move(digits, bn, moves):
    source = small_lenet(norm="batch")
    before = _values(source)
    result = kerascnn.finetune(source, digits, freeze="none", head_epochs=0, epochs=1, bn=bn,
                               verbose=0)
    after = _values(result.model)
    for norm in ("conv1_norm", "conv2_norm"):
        moved = {name for name in ("gamma", "beta", "moving_mean", "moving_variance")
                 if not np.array_equal(before[f"{norm}/{name}"], after[f"{norm}/{name}"])}
        assert moved == moves, norm
    # The convolutions learn under every policy, and the file holds Keras' own BatchNorm.
    assert not np.array_equal(before["conv2/kernel"], after["conv2/kernel"])
    assert type(result.model.get_layer("lenet5").get_layer("conv1_norm")).__name__ == \
        "BatchNormalization"
