"""Layers (modules that own parameters) and the module system."""

from filterbank.nn.container import ModuleDict, ModuleList, Sequential
from filterbank.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from filterbank.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
