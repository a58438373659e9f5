"""kerascnn: the classic convolutional networks for Keras 3, built, trained and explained.

    >>> import kerascnn
    >>> kerascnn.list_models("resnet*")
    >>> model = kerascnn.build_model("resnet18", input_shape=(28, 28, 1), num_classes=10)
    >>> print(kerascnn.inspect(model).to_text())
    >>> result = kerascnn.train("lenet5", "digits", out="runs/lenet5")
    >>> report = kerascnn.evaluate("runs/lenet5/model.keras", "digits", out="runs/lenet5/eval")

Importing kerascnn alone is cheap: each public name imports its module (and with it Keras
and TensorFlow) on first use, so `kerascnn --help` answers without loading TensorFlow. Saved
kerascnn models hold kerascnn's own layers, which Keras finds once they are registered:
`import kerascnn` registers them when Keras is already imported (`import keras` first, as
isort orders them), and so does the first use of any public name.
"""

import importlib
import sys

__version__ = "0.1.0"

# The packages whose modules register Keras serializables (layers, preprocessing,
# augmentation, schedules, fine-tuning layers) that saved models refer to by name.
_KERAS_OBJECTS = (
    "kerascnn.layers",
    "kerascnn.data",
    "kerascnn.training",
    "kerascnn.evaluation",
    "kerascnn.transfer",
)

# Public name -> the module that defines it (a name equal to its module's last part is the
# module itself).
_LAZY = {
    "analysis": "kerascnn.analysis",
    "data": "kerascnn.data",
    "evaluation": "kerascnn.evaluation",
    "layers": "kerascnn.layers",
    "models": "kerascnn.models",
    "training": "kerascnn.training",
    "tuning": "kerascnn.tuning",
    "transfer": "kerascnn.transfer",
    "conv_output_size": "kerascnn.analysis",
    "inspect": "kerascnn.analysis",
    "receptive_field": "kerascnn.analysis",
    "reference": "kerascnn.analysis",
    "to_fully_convolutional": "kerascnn.analysis",
    "evaluate": "kerascnn.evaluation",
    "build_model": "kerascnn.models",
    "list_models": "kerascnn.models",
    "train": "kerascnn.workflow",
    "TrainResult": "kerascnn.workflow",
    "tune": "kerascnn.tuning",
    "finetune": "kerascnn.transfer",
    "extract_features": "kerascnn.transfer",
}

__all__ = ["__version__", "register_keras_objects", *_LAZY]


def register_keras_objects():
    """Registers kerascnn's layers, schedules and other Keras serializables with Keras.

    `keras.saving.load_model` needs them to read a kerascnn `.keras` file. Importing Keras
    before kerascnn, or using any public name of kerascnn, calls this already.
    """
    for module_name in _KERAS_OBJECTS:
        importlib.import_module(module_name)


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")
    register_keras_objects()
    module = importlib.import_module(module_name)
    value = module if module_name == f"kerascnn.{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})


if "keras" in sys.modules:  # Keras is loaded already: registering costs little more
    register_keras_objects()
