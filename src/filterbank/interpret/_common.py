"""What every interpretation method needs: the input as a float32 batch, the model in eval
mode with its parameters frozen for the call, model errors re-raised with context, and the
target classes checked."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np

from filterbank.nn.conv import Conv2d
from filterbank.nn.module import Module
from filterbank.nn.utils import capture_outputs, find_module
from filterbank.tensor import Tensor


def as_batch(x, where: str, name: str = "x") -> np.ndarray:
    """``x`` (NumPy array or Tensor) as a new float32 (N, C, H, W) array."""
    if isinstance(x, Tensor):
        arr = x.data
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        raise TypeError(f"{where}: expected {name} to be a NumPy array or a Tensor of shape "
                        f"(N, C, H, W), got {type(x).__name__}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{where}: expected a numeric {name}, got dtype {arr.dtype}")
    if arr.ndim != 4:
        hint = " (add a batch axis: x[None])" if arr.ndim == 3 else ""
        raise ValueError(f"{where}: expected {name} of shape (N, C, H, W), got shape "
                         f"{tuple(arr.shape)}{hint}")
    if min(arr.shape) < 1:
        raise ValueError(f"{where}: {name} is empty (shape {tuple(arr.shape)})")
    return np.array(arr, dtype=np.float32, copy=True)


def check_model(model, where: str) -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected model to be an nn.Module, got {type(model).__name__}")
    return model


@contextmanager
def eval_frozen(model: Module) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` on every parameter (so that backward leaves the
    parameters' ``.grad`` alone) for the block; both restored afterwards, module by module."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
        for p, flag in params:
            p.requires_grad = flag


def expected_channels(model: Module) -> int | None:
    """The input channels of the first Conv2d, if the model has one."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            return m.in_channels
    return None


def check_channels(where: str, model: Module, x: Tensor, what: str) -> None:
    channels = expected_channels(model)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{where}: the model takes {channels}-channel images (its first Conv2d "
                         f"has in_channels={channels}), but {what} has {x.shape[1]} channels "
                         f"(shape {tuple(x.shape)})")


def _cannot_take(where, model, x, what, e) -> ValueError:
    return ValueError(f"{where}: the model ({type(model).__name__}) cannot take {what} of "
                      f"shape {tuple(x.shape)}: {type(e).__name__}: {e}")


def run_model(where: str, model: Module, x: Tensor, what: str = "x"):
    """``model(x)``, with any error the model raises re-raised as a ValueError that says which
    function called it with which input (the model's own error is chained)."""
    check_channels(where, model, x, what)
    try:
        return model(x)
    except Exception as e:
        raise _cannot_take(where, model, x, what, e) from e


def capture(where: str, model: Module, layers: Mapping[str, Module], x: Tensor,
            what: str = "x") -> dict:
    """The layers' outputs for input ``x`` (the forward stops after the last one), with the
    model's errors re-raised as in :func:`run_model`."""
    check_channels(where, model, x, what)
    try:
        got = capture_outputs(model, layers, x)
    except Exception as e:
        raise _cannot_take(where, model, x, what, e) from e
    missing = [k for k in layers if k not in got]
    if missing:
        raise ValueError(f"{where}: the layers {missing} were not called by "
                         f"{type(model).__name__}.forward, so they have no output")
    return got


def resolve_layers(model: Module, layers, where: str) -> dict[str, Module]:
    """``{name: module}`` for a layer name / Module or a list of them."""
    if isinstance(layers, str | Module):
        layers = [layers]
    if isinstance(layers, Mapping):
        layers = list(layers)
    if not isinstance(layers, list | tuple) or not layers:
        raise ValueError(f"{where}: expected a layer name, a Module or a non-empty list of "
                         f"them, got {layers!r}")
    out = {}
    for layer in layers:
        name, m = find_module(model, layer, where)
        out[name] = m
    return out


def targets(logits: Tensor, target, where: str) -> np.ndarray:
    """One class index per sample: the argmax of the logits (None), an int for all, or a
    sequence of N ints; each checked against the number of classes."""
    if logits.ndim != 2:
        raise ValueError(f"{where}: expected the model to return (N, classes) scores, got "
                         f"shape {tuple(logits.shape)}")
    n, k = logits.shape
    if target is None:
        return np.argmax(logits.data, axis=1).astype(np.int64)
    if isinstance(target, Tensor):
        target = target.data
    t = np.asarray(target)
    if t.dtype.kind not in "iu" or t.ndim > 1:
        raise TypeError(f"{where}: target must be None, an int or a sequence of ints, got "
                        f"{target!r}")
    t = np.broadcast_to(t, (n,)) if t.ndim == 0 else t
    if t.shape != (n,):
        raise ValueError(f"{where}: expected {n} targets (one per image), got {t.shape[0]}")
    bad = t[(t < 0) | (t >= k)]
    if bad.size:
        raise ValueError(f"{where}: target class {int(bad[0])} is out of range for a model "
                         f"with {k} classes (0 to {k - 1})")
    return t.astype(np.int64)
