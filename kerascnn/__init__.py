"""kerascnn: the classic convolutional networks for Keras 3, built, trained and explained.

    >>> import kerascnn
    >>> kerascnn.list_models("resnet*")
    >>> model = kerascnn.build_model("resnet18", input_shape=(28, 28, 1), num_classes=10)
    >>> print(kerascnn.inspect(model).to_text())
    >>> result = kerascnn.train("lenet5", "digits", out="runs/lenet5")
    >>> report = kerascnn.evaluate("runs/lenet5/model.keras", "digits", out="runs/lenet5/eval")
"""

__version__ = "0.1.0"

from kerascnn import data, layers, models, training
from kerascnn.analysis import (
    conv_output_size,
    inspect,
    receptive_field,
    reference,
    to_fully_convolutional,
)
from kerascnn.evaluation import evaluate
from kerascnn.models import build_model, list_models
from kerascnn.training import train
