"""Reverse-mode automatic differentiation: ``Function``, grad modes and ``gradcheck``."""

from filterbank.autograd.function import Function, unbroadcast
from filterbank.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled",
           "unbroadcast"]
