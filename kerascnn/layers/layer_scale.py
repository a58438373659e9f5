"""Layer scale: a learned per-channel factor on a residual branch (Touvron et al., 2021)."""

import keras

from kerascnn.errors import InputError


@keras.saving.register_keras_serializable(package="kerascnn")
class LayerScale(keras.layers.Layer):
    """Multiplies each channel of a channels-last tensor by a learned scale.

    Initialised small, the scales let a deep residual network start close to the identity
    (CaiT, Touvron et al., 2021; ConvNeXt uses 1e-6). One scale per channel, shared by every
    position, so it serves 1D, 2D and 3D maps alike.

    Args:
        init_value: initial value of every scale; a positive number.
        **kwargs: the arguments of `keras.layers.Layer`.

    Raises:
        ValueError: `init_value` is not a positive number.
    """

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        number = isinstance(init_value, (int, float)) and not isinstance(init_value, bool)
        if not number or init_value <= 0:
            raise InputError(
                f"LayerScale init_value must be a positive number such as 1e-6; got {init_value!r}."
            )
        self.init_value = init_value

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
        )

    def call(self, x):
        return x * self.gamma

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}
