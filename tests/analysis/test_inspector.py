"""kerascnn.analysis.inspect on small hand-built models, against hand counts and TensorFlow."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.analysis import inspect
from kerascnn.analysis.profiler import tensorflow_profiler_macs

L = keras.layers


def lenet():
    x = keras.Input((28, 28, 1), name="image")
    y = L.Conv2D(6, 5, activation="relu", name="c1")(x)
    y = L.MaxPooling2D(2, name="s2")(y)
    y = L.Conv2D(16, 5, name="c3")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.MaxPooling2D(2, name="s4")(y)
    y = L.Flatten(name="flatten")(y)
    y = L.Dense(120, activation="relu", name="f5")(y)
    y = L.Dropout(0.5, name="drop")(y)
    return keras.Model(x, L.Dense(10, name="f6")(y), name="lenet")


def branchy():
    """Inception branches, a residual Add, a DenseNet-style Concatenate, a nested Sequential."""
    x = keras.Input((16, 16, 3))
    stem = L.Conv2D(8, 3, padding="same", name="stem")(x)
    a = L.Conv2D(4, 1, name="b1x1")(stem)
    b = L.Conv2D(4, 3, padding="same", name="b3x3")(stem)
    c = L.MaxPooling2D(3, strides=1, padding="same", name="bpool")(stem)
    mixed = L.Concatenate(name="mixed")([a, b, c])
    inner = keras.Sequential(
        [keras.Input((16, 16, 16)), L.Conv2D(16, 3, padding="same", name="inner_conv"), L.ReLU()],
        name="inner",
    )
    residual = L.Add(name="add")([mixed, inner(mixed)])
    dense = L.Concatenate(name="dense_concat")([residual, L.Conv2D(4, 3, padding="same", name="grow")(residual)])
    pooled = L.GlobalAveragePooling2D(name="gap")(dense)
    return keras.Model(x, L.Dense(5, name="head")(pooled), name="branchy")


def test_lenet_rows_match_hand_counts():
    model = lenet()
    report = inspect(model)
    rows = {r.name: r for r in report.layers}
    # (output shape, neurons, params, MACs) worked out by hand.
    expected = {
        "image": ((28, 28, 1), 0, 0, 0),
        "c1": ((24, 24, 6), 24 * 24 * 6, 6 * 26, 24 * 24 * 6 * 25),
        "s2": ((12, 12, 6), 12 * 12 * 6, 0, 0),
        "c3": ((8, 8, 16), 8 * 8 * 16, 16 * 151, 8 * 8 * 16 * 150),
        "bn": ((8, 8, 16), 0, 64, 0),
        "s4": ((4, 4, 16), 4 * 4 * 16, 0, 0),
        "flatten": ((256,), 0, 0, 0),
        "f5": ((120,), 120, 257 * 120, 256 * 120),
        "drop": ((120,), 0, 0, 0),
        "f6": ((10,), 10, 121 * 10, 120 * 10),
    }
    assert [r.name for r in report.layers] == list(expected)
    for name, (shape, neurons, params, macs) in expected.items():
        assert (rows[name].output_shape, rows[name].neurons, rows[name].params, rows[name].macs) == (
            shape,
            neurons,
            params,
            macs,
        ), name
    for layer in model.layers[1:]:
        assert rows[layer.name].output_shape == tuple(layer.output.shape[1:])
        assert rows[layer.name].kind == type(layer).__name__
    assert report.params == model.count_params()
    assert report.trainable_params == model.count_params() - 32  # BN moving statistics
    assert rows["bn"].trainable_params == 32
    assert report.neurons == sum(v[1] for v in expected.values())
    assert report.macs == sum(v[3] for v in expected.values())
    assert report.macs == tensorflow_profiler_macs(model)


def test_receptive_fields_of_lenet_rows():
    rows = {r.name: r.receptive_field for r in inspect(lenet()).layers}
    assert rows["image"] == ((1, 1), (1, 1))
    assert rows["c1"] == ((5, 1), (5, 1))
    assert rows["s2"] == ((6, 2), (6, 2))
    assert rows["c3"] == ((14, 2), (14, 2))
    assert rows["s4"] == ((16, 4), (16, 4))
    assert rows["flatten"] == ((28, None), (28, None))  # sees the whole input
    assert rows["f6"] == ((28, None), (28, None))


def test_branches_merges_and_nested_models():
    model = branchy()
    report = inspect(model)
    names = [r.name for r in report.layers]
    assert "inner/inner_conv" in names and "inner/re_lu" in names[names.index("inner/inner_conv"):]
    assert report.params == model.count_params()
    assert sum(r.params for r in report.layers) == model.count_params()
    assert report.macs == tensorflow_profiler_macs(model)
    rows = {r.name: r for r in report.layers}
    assert rows["mixed"].output_shape == (16, 16, 16) and rows["mixed"].neurons == 0
    assert rows["bpool"].neurons == 16 * 16 * 8
    # Merges take the largest field of their inputs: 3x3 stem + 3x3 branch.
    assert rows["mixed"].receptive_field == ((5, 1), (5, 1))
    assert rows["add"].receptive_field == ((7, 1), (7, 1))
    assert rows["dense_concat"].receptive_field == ((9, 1), (9, 1))


def test_multiply_adds_of_each_layer_kind():
    # (layer, input shape, MACs by hand: output positions x kernel weights).
    cases = [
        (L.Conv1D(4, 3, dilation_rate=2), (20, 3), 16 * 4 * 3 * 3),
        (L.Conv1D(4, 5, strides=2, padding="same"), (20, 3), 10 * 4 * 5 * 3),
        (L.Conv2D(6, (3, 5), strides=(1, 2)), (9, 11, 4), 7 * 4 * 6 * 15 * 4),
        (L.Conv2D(6, 3, dilation_rate=2, padding="same"), (9, 9, 4), 9 * 9 * 6 * 9 * 4),
        (L.Conv2D(8, 3, groups=4), (9, 9, 8), 7 * 7 * 8 * 9 * 2),
        (L.Conv3D(4, 3, strides=2), (9, 9, 9, 2), 4 * 4 * 4 * 4 * 27 * 2),
        (L.DepthwiseConv2D(3, depth_multiplier=2), (8, 8, 3), 6 * 6 * 6 * 9),
        (L.DepthwiseConv1D(3), (10, 5), 8 * 5 * 3),
        (L.SeparableConv2D(7, 3), (8, 8, 3), 6 * 6 * 3 * 9 + 6 * 6 * 3 * 7),
        (L.SeparableConv1D(7, 3, depth_multiplier=2), (10, 3), 8 * 6 * 3 + 8 * 6 * 7),
        (L.Conv2DTranspose(5, 3, strides=2), (8, 8, 3), 8 * 8 * 3 * 9 * 5),
        (L.Conv3DTranspose(2, 2, strides=2), (4, 4, 4, 3), 64 * 3 * 8 * 2),
        (L.Dense(7), (4, 5, 3), 4 * 5 * 3 * 7),
        (L.EinsumDense("abc,cd->abd", output_shape=(5, 6)), (5, 3), 5 * 3 * 6),
        (L.MaxPooling3D(2), (4, 4, 4, 3), 0),
        (L.GlobalAveragePooling1D(), (7, 3), 0),
    ]
    for layer, input_shape, macs in cases:
        x = keras.Input(input_shape)
        model = keras.Model(x, layer(x))
        row = inspect(model).layers[-1]
        assert row.macs == macs, layer.name
        assert row.neurons == math.prod(model.output.shape[1:]), layer.name
        assert row.params == layer.count_params(), layer.name


def test_nested_backbone_first_in_a_sequential():
    backbone = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, name="conv")], name="backbone")
    model = keras.Sequential([keras.Input((8, 8, 3)), backbone, L.Flatten(name="flat"), L.Dense(2, name="fc")])
    report = inspect(model)
    assert [r.name for r in report.layers[1:]] == ["backbone/conv", "flat", "fc"]
    assert report.macs == 6 * 6 * 4 * 27 + 144 * 2
    assert report.params == model.count_params()


@pytest.mark.parametrize(
    "build",
    [
        lambda: keras.Sequential([keras.Input((30, 2)), L.Conv1D(4, 5, strides=2), L.MaxPooling1D(2), L.Conv1D(3, 3, dilation_rate=2), L.GlobalMaxPooling1D(), L.Dense(2)]),
        lambda: keras.Sequential([keras.Input((8, 8, 8, 1)), L.Conv3D(3, 3), L.AveragePooling3D(2), L.Conv3D(2, 1), L.Flatten(), L.Dense(3)]),
        lambda: keras.Sequential([keras.Input((16, 16, 3)), L.DepthwiseConv2D(3, strides=2), L.SeparableConv2D(8, 3), L.Conv2D(4, 1), L.GlobalAveragePooling2D()]),
    ],
    ids=["1d", "3d", "depthwise_separable"],
)
def test_multiply_adds_equal_tensorflow_profiler(build):
    model = build()
    assert inspect(model).macs == tensorflow_profiler_macs(model)


def test_shared_layer_params_are_counted_once():
    shared = L.Dense(4, name="shared")
    x = keras.Input((3,))
    model = keras.Model(x, L.Add()([shared(x), shared(L.Dense(3)(x))]))
    report = inspect(model)
    rows = {r.name: r for r in report.layers}
    assert rows["shared"].params == 16 and rows["shared#2"].params == 0
    assert rows["shared"].macs == rows["shared#2"].macs == 12
    assert report.params == model.count_params()
    assert report.layers[0].receptive_field == ()  # no spatial axes


def test_keras_operations_in_a_functional_graph():
    x = keras.Input((5, 6))
    w = keras.ops.ones((6, 4))
    y = keras.ops.matmul(x, w) + 1.0
    report = inspect(keras.Model(x, y))
    assert report.macs == 5 * 6 * 4
    assert not report.not_counted


@keras.saving.register_keras_serializable(package="kerascnn_test")
class CountedPadding(L.Layer):
    """A padding layer with a (deliberately odd) hook, to see the hook wins."""

    def call(self, x):
        return keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")

    def compute_macs(self, input_shape):
        return 7 * math.prod(input_shape)


class SqueezeExcite(L.Layer):
    """A composite layer: the inspector traces the Dense sub-layers' products."""

    def __init__(self, channels, ratio=4, **kwargs):
        super().__init__(**kwargs)
        self.squeeze = L.Dense(channels // ratio, activation="relu")
        self.excite = L.Dense(channels, activation="sigmoid")

    def call(self, x):
        gate = self.excite(self.squeeze(keras.ops.mean(x, axis=(1, 2))))
        return x * gate[:, None, None, :]


class DropConnect(L.Wrapper):
    """Stands for kerascnn's DropConnect: a wrapper computing what the wrapped layer does."""

    def call(self, x, training=None):
        return self.layer(x)


class Looping(L.Layer):
    """A layer whose cost depends on a loop: the inspector cannot count it."""

    def call(self, x):
        return tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, tf.matmul(y, tf.eye(4))), (0, x))[1]


def test_custom_layers_hook_trace_wrapper_and_loop():
    x = keras.Input((6, 6, 8))
    padded = CountedPadding(name="pad")(x)
    se = SqueezeExcite(8, name="se")(padded)
    conv = DropConnect(L.Conv2D(4, 3), name="dropconnect")(se)
    flat = L.Flatten()(conv)
    out = Looping(name="loop")(L.Dense(4)(flat))
    model = keras.Model(x, out)
    report = inspect(model)
    rows = {r.name: r for r in report.layers}
    assert rows["pad"].macs == 7 * 6 * 6 * 8 and rows["pad"].neurons == 0
    assert rows["pad"].receptive_field == ((1, 1), (1, 1))
    assert rows["se"].macs == 8 * 2 + 2 * 8 and rows["se"].neurons == 2 + 8
    assert rows["se"].params == (8 * 2 + 2) + (2 * 8 + 8)
    assert rows["dropconnect"].macs == 6 * 6 * 4 * 9 * 8 and rows["dropconnect"].neurons == 6 * 6 * 4
    assert rows["dropconnect"].receptive_field == ((3, 1), (3, 1))
    assert report.not_counted == ("loop",) and rows["loop"].macs == 0
    assert report.params == model.count_params()
    assert "loop" in report.to_text()


def test_subclassed_model_is_one_traced_row():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(3, 3)
            self.head = L.Dense(2)

        def call(self, x):
            return self.head(keras.ops.mean(self.conv(x), axis=(1, 2)))

    model = Net()
    model(np.zeros((1, 10, 10, 2), "float32"))
    with pytest.raises(ValueError, match="input_shape"):
        inspect(model)
    report = inspect(model, input_shape=(10, 10, 2))
    assert [r.kind for r in report.layers] == ["InputLayer", "Net"]
    assert report.macs == 8 * 8 * 3 * 18 + 3 * 2
    assert report.params == model.count_params()
    # Its output has no spatial axes: each unit sees the whole input.
    assert report.layers[-1].receptive_field == ((10, None), (10, None))


def test_memory_estimates_from_shapes_and_dtypes():
    x = keras.Input((10, 10, 3))
    a = L.Conv2D(4, 3, name="a")(x)  # 8x8x4
    b = L.Conv2D(2, 3, dtype="mixed_float16", name="b")(a)  # 6x6x2, float16 outputs
    c = L.Flatten(name="c")(b)
    model = keras.Model(x, L.Dense(3, name="d")(c))
    model.get_layer("a").trainable = False
    report = inspect(model, batch_size=5, optimizer="sgd_momentum")
    elements = {"x": 300, "a": 256, "b": 72, "c": 72, "d": 3}
    item = {"x": 4, "a": 4, "b": 2, "c": 2, "d": 4}
    per_example = {k: elements[k] * item[k] for k in elements}
    assert report.param_bytes == 4 * model.count_params()
    assert report.activation_bytes == 5 * sum(per_example.values())
    assert report.forward_bytes == report.param_bytes + report.activation_bytes
    # A chain frees each tensor after its consumer: the peak is the largest pair.
    pairs = [("x", "a"), ("a", "b"), ("b", "c"), ("c", "d")]
    assert report.forward_peak_bytes == report.param_bytes + 5 * max(
        per_example[i] + per_example[o] for i, o in pairs
    )
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert report.trainable_params == trainable < report.params
    assert report.training_bytes == report.param_bytes + 4 * trainable * 2 + report.activation_bytes
    adam = inspect(model, batch_size=5, optimizer="adam")
    sgd = inspect(model, batch_size=5, optimizer="sgd")
    assert adam.training_bytes - sgd.training_bytes == 2 * 4 * trainable


def test_peak_keeps_a_skip_connection_alive():
    x = keras.Input((100,))
    a = L.Dense(50, name="a")(x)
    b = L.Dense(10, name="b")(a)
    c = L.Dense(50, name="c")(b)
    model = keras.Model(x, L.Add(name="add")([a, c]))
    report = inspect(model)
    # While b and c are computed, a (the skip) still waits for the addition.
    assert report.forward_peak_bytes - report.param_bytes == 4 * (50 + 50 + 50)


def test_report_renders_as_text_markdown_json_and_png(tmp_path):
    report = inspect(lenet(), batch_size=2)
    data = json.loads(report.to_json())
    assert [row["name"] for row in data["layers"]] == [r.name for r in report.layers]
    assert data["macs"] == report.macs and data["batch_size"] == 2
    assert data["layers"][2]["receptive_field"] == [{"size": 6, "jump": 2}] * 2
    assert any("Neurons" in text for text in data["conventions"])
    text = report.to_text()
    for fragment in ("c3", "Conv2D", "8x8x16", "153,600", "14x14 (jump 2x2)", "whole input", "FLOPs", "Conventions"):
        assert fragment in text
    markdown = report.to_markdown()
    assert markdown.count("\n| ") >= len(report.layers) + 1
    assert "| c3 | Conv2D | 8x8x16 | 1,024 | 2,416 | 153,600 | 14x14 (jump 2x2) |" in markdown
    path = tmp_path / "lenet.png"
    report.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["lenet.png"]


def test_bad_arguments_are_explained():
    model = lenet()
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        inspect(model, batch_size=0)
    with pytest.raises(ValueError, match="optimizer must be one of .* got 'lion'"):
        inspect(model, optimizer="lion")
    with pytest.raises(ValueError, match=r"input_shape \(32, 32, 1\) does not fit .*\(28, 28, 1\)"):
        inspect(model, input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="positive integers"):
        inspect(model, input_shape=(28, -28, 1))
    with pytest.raises(ValueError, match="not built"):
        inspect(keras.Sequential([L.Dense(2)]))
    any_size = keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="unknown size"):
        inspect(any_size)
    assert inspect(any_size, input_shape=(9, 9, 3)).layers[-1].output_shape == (7, 7, 2)
    x = keras.Input((5, 3))
    vague = keras.Model(x, L.EinsumDense("abc,cd->abd", output_shape=(None, 6), name="vague")(x))
    with pytest.raises(ValueError, match="Layer 'vague' .* unknown size"):
        inspect(vague)
