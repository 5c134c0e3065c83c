"""Layers (modules that own parameters) and the module system."""

from filterbank.nn.container import ModuleDict, ModuleList, Sequential
from filterbank.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
