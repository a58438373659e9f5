"""Memory estimates against the peak resident memory of a real forward pass on CPU.

Each measurement runs in a fresh process with TensorFlow's plain allocator
(oneDNN's pooling allocator would keep freed memory) and glibc returning
every large block to the system, so resident memory follows live tensors.
"""

import json
import os
import subprocess
import sys

import pytest

MEASURE = r"""
import gc, json, sys
import keras, tensorflow as tf
from kerascnn.analysis import inspect

def resident(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

name, batch = sys.argv[1], int(sys.argv[2])
model = getattr(keras.applications, name)(weights=None)
report = inspect(model, batch_size=batch)
x = tf.zeros((batch, 224, 224, 3))
result = dict(report.to_dict(), input_bytes=x.numpy().nbytes)
for mode, run in (("eager", model), ("graph", tf.function(model))):
    run(x, training=False)  # build kernels and graphs first
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident memory
    before = resident("VmRSS")
    y = run(x, training=False)
    result[mode] = resident("VmHWM") - before
    del y
print(json.dumps({k: v for k, v in result.items() if k != "layers"}))
"""


def measure(name, batch):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", MALLOC_MMAP_THRESHOLD_="65536", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, name, str(batch)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["MobileNet", "ResNet50"])
def test_estimates_bracket_a_measured_forward_pass(name):
    m = measure(name, batch=8)
    # Eager Keras keeps every layer output: the estimate, less the input that
    # existed before, is what the process grows by.
    kept = m["activation_bytes"] - m["input_bytes"]
    assert m["eager"] == pytest.approx(kept, rel=0.03)
    # A graph frees tensors after their last use. The growth matches the most
    # activations alive at once, input included (MobileNet), or falls below
    # it where TensorFlow fuses convolution, batch norm and activation and
    # overwrites buffers in place (ResNet-50).
    live = m["forward_peak_bytes"] - m["param_bytes"]
    assert 0.6 * live <= m["graph"] <= 1.05 * live
