"""The pictures the dashboards draw: each layer's activations for one image, the conv filters
and their gradients, top-3 predictions. Small NumPy arrays, sent as base64 of uint8 values
(each array scaled from its own min..max to 0..255) with the shape and the true statistics.
"""

from __future__ import annotations

import base64

import numpy as np

from filterbank import nn
from filterbank.autograd import no_grad
from filterbank.tensor import Tensor

MAX_CHANNELS = 16
"""Channels of a layer's activation shown (the first ones)."""

MAX_FILTERS = 32
"""Filters of a conv layer shown (the first ones), with at most 3 input channels each."""

MAX_UNITS = 256
"""Units of a flat layer (Linear, Flatten) shown."""


def as_uint8(a: np.ndarray) -> dict:
    """``{"shape", "data"}``: ``a`` scaled to 0..255 (its min..max) as base64 bytes."""
    a = np.asarray(a, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = np.zeros(a.shape) if hi <= lo else (np.nan_to_num(a, nan=lo) - lo) / (hi - lo)
    q = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    return {"shape": list(a.shape), "data": base64.b64encode(q.tobytes()).decode("ascii")}


def decode(picture: dict) -> np.ndarray:
    """The uint8 array of :func:`as_uint8` (for tests and clients in Python)."""
    raw = np.frombuffer(base64.b64decode(picture["data"]), dtype=np.uint8)
    return raw.reshape(picture["shape"])


def _stats(a: np.ndarray) -> dict:
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())} if a.size \
        else {"min": None, "max": None, "mean": None}


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules without children, in registration order (those activations are shown)."""
    return [(name, m) for name, m in model.named_modules()
            if name and not any(True for _ in m.children())]


def _eval_forward(model: nn.Module, x: np.ndarray, layers) -> tuple[np.ndarray, dict]:
    """Model output and ``{name: first output}`` of ``layers``, in eval mode without grad; the
    model's train/eval mode is restored (no random numbers are drawn: dropout is off)."""
    got: dict[str, np.ndarray] = {}

    def make_hook(name):
        def hook(module, args, output):
            if name not in got and isinstance(output, Tensor):
                got[name] = output.data
        return hook

    was_training = model.training
    handles = [m.register_forward_hook(make_hook(name)) for name, m in layers]
    try:
        model.eval()
        with no_grad():
            out = model(Tensor(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return np.asarray(out.data), got


def activations(model: nn.Module, image: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Output (one row) and per-layer activations of ``image`` (C, H, W), input first."""
    layers = leaf_layers(model)
    out, got = _eval_forward(model, image[None], layers)
    rows = [{"name": "input", "type": "Input", "shape": list(image.shape), "params": 0,
             **_stats(image), "grid": as_uint8(image[:MAX_CHANNELS])}]
    for name, m in layers:
        a = got.get(name)
        if a is None:
            continue
        a = a[0]
        shown = a[:MAX_CHANNELS] if a.ndim == 3 else a.reshape(-1)[:MAX_UNITS]
        rows.append({"name": name, "type": type(m).__name__, "shape": list(a.shape),
                     "params": int(sum(p.data.size for p in m.parameters())), **_stats(a),
                     "grid": as_uint8(shown)})
    return out[0], rows


def filters(model: nn.Module) -> list[dict]:
    """Every Conv2d's first filters (first 3 input channels) and their gradient sizes."""
    rows = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        w = m.weight.data
        g = None if m.weight.grad is None else m.weight.grad.data
        shown = w[:MAX_FILTERS, :3]
        grad_norm = None if g is None else \
            np.sqrt((g.astype(np.float64) ** 2).reshape(g.shape[0], -1).sum(1))[:MAX_FILTERS]
        rows.append({"name": name, "shape": list(w.shape), **_stats(w),
                     "grid": as_uint8(shown),
                     "grad_norm": None if grad_norm is None else grad_norm.tolist(),
                     "grad": None if g is None else as_uint8(np.abs(g[:MAX_FILTERS, :3]))})
    return rows


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predictions(model: nn.Module, x: np.ndarray, y: np.ndarray | None, k: int = 3) -> list[dict]:
    """Top-``k`` classes and probabilities of each image of ``x`` (eval mode, no grad)."""
    out, _ = _eval_forward(model, x, [])
    probs = softmax(out.reshape(len(x), -1))
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = []
    for i in range(len(x)):
        row = {"top": top[i].tolist(), "probs": probs[i, top[i]].tolist()}
        if y is not None:
            row["label"] = int(y[i])
            row["correct"] = bool(top[i, 0] == y[i])
        rows.append(row)
    return rows
