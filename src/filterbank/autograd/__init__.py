"""Reverse-mode automatic differentiation: ``Function``, grad modes, anomaly mode, ``gradcheck``."""

from filterbank.autograd.anomaly_mode import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from filterbank.autograd.function import Function, unbroadcast
from filterbank.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "detect_anomaly", "enable_grad", "is_anomaly_enabled", "is_grad_enabled",
           "no_grad", "set_detect_anomaly", "set_grad_enabled", "unbroadcast"]
