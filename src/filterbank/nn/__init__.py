"""Layers (modules that own parameters) and the module system."""

from filterbank.nn import init
from filterbank.nn import utils
from filterbank.nn import functional  # PyTorch's nn.functional (filterbank.functional itself)
from filterbank.nn.activation import (
    ELU, GELU, SELU, Hardtanh, LeakyReLU, LogSoftmax, Maxout, PReLU, ReLU, ReLU6, Sigmoid, SiLU,
    Softmax, Softplus, Swish, Tanh,
)
from filterbank.nn.container import ModuleDict, ModuleList, Sequential
from filterbank.nn.conv import (
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
)
from filterbank.nn.detection import YOLOv1Loss
from filterbank.nn.dropout import Dropout, Dropout2d
from filterbank.nn.flatten import Flatten, Unflatten
from filterbank.nn.linear import Identity, Linear
from filterbank.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from filterbank.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
from filterbank.nn.norm import (
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
    InstanceNorm3d, LayerNorm, LocalResponseNorm,
)
from filterbank.nn.pool import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, AvgPool3d,
    GlobalAvgPool2d, MaxPool1d, MaxPool2d, MaxPool3d,
)
from filterbank.nn.upsample import Upsample
