"""Which pixels made the model decide: gradient saliency and Grad-CAM."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from filterbank.functional.upsample import interpolate
from filterbank.interpret._common import (
    as_batch,
    check_model,
    eval_frozen,
    run_model,
    targets,
)
from filterbank.nn.module import Module
from filterbank.nn.utils import find_module
from filterbank.tensor import Tensor


def _select(logits: Tensor, t: np.ndarray) -> Tensor:
    """``sum_n logits[n, t_n]``: one backward gives every sample's own gradient (the samples
    do not interact in eval mode)."""
    onehot = np.zeros(logits.shape, logits.dtype)
    onehot[np.arange(len(t)), t] = 1
    return (logits * Tensor(onehot, dtype=logits.dtype)).sum()


def saliency(model: Module, x, target=None, abs: bool = True) -> np.ndarray:  # noqa: A002
    """Vanilla gradient saliency (Simonyan et al., 2014): how much each input value moves the
    target class's score.

    ``S[n] = d y[n, t_n] / d x[n]`` where ``y = model(x)`` are the scores (logits) and ``t_n``
    the target class; ``|S|`` by default, as Captum's ``Saliency``. The model runs in eval mode
    (restored afterwards) and its parameters' ``.grad`` are left untouched.

    Args:
        model: a classifier returning (N, classes) scores.
        x: images, a NumPy array or Tensor of shape (N, C, H, W) (used as float32).
        target: None (each sample's predicted class), an int (the same class for all) or a
            sequence of N ints.
        abs: return the absolute value of the gradient. Default: True.

    Returns:
        A float32 array of the shape of ``x``.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> from filterbank.interpret import saliency
        >>> net = fb.nn.Sequential(fb.nn.Flatten(), fb.nn.Linear(4, 2))
        >>> s = saliency(net, np.ones((1, 1, 2, 2), np.float32), target=1)
        >>> np.allclose(s.ravel(), np.abs(net[1].weight.detach().numpy()[1]))
        True
    """
    where = "saliency"
    check_model(model, where)
    arr = as_batch(x, where)
    with eval_frozen(model):
        xt = Tensor(arr, requires_grad=True)
        logits = run_model(where, model, xt)
        t = targets(logits, target, where)
        _select(logits, t).backward()
    g = xt.grad.data if xt.grad is not None else np.zeros_like(arr)
    return np.abs(g) if abs else g


class GradCAMResult(NamedTuple):
    """What :func:`grad_cam` returns.

    heatmap: (N, H, W) float32 in [0, 1], the map resized to the input and min-max scaled
        per image (all zeros where the map is constant).
    raw: (N, h, w) float32, ``ReLU(sum_k w_k A_k)`` at the layer's resolution, unscaled.
    target: (N,) int64, the class each map explains.
    """

    heatmap: np.ndarray
    raw: np.ndarray
    target: np.ndarray


def grad_cam(model: Module, layer: str | Module, x, target=None) -> GradCAMResult:
    """Grad-CAM (Selvaraju et al., 2017): where in the image a convolutional layer saw
    evidence for the target class.

    With ``A`` the layer's output (N, K, h, w) and ``y_t`` the target class's score::

        w[n, k]    = mean_(i, j) d y_t[n] / d A[n, k, i, j]      (global-average gradients)
        raw[n]     = ReLU(sum_k w[n, k] A[n, k])                 (N, h, w)
        heatmap[n] = minmax(resize(raw[n], (H, W)))              (N, H, W), in [0, 1]

    ``resize`` is bilinear with half-pixel centres (``align_corners=False``, what OpenCV's
    ``cv2.resize`` in pytorch-grad-cam does); ``minmax(m) = (m - min m) / (max m - min m)``,
    or zeros for a constant map. The model runs in eval mode (restored afterwards); the
    parameters' ``.grad`` are left untouched.

    Args:
        model: a classifier returning (N, classes) scores.
        layer: the layer's ``named_modules()`` name (``"features.3"``) or the Module itself;
            its output must be a 4-D feature map. The last convolutional block usually gives
            the most class-specific maps.
        x: images, a NumPy array or Tensor of shape (N, C, H, W).
        target: None (each sample's predicted class), an int or a sequence of N ints.

    Returns:
        :class:`GradCAMResult` ``(heatmap, raw, target)``.

    Raises:
        ValueError: an unknown layer (the valid names are listed), a layer whose output is
            not 4-D, a target out of range, or an input the model cannot take.

    Shape:
        ``x (N, C, H, W) -> heatmap (N, H, W), raw (N, h, w)`` with ``(h, w)`` the layer's
        output size.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> from filterbank.interpret import grad_cam
        >>> net = fb.nn.Sequential(fb.nn.Conv2d(1, 4, 3), fb.nn.ReLU(),
        ...                        fb.nn.GlobalAvgPool2d(), fb.nn.Flatten(), fb.nn.Linear(4, 3))
        >>> cam = grad_cam(net, "1", np.random.default_rng(0).random((2, 1, 8, 8)), target=0)
        >>> cam.heatmap.shape, cam.raw.shape, cam.target.tolist()
        ((2, 8, 8), (2, 6, 6), [0, 0])
    """
    where = "grad_cam"
    check_model(model, where)
    name, module = find_module(model, layer, where)
    arr = as_batch(x, where)
    seen: dict[str, object] = {}

    def hook(m, args, out):
        if "A" in seen:  # a layer called twice: Grad-CAM explains its first output
            return None
        seen["A"] = out
        if isinstance(out, Tensor) and out.ndim == 4:
            # the rest of the network runs from a leaf copy, so backward stops here and its
            # .grad is dy/dA
            leaf = Tensor(out.data, requires_grad=True, dtype=out.dtype)
            seen["leaf"] = leaf
            return leaf
        return None

    with eval_frozen(model), module.register_forward_hook(hook):
        logits = run_model(where, model, Tensor(arr))
        if "A" not in seen:
            raise ValueError(f"{where}: layer {name!r} was not called by "
                             f"{type(model).__name__}.forward")
        if "leaf" not in seen:
            out = seen["A"]
            what = (f"a {out.ndim}-D output of shape {tuple(out.shape)}"
                    if isinstance(out, Tensor) else f"a {type(out).__name__}")
            raise ValueError(f"{where}: layer {name!r} ({type(module).__name__}) gives {what}, "
                             f"not a 4-D (N, C, H, W) feature map; pick a convolutional layer")
        t = targets(logits, target, where)
        leaf = seen["leaf"]
        if logits.requires_grad:
            _select(logits, t).backward()
    act = leaf.data.astype(np.float32)
    grad = (leaf.grad.data if leaf.grad is not None else np.zeros_like(leaf.data))
    weights = grad.astype(np.float32).mean(axis=(2, 3))                      # (N, K)
    raw = np.maximum(np.einsum("nk,nkij->nij", weights, act), 0).astype(np.float32)
    up = interpolate(Tensor(raw[:, None]), size=tuple(arr.shape[2:]), mode="bilinear",
                     align_corners=False).data[:, 0]
    lo = up.min(axis=(1, 2), keepdims=True)
    span = up.max(axis=(1, 2), keepdims=True) - lo
    heat = np.divide(up - lo, span, out=np.zeros_like(up), where=span > 0).astype(np.float32)
    return GradCAMResult(heat, raw, t)
