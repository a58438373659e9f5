"""kerascnn: the classic convolutional networks for Keras 3, built, trained and explained."""

__version__ = "0.1.0"

from kerascnn import layers, models
from kerascnn.models import build_model, list_models
