"""Training: recipes as data, schedules, crash-safe checkpoints, distribution, `train`."""

from kerascnn.training.distribute import get_strategy
from kerascnn.training.loop import TrainResult, train
from kerascnn.training.recipes import RECIPES, Recipe, get_recipe
from kerascnn.training.schedules import OneCycle
