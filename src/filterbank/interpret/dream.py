"""What a unit responds to: activation maximisation and DeepDream, by gradient ascent on the
input image."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from filterbank.functional.kernels import apply_kernel, gaussian
from filterbank.functional.upsample import interpolate
from filterbank.interpret._common import (
    as_batch,
    capture,
    check_model,
    eval_frozen,
    expected_channels,
    resolve_layers,
)
from filterbank.nn.module import Module
from filterbank.nn.utils import find_module
from filterbank.tensor import Tensor


def _roll(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(a, (dy, dx), axis=(2, 3)) if (dy or dx) else a


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    size = max(3, 2 * math.ceil(2 * sigma) + 1)
    size = min(size, 2 * (min(img.shape[2:]) - 1) + 1)  # reflect padding needs a smaller pad
    if size < 3:
        return img
    return apply_kernel(img, gaussian(size, sigma), padding_mode="reflect")


def _infer_size(model: Module, where: str) -> tuple[int, int, int]:
    channels = expected_channels(model)
    if channels is None:
        raise ValueError(f"{where}: cannot infer the input size (the model has no Conv2d); "
                         f"pass size=(C, H, W)")
    s = getattr(model, "input_size", 64)
    h, w = (s, s) if isinstance(s, int) else tuple(s)
    return channels, int(h), int(w)


def activation_maximization(model: Module, layer: str | Module, channel: int,
                            size: tuple[int, int, int] | None = None, steps: int = 100,
                            lr: float = 0.05, jitter: int = 2, blur_every: int = 4,
                            blur_sigma: float = 0.5, seed: int = 0) -> np.ndarray:
    """The image that excites one channel of a layer most, found by gradient ascent
    (Erhan et al., 2009; the regularisers of Yosinski et al., 2015).

    Starting from small noise ``x ~ N(0, 0.01^2)``, every step::

        x_j = roll(x, (dy, dx))                      random jitter, |dy|, |dx| <= jitter
        g   = roll(d mean(A_c(x_j)) / d x_j, (-dy, -dx))
        x   = x + lr * g / (rms(g) + 1e-8)           L2-normalised step
        x   = gaussian_blur(x, blur_sigma)           every blur_every steps

    where ``A_c`` is channel ``c`` of the layer's output (a (N, C, H, W) map or (N, C)
    features: then the unit ``c``, e.g. a class logit). Jitter and blur suppress the
    high-frequency patterns that excite a unit without looking like anything. The model
    runs in eval mode and only up to the layer.

    Args:
        model: the network.
        layer: the layer's ``named_modules()`` name or the Module.
        channel: which channel (unit) to maximise.
        size: ``(C, H, W)`` of the image. Default: C from the first Conv2d, H = W from the
            model's ``input_size`` attribute, else 64.
        steps: gradient-ascent steps. Default: 100.
        lr: step size (in units of the normalised gradient). Default: 0.05.
        jitter: largest random shift in pixels (0: none). Default: 2.
        blur_every: blur every that many steps (0: never). Default: 4.
        blur_sigma: standard deviation of the blur in pixels. Default: 0.5.
        seed: seeds the ``np.random.Generator`` of the noise and jitter.

    Returns:
        The image, a float32 array of shape (C, H, W), in the model's input units.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.interpret import activation_maximization
        >>> net = fb.nn.Sequential(fb.nn.Conv2d(3, 8, 3), fb.nn.ReLU())
        >>> activation_maximization(net, "0", channel=5, size=(3, 16, 16), steps=5).shape
        (3, 16, 16)
    """
    where = "activation_maximization"
    check_model(model, where)
    name, module = find_module(model, layer, where)
    if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
        raise TypeError(f"{where}: channel must be an int, got {channel!r}")
    c, h, w = _infer_size(model, where) if size is None else _check_size(size, where)
    steps, jitter, blur_every = (_count(v, n, where) for v, n in
                                 ((steps, "steps"), (jitter, "jitter"), (blur_every, "blur_every")))
    rng = np.random.default_rng(seed)
    img = (rng.standard_normal((1, c, h, w)) * 0.01).astype(np.float32)
    with eval_frozen(model):
        for step in range(steps):
            dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
            xt = Tensor(_roll(img, int(dy), int(dx)), requires_grad=True)
            act = capture(where, model, {name: module}, xt, "the image")[name]
            if step == 0:
                _check_channel(act, channel, name, where)
            act[:, int(channel)].mean().backward()
            g = _roll(xt.grad.data, -int(dy), -int(dx))
            img = img + np.float32(lr) * g / (np.sqrt(np.mean(g * g)) + np.float32(1e-8))
            if blur_every and (step + 1) % blur_every == 0:
                img = _blur(img, blur_sigma)
    return img[0].astype(np.float32)


def deep_dream(model: Module, image, layers, octaves: int = 4, octave_scale: float = 1.4,
               steps: int = 10, step_size: float = 1.5, jitter: int = 32, seed: int = 0,
               clip: tuple[float, float] | None = None, return_octaves: bool = False):
    """DeepDream (Mordvintsev, Olah and Tyka, 2015), Google's original recipe: amplify
    whatever the chosen layers already see in the image.

    The objective is ``L = sum_l w_l mean(A_l(x)^2)`` over the layers (the original's L2
    objective, ``dst.diff = dst.data``, averaged so that layers of different sizes weigh
    alike). Each step, per image::

        x_j = roll(x, (dy, dx))                           random jitter in [-jitter, jitter]
        g   = dL/dx_j
        x   = roll(x_j + step_size * g / mean|g|, (-dy, -dx))

    over an octave pyramid: the image is shrunk ``octaves - 1`` times by ``octave_scale``
    (bilinear, corners aligned, as ``scipy.ndimage.zoom(order=1)``); the dream runs from the
    smallest octave up, each octave starting from its base image plus the detail (dream minus
    base) of the previous one, upscaled. The same seed gives the same image bit for bit.

    Args:
        model: the network (in eval mode for the call; only run up to the deepest layer).
        image: (N, C, H, W) NumPy array or Tensor, in the model's input units.
        layers: a layer name or Module, a list of them, or a dict ``{name: weight}``.
        octaves: pyramid levels. Default: 4.
        octave_scale: size ratio between levels. Default: 1.4.
        steps: gradient steps per octave. Default: 10.
        step_size: step length, in units of the mean absolute gradient. Default: 1.5.
        jitter: largest random shift in pixels. Default: 32.
        seed: seeds the ``np.random.Generator`` of the shifts.
        clip: ``(lo, hi)`` to clip the image to after every step (the original clips to the
            valid pixel range), or None. Default: None.
        return_octaves: also return the dream at the end of every octave (smallest first).

    Returns:
        The dreamed image, float32 (N, C, H, W); with ``return_octaves``, the pair
        ``(image, [octave images])``.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> from filterbank.interpret import deep_dream
        >>> net = fb.nn.Sequential(fb.nn.Conv2d(3, 8, 3), fb.nn.ReLU(), fb.nn.Conv2d(8, 8, 3))
        >>> img = np.random.default_rng(0).random((1, 3, 24, 24)).astype(np.float32)
        >>> out, levels = deep_dream(net, img, "2", octaves=2, steps=2, jitter=4,
        ...                          return_octaves=True)
        >>> out.shape, [a.shape[2:] for a in levels]
        ((1, 3, 24, 24), [(17, 17), (24, 24)])
    """
    where = "deep_dream"
    check_model(model, where)
    base = as_batch(image, where, "image")
    named = resolve_layers(model, layers, where)
    weights = {n: 1.0 for n in named}
    if isinstance(layers, Mapping):
        weights = {find_module(model, k, where)[0]: float(v) for k, v in layers.items()}
    octaves, steps, jitter = (_count(v, n, where) for v, n in
                              ((octaves, "octaves"), (steps, "steps"), (jitter, "jitter")))
    if octaves < 1:
        raise ValueError(f"{where}: octaves must be at least 1, got {octaves}")
    if not octave_scale > 1:
        raise ValueError(f"{where}: octave_scale must be greater than 1, got {octave_scale}")
    rng = np.random.default_rng(seed)
    pyramid = [base]
    for _ in range(octaves - 1):
        h, w = pyramid[-1].shape[2:]
        size = (max(1, round(h / octave_scale)), max(1, round(w / octave_scale)))
        pyramid.append(_resize(pyramid[-1], size))
    detail = np.zeros_like(pyramid[-1])
    levels = []
    with eval_frozen(model):
        for i, octave_base in enumerate(reversed(pyramid)):
            if i > 0:
                detail = _resize(detail, octave_base.shape[2:])
            img = octave_base + detail
            what = f"the octave-{i} image"
            for _ in range(steps):
                dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
                xt = Tensor(_roll(img, dy, dx), requires_grad=True)
                acts = capture(where, model, named, xt, what)
                loss = None
                for n, a in acts.items():
                    if not isinstance(a, Tensor) or a.dtype.kind != "f":
                        raise ValueError(f"{where}: layer {n!r} gives a {type(a).__name__}, "
                                         f"not a floating-point Tensor of activations")
                    term = (a * a).mean() * weights[n]
                    loss = term if loss is None else loss + term
                loss.backward()
                g = xt.grad.data
                mean_abs = np.abs(g).mean(axis=(1, 2, 3), keepdims=True)
                step = np.float32(step_size) * g / np.maximum(mean_abs, np.float32(1e-12))
                img = _roll(xt.data + step, -dy, -dx)
                if clip is not None:
                    img = np.clip(img, clip[0], clip[1])
            detail = img - octave_base
            levels.append(img.astype(np.float32))
    out = levels[-1]
    return (out, levels) if return_octaves else out


def _resize(a: np.ndarray, size) -> np.ndarray:
    if tuple(a.shape[2:]) == tuple(size):
        return a.copy()
    return interpolate(Tensor(a), size=tuple(int(s) for s in size), mode="bilinear",
                       align_corners=True).data


def _check_size(size, where) -> tuple[int, int, int]:
    if (not isinstance(size, tuple | list) or len(size) != 3
            or not all(isinstance(s, int | np.integer) and s > 0 for s in size)):
        raise ValueError(f"{where}: size must be (C, H, W), three positive ints, got {size!r}")
    return tuple(int(s) for s in size)


def _count(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{where}: {name} must be a non-negative int, got {value!r}")
    return int(value)


def _check_channel(act, channel: int, name: str, where: str) -> None:
    if not isinstance(act, Tensor) or act.ndim < 2:
        shape = tuple(act.shape) if isinstance(act, Tensor) else type(act).__name__
        raise ValueError(f"{where}: layer {name!r} gives {shape}, not (N, C, ...) activations")
    if not 0 <= channel < act.shape[1]:
        raise ValueError(f"{where}: channel {channel} is out of range for layer {name!r}, "
                         f"which has {act.shape[1]} channels (0 to {act.shape[1] - 1})")
