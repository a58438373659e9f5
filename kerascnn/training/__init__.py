"""Training: recipes as data, schedules, optimizers, crash-safe checkpoints, distribution,
and `fit`, a training job's steps (`kerascnn.train` adds the test report and the run record)."""

from kerascnn.training.distribute import get_strategy
from kerascnn.training.loop import Clock, Fitted, Job, fit
from kerascnn.training.optimizers import L2SGD, build_optimizer
from kerascnn.training.recipes import RECIPES, Recipe, get_recipe
from kerascnn.training.schedules import OneCycle, Triangle
