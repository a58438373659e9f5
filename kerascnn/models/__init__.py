"""Model builders: one module per family, every model registered by name."""

from kerascnn.models.registry import (
    ModelEntry,
    build_model,
    get_model_entry,
    list_models,
    minimum_input_size,
)
from kerascnn.models.lenet import lenet1, lenet5
