"""Multiply-adds and parameters of well-known networks against the papers and torchvision.

Papers and torchvision report multiply-adds as "FLOPs" (torchvision's
"GFLOPS" column): VGG-16 15.47 G, ResNet-50 4.09 G (torchvision's "v1.5",
stride on the 3x3 convolution) and about 3.86 G with the stride on the
first 1x1 (He et al. 2016 say 3.8 G; keras.applications builds this one),
MobileNet 569 M (Howard et al. 2017, Table 8), DenseNet-121 2.83 G,
ConvNeXt-T 4.46 G. All at 224x224.
"""

import math

import keras
import pytest

from kerascnn.analysis import inspect
from kerascnn.analysis.profiler import tensorflow_profiler_macs


def check_application(name, published):
    model = getattr(keras.applications, name)(weights=None)
    report = inspect(model)
    assert report.params == model.count_params(), name
    assert report.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights), name
    if published:
        assert report.macs == pytest.approx(published, rel=0.003), name
    keras.backend.clear_session()


def test_vgg16_resnet50_mobilenet():
    for name, published in (("VGG16", 15.47e9), ("ResNet50", 3.86e9), ("MobileNet", 569e6)):
        check_application(name, published)


@pytest.mark.slow
def test_densenet121_convnext_tiny_xception():
    for name, published in (("DenseNet121", 2.83e9), ("ConvNeXtTiny", 4.46e9), ("Xception", None)):
        check_application(name, published)  # Xception's paper gives no multiply-adds


def test_resnet50_stride_placement():
    models = pytest.importorskip("kerascnn.models")
    v15 = inspect(models.build_model("resnet50")).macs
    paper = inspect(models.build_model("resnet50", stride_on="1x1")).macs
    assert v15 == pytest.approx(4.09e9, rel=0.003)
    assert paper == pytest.approx(3.86e9, rel=0.003)
    assert paper == inspect(keras.applications.ResNet50(weights=None)).macs


def test_tensorflow_profiler_agrees():
    for build in (keras.applications.MobileNet, keras.applications.VGG16):
        model = build(weights=None, input_shape=(64, 64, 3), include_top=False)
        assert inspect(model).macs == tensorflow_profiler_macs(model), model.name


@pytest.mark.slow
def test_tensorflow_profiler_agrees_at_224_except_grouped_convolutions():
    for name in ("ResNet50", "DenseNet121", "Xception"):
        model = getattr(keras.applications, name)(weights=None)
        assert inspect(model).macs == tensorflow_profiler_macs(model), name
    # ConvNeXt's depthwise convolutions are Conv2D(groups=channels), which Keras
    # runs as a nested XLA function on CPU: the profiler does not look inside.
    model = keras.applications.ConvNeXtTiny(weights=None)
    report = inspect(model)
    grouped = sum(row.macs for row in report.layers if row.name.endswith("_depthwise_conv"))
    assert grouped == 105_106_176
    assert report.macs - grouped == tensorflow_profiler_macs(model)


@pytest.mark.slow
def test_every_registry_model_counts_its_parameters():
    models = pytest.importorskip("kerascnn.models")
    for name in models.list_models():
        model = models.build_model(name)
        report = inspect(model)
        assert report.params == model.count_params(), name
        assert report.macs > 0 and not report.not_counted, name
        keras.backend.clear_session()
