"""finetune's defaults, as apps/transfer_table.py --task mnist chose them: the head, then
everything (freeze="none"); on small data each phase trains at least MIN_PHASE_STEPS steps."""

import json
import math

from kerascnn.data import load
from kerascnn.transfer import finetune
from kerascnn.transfer.finetune import MAX_PHASE_EPOCHS, MIN_PHASE_STEPS


def test_defaults_unfreeze_everything_after_the_head_and_train_enough_steps(digits, tmp_path):
    x, y = digits.arrays("train")
    picks = [i for c in range(10) for i in (y == c).nonzero()[0][:10]]  # 10 labels per class
    small = load(((x[picks], y[picks]), (digits.x_test[:200], digits.y_test[:200])),
                 validation_split=None)
    result = finetune("lenet5_mnist", small, batch_size=10, out=tmp_path / "ft", verbose=0)
    manifest = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    head, everything = manifest["phases"]
    assert head["frozen_layers"] == ["conv1", "conv2"] and everything["frozen_layers"] == []
    steps = math.ceil(len(picks) / result.recipe.batch_size)  # 100 images, batch 10: 10
    epochs = min(MAX_PHASE_EPOCHS, math.ceil(MIN_PHASE_STEPS / steps))
    assert result.recipe.epochs == epochs == 20  # the recipe's 15 give 150 steps
    assert len(result.history["loss"]) == 2 * epochs  # both phases, 200 steps each


def test_given_epochs_are_kept_on_small_data(digits):
    x, y = digits.arrays("train")
    small = load(((x[:100], y[:100]), (digits.x_test[:100], digits.y_test[:100])),
                 validation_split=None)
    result = finetune("lenet5_mnist", small, epochs=2, head_epochs=1, verbose=0)
    assert result.recipe.epochs == 2 and len(result.history["loss"]) == 3
