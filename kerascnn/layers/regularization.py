"""Regularisation layers: DropConnect and stochastic depth."""

import keras
from keras import ops

from kerascnn.errors import InputError


def _check_rate(rate, what):
    if not 0.0 <= rate < 1.0:
        raise InputError(f"{what} rate must be in [0, 1); got {rate!r}.")


class _DropConnect:
    """DropConnect on a Keras layer's kernel, shared by `DropConnectDense` and the
    `DropConnectConv*D`: listed before the layer's class, it takes `rate` and `seed`, masks
    the kernel while training (see `DropConnectDense`) and calls the layer's
    `_linear(inputs, kernel)`, its output before the activation."""

    def __init__(self, *args, rate=0.5, seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        _check_rate(rate, "DropConnect")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        kernel = self.kernel
        if training and self.rate > 0:
            keep = keras.random.uniform(ops.shape(kernel), seed=self.seed_generator) >= self.rate
            kernel = ops.where(keep, kernel / (1.0 - self.rate), ops.zeros_like(kernel))
        outputs = self._linear(inputs, kernel)
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerascnn")
class DropConnectDense(_DropConnect, keras.layers.Dense):
    """A Dense layer whose weights are zeroed at random during training (Wan et al., 2013).

    Each training step draws one Bernoulli mask over the kernel (shared by the batch) and
    rescales the kept weights by 1 / (1 - rate), so inference uses the plain weights, as
    inverted dropout does.

    Args:
        units: output size.
        rate: probability of dropping each weight.
        seed: seed of the mask generator.
        **kwargs: the arguments of `keras.layers.Dense`.
    """

    def __init__(self, units, rate=0.5, seed=None, **kwargs):
        super().__init__(units, rate=rate, seed=seed, **kwargs)

    def _linear(self, inputs, kernel):
        outputs = ops.matmul(inputs, kernel)
        return outputs + self.bias if self.use_bias else outputs


@keras.saving.register_keras_serializable(package="kerascnn")
class StochasticDepth(keras.layers.Layer):
    """Drops a whole residual branch per example during training (Huang et al., 2016).

    Called on the branch output before it is added to the shortcut; kept branches are scaled
    by 1 / (1 - rate) so inference needs no rescaling (timm's `drop_path`).

    Args:
        rate: probability of dropping the branch.
        seed: seed of the generator.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_rate(rate, "stochastic depth")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = keras.random.uniform(shape, seed=self.seed_generator) >= self.rate
        return ops.where(keep, x / (1.0 - self.rate), ops.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def _drop_connect_conv(base_class):
    """A convolution class whose kernel is masked at random during training (DropConnect)."""

    class DropConnectConv(_DropConnect, base_class):
        def _linear(self, inputs, kernel):
            outputs = self.convolution_op(inputs, kernel)
            if self.use_bias:
                outputs = outputs + ops.reshape(self.bias, (1,) * (self.rank + 1) + (self.filters,))
            return outputs

    rank = base_class.__name__[-2]
    DropConnectConv.__name__ = DropConnectConv.__qualname__ = f"DropConnectConv{rank}D"
    DropConnectConv.__doc__ = (
        f"A Conv{rank}D whose kernel weights are zeroed at random during training (Wan et al., "
        "2013): one Bernoulli mask per step over the kernel, kept weights scaled by "
        "1 / (1 - rate), plain weights at inference. Channels-last.\n\n"
        "    Args:\n        rate: probability of dropping each weight.\n"
        "        seed: seed of the mask generator.\n"
        f"        *args, **kwargs: the arguments of `keras.layers.Conv{rank}D`.\n"
    )
    return keras.saving.register_keras_serializable(package="kerascnn")(DropConnectConv)


DropConnectConv1D = _drop_connect_conv(keras.layers.Conv1D)
DropConnectConv2D = _drop_connect_conv(keras.layers.Conv2D)
DropConnectConv3D = _drop_connect_conv(keras.layers.Conv3D)
