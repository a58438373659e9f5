"""altflip: airbench's alternating flip. Each training image is mirrored in exactly every other
epoch (a seeded coin decides epoch 0), in a resumed stream as in a whole one; mistakes are
refused by name."""

import numpy as np
import pytest

from kerascnn.data import augmentation, load, parse_spec


def epochs_of(data, epochs, initial_epoch=0, seed=0):
    """{epoch: the images of that epoch in position order} from an unshuffled epoch stream."""
    stream = data.pipeline("train", 64, augment="altflip", shuffle=False, seed=seed,
                           epochs=epochs, initial_epoch=initial_epoch)
    batches = [x.numpy() for x, _ in stream]
    per_epoch = len(batches) // (epochs - initial_epoch)
    return {initial_epoch + e: np.concatenate(batches[e * per_epoch:(e + 1) * per_epoch])
            for e in range(epochs - initial_epoch)}


def test_each_image_is_mirrored_in_every_other_epoch_from_a_seeded_coin():
    data = load("digits", seed=0)
    original = data.arrays("train")[0].astype(np.float32)
    mirrored = original[:, :, ::-1]
    asymmetric = np.any(original != mirrored, axis=(1, 2, 3))
    seen = epochs_of(data, 3)
    flipped = {e: np.all(x == mirrored, axis=(1, 2, 3)) & asymmetric for e, x in seen.items()}
    kept = {e: np.all(x == original, axis=(1, 2, 3)) for e, x in seen.items()}
    for e in seen:  # every image is either itself or its mirror
        assert np.all(flipped[e] | kept[e])
    assert np.array_equal(flipped[1], ~flipped[0] & asymmetric)  # the other side next epoch
    assert np.array_equal(seen[2], seen[0])  # and back
    assert 0.4 < flipped[0][asymmetric].mean() < 0.6  # a fair coin in epoch 0
    resumed = epochs_of(data, 3, initial_epoch=1)
    assert np.array_equal(resumed[1], seen[1]) and np.array_equal(resumed[2], seen[2])
    other_seed = epochs_of(data, 1, seed=1)[0]
    assert not np.array_equal(other_seed, seen[0])


def test_altflip_mistakes_are_refused_by_name():
    assert parse_spec("altflip,shift=2") == {"altflip": "horizontal", "shift": 2}
    with pytest.raises(ValueError, match="Choose one of flip and altflip"):
        parse_spec("flip,altflip")
    with pytest.raises(ValueError, match=r"altflip='vertical': alternating flips are horizontal"):
        parse_spec("altflip=vertical")
    with pytest.raises(ValueError, match="altflip needs each image's position and epoch"):
        augmentation("altflip").map(None)
