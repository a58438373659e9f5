"""A run's fingerprint: what must match for a run folder to be resumed, and what differs."""

import hashlib
import json
import os

import keras

from kerascnn.files import sha256_file
from kerascnn.training import precision

# Schedules whose rates do not depend on the run's length: a longer run may resume a shorter one.
LENGTH_FREE_SCHEDULES = ("constant", "plateau", "inverse_time")
# Recipe fields added after runs were first fingerprinted, at the values that train as those
# runs did: left out there, so that an older run folder still resumes.
LATER_FIELDS = {"lookahead": 0, "triangle": (0.2, 0.2, 0.0)}


def fingerprint(model, options, data, recipe, seed, run_precision):
    """What must match for a run folder to be resumed."""
    described = {
        "model": describe_model(model),
        "options": options,
        "data": {"name": data.name, "sha256": data.sha256, "num_classes": data.num_classes,
                 "input_shape": list(data.input_shape), "train_examples": data.size("train")},
        # tta changes only the test metrics: a run resumes (and is tested again) under another.
        "recipe": {k: v for k, v in recipe.to_dict().items() if k != "tta"
                   and (k != "epochs" or recipe.schedule not in LENGTH_FREE_SCHEDULES)
                   and (k not in LATER_FIELDS or v != LATER_FIELDS[k])},
        "precision": run_precision.name,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
    return {**described, "digest": digest,
            "summary": f"{described['model']} on {data.name}, recipe {recipe.name}, seed {seed}"}


def differences(saved, new, limit=4):
    """What differs between two fingerprints, as "recipe.learning_rate 0.01 -> 0.1, ..."."""
    def leaves(value, prefix=""):
        if isinstance(value, dict):
            return {k: v for key, item in value.items()
                    for k, v in leaves(item, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): value}

    old_leaves, new_leaves = (leaves(json.loads(json.dumps(f, default=str))) for f in (saved, new))
    changed = [f"{key} {old_leaves.get(key, '(unset)')} -> {new_leaves.get(key, '(unset)')}"
               for key in sorted(set(old_leaves) | set(new_leaves))
               if key not in ("digest", "summary") and old_leaves.get(key) != new_leaves.get(key)]
    if not changed:  # same settings, another digest: a fingerprint of an older kerascnn
        return "how kerascnn describes it (an older version wrote it)"
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(changed[:limit]) + more


def resumed_precision(chosen, recipe, state):
    """The precision of a resumed run: under "auto", the one it started with."""
    started = state["fingerprint"].get("precision") if state else None
    if recipe.precision != "auto" or started in (None, chosen.name):
        return chosen
    return precision.Precision(started, precision.POLICIES[started],
                               f"the run being resumed started in {started}")


def describe_model(model):
    """A registry name as is; a keras.Model by name and size; a .keras file by path and hash."""
    if isinstance(model, keras.Model):
        return f"{model.name} ({model.count_params()} parameters)"
    if str(model).endswith(".keras"):
        return f"{os.path.abspath(model)} (sha256 {sha256_file(model)[:16]})"
    return model
