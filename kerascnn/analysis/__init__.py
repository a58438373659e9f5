"""Architecture analysis: the inspector, convolution arithmetic, receptive fields, NumPy references."""

from kerascnn.analysis import reference
from kerascnn.analysis.arithmetic import conv_output_size
from kerascnn.analysis.fully_convolutional import to_fully_convolutional
from kerascnn.analysis.inspector import inspect
from kerascnn.analysis.receptive_field import ReceptiveField
from kerascnn.analysis.receptive_field import receptive_field
from kerascnn.analysis.report import ArchitectureReport
from kerascnn.analysis.report import LayerRow
