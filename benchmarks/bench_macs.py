"""Multiply-adds per image: kerascnn.inspect vs TensorFlow's profiler vs the published figures.

Run from the repository root:

    PYTHONPATH=. python benchmarks/bench_macs.py

Published figures are multiply-adds at 224x224 (the papers' and torchvision's
"FLOPs"/"GFLOPS"): VGG-16 15.47 G, ResNet-50 4.09 G with the stride on the
3x3 convolution (torchvision "v1.5"), about 3.86 G with it on the first 1x1
(He et al. 2016 round to 3.8 G), MobileNet 569 M (Howard et al. 2017, Table
8), DenseNet-121 2.83 G, ConvNeXt-T 4.46 G. The profiler misses grouped
convolutions (ConvNeXt's depthwise ones), which Keras runs as a nested XLA
function on CPU.
"""

import time

import keras

from kerascnn.analysis import inspect
from kerascnn.analysis.profiler import tensorflow_profiler_macs

PUBLISHED = {
    "vgg16": 15.47e9,
    "resnet50": 3.86e9,
    "mobilenet_1.00_224": 569e6,
    "densenet121": 2.83e9,
    "convnext_tiny": 4.46e9,
    "xception": None,
    "kerascnn resnet50 (v1.5)": 4.09e9,
    "kerascnn resnet50 (1x1)": 3.86e9,
}


def models():
    """Yields (name, model): keras.applications, then kerascnn's ResNet-50 if available."""
    for build in (
        keras.applications.VGG16,
        keras.applications.ResNet50,
        keras.applications.MobileNet,
        keras.applications.DenseNet121,
        keras.applications.ConvNeXtTiny,
        keras.applications.Xception,
    ):
        model = build(weights=None)
        yield model.name, model
    try:
        from kerascnn.models import build_model
    except ImportError:
        return
    yield "kerascnn resnet50 (v1.5)", build_model("resnet50")
    yield "kerascnn resnet50 (1x1)", build_model("resnet50", stride_on="1x1")


def main():
    header = f"{'model':26s} {'inspect':>14s} {'TF profiler':>14s} {'published':>10s} {'/profiler':>9s} {'/published':>10s} {'s':>5s}"
    print(header)
    print("-" * len(header))
    for name, model in models():
        start = time.perf_counter()
        ours = inspect(model).macs
        seconds = time.perf_counter() - start
        profiler = tensorflow_profiler_macs(model)
        published = PUBLISHED.get(name)
        print(
            f"{name:26s} {ours:>14,d} {profiler:>14,d} "
            f"{(f'{published / 1e9:.3f} G' if published else '-'):>10s} "
            f"{ours / profiler:>9.4f} {(f'{ours / published:.4f}' if published else '-'):>10s} {seconds:>5.2f}"
        )
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
