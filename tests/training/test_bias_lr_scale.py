"""A recipe's bias_lr_scale: the BatchNorm shifts take steps that many times larger, their
weight decay unchanged (airbench's parameter groups), checked against NumPy and on a real
training step on CIFAR-10 JPEGs."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.training import L2SGD, Recipe, network


def test_gradient_scales_multiply_the_loss_gradient_before_the_l2_term():
    rng = np.random.default_rng(0)
    w0, v0, g, h = (rng.normal(size=4).astype("float32") for _ in range(4))
    lr, momentum, l2, scale = 0.1, 0.85, 0.01, 64.0
    w, v = keras.Variable(w0, name="w"), keras.Variable(v0, name="v")
    optimizer = L2SGD(l2=l2, gradient_scales={w.path: scale}, learning_rate=lr,
                      momentum=momentum, nesterov=True)
    for _ in range(3):
        optimizer.apply([keras.ops.convert_to_tensor(g), keras.ops.convert_to_tensor(h)], [w, v])

    def numpy_nesterov(x, gradient, factor):  # Keras' Nesterov form
        velocity = np.zeros_like(x)
        for _ in range(3):
            step = factor * gradient + l2 * x
            velocity = momentum * velocity - lr * step
            x = x + momentum * velocity - lr * step
        return x

    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), numpy_nesterov(w0, g, scale),
                               rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(v), numpy_nesterov(v0, h, 1.0),
                               rtol=1e-5)
    restored = L2SGD.from_config(optimizer.get_config())
    assert restored.gradient_scales == {w.path: scale} and restored.l2 == l2


def test_the_scaled_variables_are_the_batchnorm_shifts_not_the_whitening_bias():
    model = kerascnn.build_model("airbench94")
    expected = [model.get_layer(f"block{b}_norm{i}").beta.path for b in (1, 2, 3) for i in (1, 2)]
    assert sorted(network.bias_paths(model)) == sorted(expected)


def test_bias_lr_scale_is_refused_for_an_optimizer_that_ignores_gradient_scale():
    with pytest.raises(ValueError, match=r"bias_lr_scale=64.0 scales gradients, which only SGD "
                                         r"follows.*optimizer='adam'"):
        Recipe(optimizer="adam", bias_lr_scale=64.0)
    with pytest.raises(ValueError, match="bias_lr_scale"):
        Recipe(optimizer="sgd", bias_lr_scale=0)


def test_one_training_step_moves_the_biases_scale_times_further_and_nothing_else(cifar10_slice):
    """One full-batch step from the same start: the shifts (zero at the start, so no decay yet)
    move exactly 64 times as far with bias_lr_scale=64; every other weight moves the same."""
    def one_step(scale):
        result = kerascnn.train("airbench94", str(cifar10_slice), recipe="airbench94",
                                bias_lr_scale=scale, epochs=1, batch_size=200, augment=None,
                                tta=None, precision="float32", validation_split=0, verbose=0)
        backbone = result.model.get_layer("airbench94")
        return {f"{layer.name}/{w.name}": keras.ops.convert_to_numpy(w)
                for layer in backbone.layers for w in layer.trainable_weights}

    scaled, plain = one_step(64.0), one_step(1.0)
    biases = {f"block{b}_norm{i}/beta" for b in (1, 2, 3) for i in (1, 2)}
    # and the whitening's bias at the plain rate, 6 convolutions, 1 classifier
    assert biases | {"whiten/bias"} < set(scaled) and len(scaled) == 14
    for path, value in scaled.items():
        if path in biases:
            assert np.abs(plain[path]).max() > 0
            np.testing.assert_allclose(value, 64 * plain[path], rtol=1e-3, atol=1e-7)
        else:
            np.testing.assert_allclose(value, plain[path], rtol=1e-4, atol=1e-6)
