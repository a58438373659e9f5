"""Model builders: one module per family, every model registered by name."""

from kerascnn.models.registry import (
    ModelEntry,
    accepts_input,
    build_model,
    get_model_entry,
    list_models,
    minimum_input_size,
)
from kerascnn.models.lenet import lenet1, lenet5
from kerascnn.models.googlenet import googlenet, googlenet_without_aux
from kerascnn.models.mobilenet import mobilenet
from kerascnn.models.resnet import resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, se_resnet50, resnet_rs50
from kerascnn.models.xception import xception
from kerascnn.models.alexnet import alexnet, zfnet
from kerascnn.models.vgg import vgg11, vgg13, vgg16, vgg19
from kerascnn.models.densenet import densenet121, densenet169, densenet201
from kerascnn.models.convnext import convnext_tiny
from kerascnn.models.resnet_v2 import resnet50v2, resnet101v2
from kerascnn.models.resnet9 import resnet9
from kerascnn.models.airbench import airbench94
from kerascnn.models.squeezenet import squeezenet1_0, squeezenet1_1
from kerascnn.models.efficientnet import (
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
)
from kerascnn.models.inception_v3 import inception_v3
