"""Whether a source's input normalisation fits new data, and the decision to re-adapt it.

A network normalises its inputs with statistics of its own training data (kerascnn's
Preprocessing layer: a mean and a standard deviation, or a value range). New data on another
scale (scikit-learn's digits span 0-16, MNIST 0-255) reach the first convolution far from the
values it learnt on: the features start wrong and a short fine-tune cannot recover (the
README's example scored 62% so). The check compares the scale the source expects with the
training split's; a factor of `MISMATCH_FACTOR` or more apart is a mismatch.
"""

import math

import numpy as np

from kerascnn.data.preprocessing import split_network
from kerascnn.transfer.source import TransferError

SETTINGS = ("auto", True, False)
# Two scales this far apart (either way) are two value ranges, not two data sets' spread:
# MNIST (RMS 85) against digits (RMS 8) is 11; data sets on one scale differ by under 2.
MISMATCH_FACTOR = 4.0
SAMPLE = 2048  # training examples the data's scale is measured on


def check_setting(renormalize):
    """Raises TransferError unless `renormalize` is "auto", True or False."""
    if not any(renormalize is s or (isinstance(renormalize, str) and renormalize == s)
               for s in SETTINGS):
        raise TransferError(f"renormalize must be 'auto', True or False; got {renormalize!r}.")


def plan(model, data, renormalize):
    """Returns the record of the input normalisation: whether it is re-adapted, and why.

    Args:
        model: the source (its Preprocessing layer, if any, holds the statistics).
        data: the new `Data`; its training split is measured.
        renormalize: "auto" (re-adapt when the scales disagree), True or False.

    Returns:
        A JSON-ready dict: "renormalize" (the setting), "renormalized" (the decision),
        "source" and "data" (the scales compared), "factor" (how far apart, >= 1) and
        "reason" (one sentence).
    """
    check_setting(renormalize)
    preprocessing, _ = split_network(model)
    record = {"renormalize": renormalize}
    if preprocessing is None or preprocessing.mode is None:
        what = ("the source has no Preprocessing layer: kerascnn.train adapts a new one on "
                "the training split" if preprocessing is None
                else "the source's Preprocessing layer does not normalise")
        return {**record, "renormalized": False, "factor": None, "reason": what}
    source = _source_scale(preprocessing)
    found = _data_scale(preprocessing.mode, data)
    factor = _factor(source["scale"], found["scale"])
    mismatch = factor is not None and factor >= MISMATCH_FACTOR
    renormalized = mismatch if renormalize == "auto" else bool(renormalize)
    apart = f"a factor {factor:.1f} apart" if factor is not None else "not comparable"
    scales = (f"the data's values ({_describe(found)}) and those the source was normalised "
              f"for ({_describe(source)}) are {apart}")
    if renormalize == "auto":
        reason = (f"{scales}: re-adapted on the new training split (renormalize=False keeps "
                  "the source's statistics)" if mismatch
                  else f"{scales}: the source's statistics are kept")
    elif renormalized:
        reason = f"re-adapted on the new training split (renormalize=True); {scales}"
    else:
        reason = (f"the source's statistics are kept (renormalize=False) although {scales}: "
                  "expect a poor start" if mismatch
                  else f"the source's statistics are kept (renormalize=False); {scales}")
    return {**record, "renormalized": renormalized, "source": source, "data": found,
            "factor": None if factor is None else round(factor, 3), "reason": reason}


def _source_scale(preprocessing):
    mean = float(np.mean(np.asarray(preprocessing.mean)))
    spread = float(np.mean(np.asarray(preprocessing.std)))
    mode = preprocessing.mode
    if mode == "scale":  # mean = low, std = high - low
        return {"mode": mode, "low": mean, "high": mean + spread, "scale": spread}
    if mode == "standardize":
        return {"mode": mode, "mean": mean, "std": spread, "scale": math.hypot(mean, spread)}
    return {"mode": mode, "mean": mean, "scale": abs(mean)}  # channel_mean, mean_image


def _data_scale(mode, data):
    x = _sample(data).astype(np.float64)
    mean, spread = float(x.mean()), float(x.std())
    if mode == "scale":
        low, high = (float(v) for v in data.value_range)
        return {"low": low, "high": high, "scale": high - low}
    if mode == "standardize":
        return {"mean": mean, "std": spread, "scale": math.hypot(mean, spread)}
    return {"mean": mean, "scale": abs(mean)}


def _sample(data):
    """Up to SAMPLE training examples as a NumPy array (a streamed split: its first batch)."""
    x = data.x_train
    if hasattr(x, "as_dataset"):
        batch = next(iter(x.as_dataset(SAMPLE)))
        return np.asarray(batch[0] if isinstance(batch, tuple) else batch)
    return np.asarray(x[:SAMPLE])


def _factor(a, b):
    """How many times apart two scales are (>= 1), or None when one of them is 0."""
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        return None
    return max(a / b, b / a)


def _describe(scale):
    if "low" in scale:
        return f"range {scale['low']:.3g} to {scale['high']:.3g}"
    if "std" in scale:
        return f"mean {scale['mean']:.3g}, std {scale['std']:.3g}"
    return f"mean {scale['mean']:.3g}"


def readapt(preprocessing, data):
    """Re-adapts a Preprocessing layer's statistics on the training split of `data`.

    A "scale" layer with a fixed value range adapts to nothing: it takes the data's declared
    range (`data.value_range`) instead.
    """
    if preprocessing.mode == "scale" and preprocessing.value_range is not None:
        low, high = (float(v) for v in data.value_range)
        preprocessing.mean.assign(low)
        preprocessing.std.assign(high - low)
        preprocessing.is_adapted = True
        return
    preprocessing.adapt(data.x_train)
