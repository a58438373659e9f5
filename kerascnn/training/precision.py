"""Numeric precision of training: mixed bfloat16 on CPUs built for it, mixed float16 on GPUs.

Mixed precision keeps float32 variables, losses and metrics and computes layers in a 16-bit
type (Micikevicius et al., 2018). On GPUs that type is float16; on x86 CPUs with AVX-512 BF16
or AMX units (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later) oneDNN runs
bfloat16 convolutions and matrix products at up to twice the float32 rate. On other CPUs
bfloat16 is emulated and slower than float32, so "auto" keeps float32 there.

`with_policy` applies a precision to any model, built by name or by the caller: it rebuilds the
model from its config with every layer computing in the policy, except the output layers (the
softmax), which stay float32 as Keras' mixed-precision guide asks, and FLOAT32_LAYERS.
Keras' BatchNormalization already computes its statistics in float32 under mixed policies.
"""

import contextlib
import dataclasses
import os

import keras

from kerascnn.errors import InputError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
FAST_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# "1" / "0" forces the answer of cpu_bfloat16_support() (tests, or a CPU it misjudges).
CPU_BFLOAT16_ENV = "KERASCNN_CPU_BFLOAT16"
# Layers that stay float32 under a mixed policy (registered names): the input normalisation;
# LRN, whose TensorFlow kernel takes float32 only (tf.nn.local_response_normalization); and
# the patch whitening, whose filters multiply the faintest patch directions up to ~40 times:
# in bfloat16 (8 bits) those channels of CIFAR-10 came out 15% wrong (RMS), in float32 exact,
# at a negligible cost (24 filters of 2x2x3).
FLOAT32_LAYERS = ("kerascnn>Preprocessing", "kerascnn>LocalResponseNormalization",
                  "kerascnn>PatchWhitening")
# Layers that oneDNN runs slower in bfloat16 than in float32 on a CPU (a stack of depthwise
# convolutions: 0.58x; plain convolutions: 3.55x), so networks built on them can train
# slower: `bench_precision.py steps` measured MobileNet 0.84x, EfficientNet-B0 0.61x,
# ConvNeXt-Tiny 0.95x, and Xception, whose wide 1x1 convolutions dominate, 1.24x. "auto"
# keeps a network that has any of them in float32, so that it never slows one down;
# precision="bfloat16" still forces it (Xception).
SLOW_BFLOAT16_LAYERS = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class Precision:
    """The precision a run uses, and why (recorded in run.json).

    Attributes:
        name: "float32", "bfloat16" or "float16".
        policy: the Keras dtype policy ("float32", "mixed_bfloat16", "mixed_float16").
        reason: one sentence saying why this precision was chosen.
    """

    name: str
    policy: str
    reason: str

    def to_dict(self):
        return dataclasses.asdict(self)


def cpu_bfloat16_support(cpuinfo="/proc/cpuinfo"):
    """Returns (fast, reason): whether this CPU has bfloat16 units, and the evidence.

    Args:
        cpuinfo: the Linux CPU description to read (its `flags` line).
    """
    forced = os.environ.get(CPU_BFLOAT16_ENV)
    if forced in ("0", "1"):
        return forced == "1", f"{CPU_BFLOAT16_ENV}={forced}"
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False, f"{cpuinfo} is unreadable, so bfloat16 support is unknown"
    found = [flag for flag in FAST_BFLOAT16_FLAGS if flag in flags]
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, f"the CPU has none of {', '.join(FAST_BFLOAT16_FLAGS)}"


def choose_precision(precision="auto", *, gpu=None):
    """Resolves a requested precision into a `Precision` for this machine.

    Args:
        precision: one of PRECISIONS. "auto" picks float16 on a GPU, bfloat16 on a CPU with
            bfloat16 units, float32 otherwise.
        gpu: whether a GPU is used (default: whether TensorFlow sees one).

    Raises:
        ValueError: for an unknown precision, or float16 without a GPU.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_physical_devices("GPU"))
    if precision == "float16" and not gpu:
        raise InputError(
            "precision='float16' needs a GPU (CPUs emulate float16 slowly); use 'bfloat16' on a "
            "CPU with bfloat16 units, 'auto' or 'float32'.")
    if precision != "auto":
        return Precision(precision, POLICIES[precision], "asked for")
    if gpu:
        return Precision("float16", POLICIES["float16"], "a GPU is used")
    fast, why = cpu_bfloat16_support()
    if fast:
        return Precision("bfloat16", POLICIES["bfloat16"], why)
    return Precision("float32", POLICIES["float32"], why)


def for_model(requested, chosen, model):
    """Returns the precision `model` trains in: `chosen`, unless "auto" chose bfloat16 for a
    model that bfloat16 slows down on a CPU (SLOW_BFLOAT16_LAYERS); then float32, saying why.

    Args:
        requested: the precision asked for; only "auto" is revised.
        chosen: what `choose_precision(requested)` returned.
        model: the float32 keras.Model to be trained.
    """
    if requested != "auto" or chosen.name != "bfloat16":
        return chosen
    slow = sorted({type(layer).__name__ for layer in every_layer(model)
                   if isinstance(layer, SLOW_BFLOAT16_LAYERS)})
    if not slow:
        return chosen
    return Precision("float32", POLICIES["float32"],
                     f"{chosen.reason}, but the model has {' and '.join(slow)} layers, which "
                     "run slower in bfloat16 on a CPU: most such networks train slower "
                     "in it (precision='bfloat16' forces it)")


@contextlib.contextmanager
def policy_scope(policy):
    """Sets Keras' global dtype policy inside the `with` block, and restores the previous one.

    Args:
        policy: a Keras dtype policy name ("float32", "mixed_bfloat16", "mixed_float16").
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def with_policy(model, policy):
    """Returns a copy of `model` computing in `policy`, with its output layers and FLOAT32_LAYERS
    in float32, the same weights, and the same compile settings (a fresh optimizer).

    Args:
        model: a keras.Model whose layers are serializable (registered custom layers).
        policy: a Keras dtype policy name; "float32" gives a plain float32 copy.

    Returns:
        A copy; `model` itself when it is all float32 and `policy` is "float32".

    Raises:
        ValueError: a model that cannot be rebuilt from its config.
    """
    if policy == "float32" and all(layer.dtype_policy.name == "float32"
                                   for layer in every_layer(model)):
        return model  # nothing to change, and no need for a serializable model
    try:
        config = keras.saving.serialize_keras_object(model)
        _set_policies(config, policy, pinned=False)
        with policy_scope(policy):  # layers that make sublayers in __init__ take the global one
            copy = keras.saving.deserialize_keras_object(config)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise InputError(
            f"{model.name} cannot be rebuilt from its config to compute in {policy} ({error}); "
            "give its custom layers a get_config and register them "
            "(keras.saving.register_keras_serializable), or use precision='float32'.") from error
    copy.set_weights(model.get_weights())
    return copy


def every_layer(model):
    """Every layer of `model`, those of the models nested in it included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from every_layer(layer)


def _set_policies(layer, policy, pinned):
    """Rewrites, in place, the dtype policies of a serialized layer and of the layers in it."""
    config = layer.get("config")
    if not isinstance(config, dict):
        return
    layers = config.get("layers")
    float32 = ((pinned and not isinstance(layers, list))
               or layer.get("registered_name") in FLOAT32_LAYERS)
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
        dtype["config"]["name"] = "float32" if float32 else policy
    if isinstance(layers, list):
        outputs = (_output_names(config.get("output_layers")) if "output_layers" in config
                   else {layers[-1].get("config", {}).get("name")} if layers else set())
        for inner in layers:
            _set_policies(inner, policy, pinned=inner.get("config", {}).get("name") in outputs)


def _output_names(structure):
    """The layer names in a Functional config's `output_layers` ([name, node, tensor] entries)."""
    if isinstance(structure, (list, tuple)):
        if len(structure) == 3 and isinstance(structure[0], str) and isinstance(structure[1], int):
            return {structure[0]}
        return {name for item in structure for name in _output_names(item)}
    if isinstance(structure, dict):
        return {name for item in structure.values() for name in _output_names(item)}
    return set()
