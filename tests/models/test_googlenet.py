"""GoogLeNet (Inception v1): Table 1 of Szegedy et al. 2015, the auxiliary heads, the options."""

import numpy as np
import pytest
import keras

import kerascnn
from kerascnn.layers import LocalResponseNormalization, SpatialPadding
from kerascnn.layers.regularization import DropConnectDense
from kerascnn.models.googlenet import LOSS_WEIGHTS, googlenet_without_aux, inception_naive_block

# Szegedy et al., "Going deeper with convolutions", CVPR 2015, Table 1, typed here independently
# of kerascnn.models.googlenet: module -> (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj).
TABLE_1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Table 1's "output size" column at 224×224×3.
TABLE_1_OUTPUT_SIZES = {
    "conv1": (112, 112, 64), "pool1": (56, 56, 64), "conv2": (56, 56, 192),
    "pool2": (28, 28, 192), "inception_3a_concat": (28, 28, 256),
    "inception_3b_concat": (28, 28, 480), "pool3": (14, 14, 480),
    "inception_4a_concat": (14, 14, 512), "inception_4b_concat": (14, 14, 512),
    "inception_4c_concat": (14, 14, 512), "inception_4d_concat": (14, 14, 528),
    "inception_4e_concat": (14, 14, 832), "pool4": (7, 7, 832),
    "inception_5a_concat": (7, 7, 832), "inception_5b_concat": (7, 7, 1024),
    "avg_pool": (1024,), "predictions": (1000,),
}
# Table 1's "params" column, in K = 1024 weights (conv2: 1×1×64×64 + 3×3×64×192 = 112 × 1024),
# for the rows that agree with the table's own filter columns to within 1K. The other rows do not:
# conv1 2.7K (7×7×3×64 is 9.2K), 4a 364K (366.75K), 4c 463K (497.5K), 4d 580K (590.5K),
# 4e 840K (847K), 5a 1072K (1018K), 5b 1388K (1409K). The whole column sums to 6797.7K.
TABLE_1_PARAMS_K = {"conv2": 112, "3a": 159, "3b": 380, "4b": 437, "linear": 1000}
TABLE_1_PARAMS_COLUMN_SUM_K = 6797.7

# torchvision.models.googlenet: 6,624,904 parameters without the auxiliary heads (weights
# documentation, GoogLeNet_Weights.IMAGENET1K_V1) and 13,004,888 with them (aux_logits=True;
# its InceptionAux = BN conv 1×1 128 + FC 2048->1024 + FC 1024->1000, i.e. 3,188,968 on 4a and
# 3,191,016 on 4d). It differs from the paper by BatchNorm after every convolution (no conv
# biases, gamma and beta instead, no LRN) and by a 3×3 convolution in the "5×5" branch; we
# check that exactly these two differences separate our count from torchvision's.
TORCHVISION_GOOGLENET = 6_624_904
TORCHVISION_GOOGLENET_WITH_AUX = 13_004_888

SMALL = {"num_classes": 3, "width_multiplier": 0.125}


def conv_params(kernel, inputs, filters, bias=True):
    return kernel * kernel * inputs * filters + (filters if bias else 0)


def table_1_weights(five_by_five=5, bias=True):
    """Parameters of each Table 1 layer: sum of k·k·cin·cout (+ cout biases)."""
    layers = {"conv1": conv_params(7, 3, 64, bias),
              "conv2": conv_params(1, 64, 64, bias) + conv_params(3, 64, 192, bias)}
    channels = 192
    for module, (n1, r3, n3, r5, n5, proj) in TABLE_1.items():
        layers[module] = (
            conv_params(1, channels, n1, bias) + conv_params(1, channels, r3, bias)
            + conv_params(3, r3, n3, bias) + conv_params(1, channels, r5, bias)
            + conv_params(five_by_five, r5, n5, bias) + conv_params(1, channels, proj, bias)
        )
        channels = n1 + n3 + n5 + proj
    layers["linear"] = channels * 1000 + (1000 if bias else 0)
    return layers


def auxiliary_head_params(channels, classes=1000):
    """Section 5: 5×5/3 average pool (14×14 -> 4×4), 1×1 conv 128, FC 1024, linear."""
    return conv_params(1, channels, 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * classes + classes)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_paper_configuration_matches_table_1():
    model = kerascnn.build_model("googlenet", aux_logits=False)
    reference = sum(table_1_weights().values())
    assert model.count_params() == trainable_count(model) == reference == 6_998_552
    for layer, shape in TABLE_1_OUTPUT_SIZES.items():
        assert model.get_layer(layer).output.shape[1:] == shape, layer

    def kernels(prefix):
        return sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
                   if hasattr(layer, "kernel") and layer.name.split("_")[:2] == prefix.split("_"))

    ours = {"conv2": kernels("conv2") + kernels("conv2_reduce"), "linear": kernels("predictions")}
    ours.update({m: kernels(f"inception_{m}") for m in ("3a", "3b", "4b")})
    for row, table_k in TABLE_1_PARAMS_K.items():
        assert abs(ours[row] / 1024 - table_k) <= 1, (row, ours[row] / 1024, table_k)
    weights_only = sum(table_1_weights(bias=False).values())
    assert abs(weights_only / 1024 / TABLE_1_PARAMS_COLUMN_SUM_K - 1) < 0.01


def test_auxiliary_heads_follow_section_5():
    model = kerascnn.build_model("googlenet")
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1000)] * 3
    assert model.get_layer("aux1_pool").output.shape[1:] == (4, 4, 512)
    assert model.get_layer("aux2_pool").output.shape[1:] == (4, 4, 528)
    assert model.get_layer("aux1_dropout").rate == 0.7
    assert model.get_layer("predictions_dropout").rate == 0.4
    reference = 6_998_552 + auxiliary_head_params(512) + auxiliary_head_params(528)
    assert model.count_params() == reference == 13_378_280


def test_batchnorm_variant_differs_from_torchvision_only_by_the_5x5_branch():
    five_by_five_extra = sum((25 - 9) * r5 * n5 for _, _, _, r5, n5, _ in TABLE_1.values())
    normalized_channels = 64 + 64 + 192 + sum(sum(f) for f in TABLE_1.values())
    for aux_logits, torchvision in ((False, TORCHVISION_GOOGLENET),
                                    (True, TORCHVISION_GOOGLENET_WITH_AUX)):
        model = kerascnn.build_model("googlenet", norm="batch", lrn=False, aux_logits=aux_logits)
        trainable = trainable_count(model)
        assert trainable - five_by_five_extra == torchvision
        moving_statistics = 2 * (normalized_channels + (2 * 128 if aux_logits else 0))
        assert model.count_params() - trainable == moving_statistics
        assert not any(getattr(layer, "use_bias", False) for layer in model.layers
                       if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize(
    "side, aux_pool, aux_side",
    [(128, "AveragePooling2D", 2), (96, "GlobalAveragePooling2D", 1),
     (64, "GlobalAveragePooling2D", 1), (1, "GlobalAveragePooling2D", 1)],
)
def test_small_inputs_keep_the_auxiliary_heads(side, aux_pool, aux_side):
    model = kerascnn.build_model("googlenet", input_shape=(side, side, 3), **SMALL)
    assert model.get_layer("inception_4a_concat").output.shape[1] == -(-side // 16)
    for head in ("aux1", "aux2"):
        pool_layer = model.get_layer(f"{head}_pool")
        assert type(pool_layer).__name__ == aux_pool
        assert pool_layer.output.shape[1:3] == (aux_side, aux_side)
    if side in (64, 96):
        x = np.random.default_rng(0).uniform(size=(2, side, side, 3)).astype("float32")
        for out in model(x):
            assert out.shape == (2, 3)
            np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(64, 2), (16, 16, 16, 1)], ids=["1d", "3d"])
def test_one_and_three_dimensional_inputs(shape):
    model = kerascnn.build_model("googlenet", input_shape=shape, **SMALL)
    rank = len(shape) - 1
    convs = [layer for layer in model.layers if "Conv" in type(layer).__name__]
    assert convs and all(type(layer).__name__ == f"Conv{rank}D" for layer in convs)
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    assert [tuple(out.shape) for out in model(x)] == [(2, 3)] * 3


def test_features_without_top_have_no_auxiliary_heads():
    model = kerascnn.build_model("googlenet", input_shape=(64, 64, 3), include_top=False,
                                 pooling="avg", width_multiplier=0.125)
    assert len(model.outputs) == 1 and model.output_shape == (None, 128)
    assert not [layer.name for layer in model.layers if layer.name.startswith("aux")]
    assert len(kerascnn.build_model("googlenet", aux_logits=False, **SMALL,
                                    input_shape=(32, 32, 3)).outputs) == 1


def layer_types(model):
    return [type(layer) for layer in model.layers]


@pytest.mark.parametrize(
    "options, check",
    [
        ({"padding_mode": "reflect"},
         lambda m: m.get_layer("conv1_pad").mode == "reflect"
         # conv1, conv2 and the 3×3 and 5×5 of the nine modules (1×1 convolutions need none).
         and sum(isinstance(layer, SpatialPadding) for layer in m.layers) == 2 + 2 * 9),
        ({"norm": "group"},
         lambda m: keras.layers.GroupNormalization in layer_types(m)
         and not any(getattr(layer, "use_bias", False) for layer in m.layers
                     if isinstance(layer, keras.layers.Conv2D))),
        ({"lrn": False}, lambda m: LocalResponseNormalization not in layer_types(m)),
        ({}, lambda m: [layer.name for layer in m.layers
                        if isinstance(layer, LocalResponseNormalization)]
         == ["pool1_lrn", "conv2_lrn"]),
        ({"conv_kind": "spatially_separable"},
         lambda m: m.get_layer("inception_3a_5x5_axis0").kernel.shape[:2] == (5, 1)),
        ({"se_ratio": 0.25},
         lambda m: sum(layer.name.endswith("_se_excite") for layer in m.layers) == 9),
        ({"spatial_dropout": 0.1},
         lambda m: layer_types(m).count(keras.layers.SpatialDropout2D) == 9),
        ({"drop_connect": 0.2}, lambda m: layer_types(m).count(DropConnectDense) == 5),
        ({"activation": "gelu"}, lambda m: m.get_layer("inception_5b_pool_proj_gelu")
         and m.get_layer("aux2_fc").activation is keras.activations.gelu),
        ({"dropout": 0.0, "aux_dropout": 0.5},
         lambda m: keras.layers.Dropout in layer_types(m)
         and [layer.rate for layer in m.layers if isinstance(layer, keras.layers.Dropout)]
         == [0.5, 0.5]),
    ],
    ids=["reflect", "group", "no-lrn", "lrn", "separable", "se", "spatial-dropout",
         "drop-connect", "gelu", "dropouts"],
)
def test_options_change_the_graph(options, check):
    model = kerascnn.build_model("googlenet", input_shape=(96, 96, 3), **SMALL, **options)
    assert check(model)


def test_local_response_normalization_is_caffes():
    # Caffe (bvlc_googlenet pool1/norm1): b = a / (1 + alpha/n * sum of a² over n channels)^beta,
    # n=5, alpha=1e-4, beta=0.75.
    model = kerascnn.build_model("googlenet", input_shape=(16, 16, 3), **SMALL)
    probe = keras.Model(model.input, [model.get_layer("pool1").output,
                                      model.get_layer("pool1_lrn").output])
    x = np.random.default_rng(1).uniform(0, 255, size=(2, 16, 16, 3)).astype("float32")
    a, b = (np.asarray(out) for out in probe(x))
    squares = np.pad(a.astype("float64") ** 2, ((0, 0), (0, 0), (0, 0), (2, 2)))
    window = sum(squares[..., i:i + a.shape[-1]] for i in range(5))
    np.testing.assert_allclose(b, a / (1 + 1e-4 / 5 * window) ** 0.75, rtol=1e-4)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"aux_logits": "yes"}, "aux_logits must be True or False; got 'yes'"),
        ({"lrn": 1}, "lrn must be True or False; got 1"),
        ({"conv_kind": "grouped"}, "conv_kind='grouped' is not supported"),
        ({"norm": "batchnorm"}, "norm='batchnorm' is not supported"),
        ({"activation": "relu7"}, "activation='relu7' is not a Keras activation"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\); got 1.0"),
        ({"aux_dropout": -0.1}, r"aux_dropout must be in \[0, 1\); got -0.1"),
        ({"width_multiplier": 0}, "width_multiplier must be a positive number; got 0"),
    ],
)
def test_bad_options_raise_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        kerascnn.build_model("googlenet", **options)


def test_naive_inception_block_has_the_unreduced_parameter_count():
    inputs = keras.Input((8, 8, 16))
    outputs = inception_naive_block(inputs, 8, 12, 4, name="naive")
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 8, 8, 8 + 12 + 4 + 16)
    assert model.count_params() == (
        conv_params(1, 16, 8) + conv_params(3, 16, 12) + conv_params(5, 16, 4)
    )


def categorical_crossentropy(y, p):
    return float(np.mean(-np.sum(y * np.log(np.clip(p, 1e-7, 1.0)), axis=1)))


def test_training_weights_the_auxiliary_losses_and_inference_drops_them(tmp_path):
    model = kerascnn.build_model("googlenet", input_shape=(32, 32, 3), **SMALL)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={name: "categorical_crossentropy" for name in model.output_names},
        loss_weights=LOSS_WEIGHTS,
        metrics={"predictions": ["accuracy"]},
        run_eagerly=True,  # tracing (and XLA on CPU) costs far more than this tiny step
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(6, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(6) % 3, 3)
    history = model.fit(x, {name: y for name in model.output_names}, batch_size=6, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    main, aux1, aux2 = (np.asarray(out) for out in model(x))
    scores = model.evaluate(x, [y, y, y], verbose=0, return_dict=True)
    expected = (categorical_crossentropy(y, main) + 0.3 * categorical_crossentropy(y, aux1)
                + 0.3 * categorical_crossentropy(y, aux2))
    assert scores["loss"] == pytest.approx(expected, rel=1e-4)

    inference = googlenet_without_aux(model)
    np.testing.assert_allclose(inference(x), main, rtol=1e-5, atol=1e-6)
    plain = kerascnn.build_model("googlenet", input_shape=(32, 32, 3), aux_logits=False, **SMALL)
    assert inference.count_params() == plain.count_params()
    inference.save(tmp_path / "inference.keras")
    restored = keras.models.load_model(tmp_path / "inference.keras")
    np.testing.assert_allclose(restored(x), main, rtol=1e-5, atol=1e-6)

    features = kerascnn.build_model("googlenet", input_shape=(32, 32, 3), include_top=False)
    with pytest.raises(ValueError, match="needs a model with a 'predictions' layer"):
        googlenet_without_aux(features)
