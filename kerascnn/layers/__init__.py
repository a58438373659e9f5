"""Reusable blocks and serializable custom layers shared by every architecture."""

from kerascnn.layers.convolution import CONV_KINDS, SpatialSizeError, conv, global_pool, pool
from kerascnn.layers.factories import (
    NORMALIZATIONS,
    activation,
    dropout,
    normalization,
    spatial_dropout,
)
from kerascnn.layers.layer_scale import LayerScale
from kerascnn.layers.local_response_normalization import LocalResponseNormalization
from kerascnn.layers.padding import PADDING_MODES, SpatialPadding
from kerascnn.layers.activations import Maxout
from kerascnn.layers.locally_connected import LocallyConnected1D, LocallyConnected2D
from kerascnn.layers.padding import CeilModePadding
from kerascnn.layers.regularization import (
    DropConnectConv1D,
    DropConnectConv2D,
    DropConnectConv3D,
    DropConnectDense,
    StochasticDepth,
)
from kerascnn.layers.squeeze_excite import squeeze_excite
from kerascnn.layers.whitening import Dirac, PatchWhitening
