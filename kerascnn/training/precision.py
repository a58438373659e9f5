"""Numeric precision of training: mixed bfloat16 on CPUs built for it, mixed float16 on GPUs.

Mixed precision keeps float32 variables, losses and metrics and computes layers in a 16-bit
type (Micikevicius et al., 2018). On GPUs that type is float16; on x86 CPUs with AVX-512 BF16
or AMX units (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later) oneDNN runs
bfloat16 convolutions and matrix products at up to twice the float32 rate. On other CPUs
bfloat16 is emulated and slower than float32, so "auto" keeps float32 there.
"""

import dataclasses
import os

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
FAST_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# "1" / "0" forces the answer of cpu_bfloat16_support() (tests, or a CPU it misjudges).
CPU_BFLOAT16_ENV = "KERASCNN_CPU_BFLOAT16"


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

    @property
    def mixed(self):
        return self.name != "float32"

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
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_physical_devices("GPU"))
    if precision == "float16" and not gpu:
        raise ValueError(
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
