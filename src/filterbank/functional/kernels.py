"""Classic image-processing kernels and how to apply them with ``conv2d``.

Every kernel is a small float32 ``(kH, kW)`` array, applied as deep-learning libraries apply
weights: by cross-correlation, ``y[i, j] = sum_(p, q) k[p, q] x[i + p - cH, j + q - cW]`` with
``(cH, cW)`` the kernel's centre. ``apply_kernel`` filters every channel on its own (a
depthwise ``conv2d``, ``groups = C``) and pads so that the output has the input's size.
``KERNELS`` maps each name to its constructor, for command lines and menus.
"""

from __future__ import annotations

import math

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, is_device_array
from filterbank.functional.conv import conv2d, pad_mode
from filterbank.tensor import Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def identity() -> np.ndarray:
    """The 3x3 kernel that leaves an image unchanged: a 1 at the centre."""
    k = np.zeros((3, 3), np.float32)
    k[1, 1] = 1
    return k


def box_blur(size: int = 3) -> np.ndarray:
    """The mean of a ``size x size`` neighbourhood: ``k[p, q] = 1 / size^2``.

    Args:
        size: the side of the square (a positive int). Default: 3.
    """
    size = _size("box_blur", size)
    return np.full((size, size), 1 / (size * size), np.float32)


def gaussian(size: int = 5, sigma: float | None = None) -> np.ndarray:
    """A normalised Gaussian blur, ``k[p, q] ∝ exp(-((p - c)^2 + (q - c)^2) / (2 sigma^2))``
    with ``c = (size - 1) / 2``, scaled so that the weights sum to 1.

    Args:
        size: the side of the square. Default: 5.
        sigma: the standard deviation in pixels. Default: OpenCV's choice for the size,
            ``0.3 ((size - 1) / 2 - 1) + 0.8``.
    """
    size = _size("gaussian", size)
    if sigma is None:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    sigma = float(sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"gaussian: sigma must be a positive number, got {sigma}")
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(d * d) / (2 * sigma * sigma))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def sharpen() -> np.ndarray:
    """``identity + (identity - 4-neighbour mean) * 4``: the centre minus its 4 neighbours,
    ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``."""
    return np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)


def sobel_x() -> np.ndarray:
    """Horizontal derivative (positive where the image brightens to the right), smoothed
    vertically: ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``. On a ramp ``x[i, j] = a j`` it gives
    ``8 a`` (a central difference ``2 a``, times the smoothing weights' sum 4)."""
    return np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)


def sobel_y() -> np.ndarray:
    """Vertical derivative (positive where the image brightens downwards): ``sobel_x().T``."""
    return np.ascontiguousarray(sobel_x().T)


def laplacian() -> np.ndarray:
    """The discrete Laplacian ``d2/dx2 + d2/dy2``: ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``
    (zero on any linear ramp; responds to edges and spots)."""
    return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def emboss() -> np.ndarray:
    """A directional derivative plus the pixel itself, which makes edges look raised:
    ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``."""
    return np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


#: name -> constructor (called with no arguments for the default kernel)
KERNELS = {
    "identity": identity,
    "box_blur": box_blur,
    "gaussian": gaussian,
    "sharpen": sharpen,
    "sobel_x": sobel_x,
    "sobel_y": sobel_y,
    "laplacian": laplacian,
    "emboss": emboss,
}


def _size(where: str, size) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"{where}: size must be a positive int, got {size!r}")
    return int(size)


def get_kernel(kernel, **kwargs) -> np.ndarray | Tensor:
    """A kernel by name (``KERNELS``, with ``kwargs`` for its constructor) or the given 2-D
    array-like / Tensor itself (checked)."""
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(f"apply_kernel: unknown kernel {kernel!r}; expected one of "
                             f"{', '.join(KERNELS)} or a 2-D array")
        return KERNELS[kernel](**kwargs)
    if kwargs:
        raise TypeError(f"apply_kernel: keyword arguments {sorted(kwargs)} are for named "
                        f"kernels only, got an array kernel")
    k = kernel if isinstance(kernel, Tensor) else np.asarray(kernel)
    if k.ndim != 2 or min(k.shape) < 1 or k.dtype.kind not in "fiub":
        raise ValueError(f"apply_kernel: expected a kernel name or a 2-D numeric (kH, kW) "
                         f"array, got {type(kernel).__name__} of shape {tuple(k.shape)}")
    return k


def apply_kernel(image, kernel, padding_mode: str = "reflect", **kernel_kwargs):
    """Filter every channel of ``image`` with one 2-D kernel, keeping the size.

    ``y[n, c] = x_pad[n, c] ⋆ k`` (cross-correlation, i.e. ``conv2d`` with weight
    ``(C, 1, kH, kW)`` and ``groups = C``), where ``x_pad`` is padded by
    ``((kH - 1) // 2, kH // 2)`` rows and ``((kW - 1) // 2, kW // 2)`` columns.

    Backward (Tensor inputs): that of ``conv2d`` and the padding, so it is differentiable in
    the image and in a Tensor kernel.

    Args:
        image: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``; a NumPy array or a Tensor.
            Integer images (uint8) are converted to float32.
        kernel: a name from :data:`KERNELS` (``"sobel_x"``, ``"gaussian"``, ...) or a 2-D
            array / Tensor.
        padding_mode: how the border is filled: ``"reflect"`` (default; mirrored without
            repeating the edge, OpenCV's default border), ``"replicate"``, ``"circular"`` or
            ``"zeros"``.
        kernel_kwargs: passed to a named kernel's constructor (``size=7, sigma=2.0``).

    Returns:
        The filtered image, of the input's shape, as a Tensor for a Tensor input and a NumPy
        array otherwise (float, in the input's floating dtype).

    Shape:
        ``(*, H, W) -> (*, H, W)``.

    Example:
        >>> import numpy as np
        >>> from filterbank.functional import apply_kernel
        >>> ramp = np.tile(np.arange(5, dtype=np.float32), (4, 1))  # brightens to the right
        >>> apply_kernel(ramp, "sobel_x")[1:-1, 1:-1].tolist()
        [[8.0, 8.0, 8.0], [8.0, 8.0, 8.0]]
    """
    k = get_kernel(kernel, **kernel_kwargs)
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"apply_kernel: padding_mode must be one of {', '.join(_PADDING_MODES)}, "
                         f"got {padding_mode!r}")
    x, as_numpy, shape = _as_nchw(image, "apply_kernel")
    n, c, h, w = x.shape
    kh, kw = k.shape
    pads = (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))
    if padding_mode != "zeros":
        limit = {"reflect": 1, "circular": 0, "replicate": 0}[padding_mode]
        for (lo, hi), size in zip(pads, (h, w)):
            if max(lo, hi) > size - limit:
                raise ValueError(f"apply_kernel: the image ({h}x{w}) is too small for "
                                 f"{padding_mode} padding of a {kh}x{kw} kernel; use "
                                 f"padding_mode='zeros'")
        x = pad_mode(x, pads, padding_mode)
        padding = 0
    else:
        padding = "same"
    if isinstance(k, Tensor):
        weight = k.astype(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    else:
        # made on the host, moved to the image's device (a no-op for NumPy)
        w = np.broadcast_to(np.asarray(k, x.dtype), (c, 1, kh, kw))
        weight = Tensor._wrap(get_array_module(x.data).array(w, dtype=x.dtype))
    y = conv2d(x, weight, padding=padding, groups=c)
    y = y.reshape(shape)
    if not as_numpy:
        return y
    return y.detach().data if is_device_array(y.data) else y.detach().numpy()


class Hypot(Function):
    """``r = sqrt(a^2 + b^2)``; backward ``(g a / r, g b / r)``, and 0 where ``r = 0`` (the
    subgradient PyTorch's ``norm`` uses there, instead of 0/0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.r = get_array_module(a).hypot(a, b)
        return self.r

    def backward(self, g):
        r = self.r
        xp = get_array_module(r)
        scale = xp.where(r != 0, g / xp.where(r != 0, r, 1), 0).astype(r.dtype, copy=False)
        return scale * self.a, scale * self.b


def gradient_magnitude(image, padding_mode: str = "reflect"):
    """The Sobel gradient magnitude ``sqrt(gx^2 + gy^2)``, ``gx``/``gy`` being
    :func:`apply_kernel` with ``sobel_x`` / ``sobel_y``, per channel.

    Backward (Tensor inputs): ``d|g|/dgx = gx / |g|`` (and likewise for ``gy``), taken as 0
    where the image is flat (``|g| = 0``: with the default reflect border that is every
    corner) rather than 0/0.

    Args:
        image: as for :func:`apply_kernel`.
        padding_mode: as for :func:`apply_kernel`. Default: ``"reflect"``.

    Shape:
        ``(*, H, W) -> (*, H, W)``.

    Example:
        >>> import numpy as np
        >>> from filterbank.functional import gradient_magnitude
        >>> ramp = np.add.outer(3 * np.arange(5.0), 4 * np.arange(5.0))  # slopes 3 and 4
        >>> float(gradient_magnitude(ramp)[2, 2])  # 8 * sqrt(3^2 + 4^2)
        40.0
    """
    gx = apply_kernel(image, "sobel_x", padding_mode)
    gy = apply_kernel(image, "sobel_y", padding_mode)
    if isinstance(gx, Tensor):
        return Hypot.apply(gx, gy)
    return get_array_module(gx).hypot(gx, gy)


def _as_nchw(image, where: str):
    """``image`` as a floating (N, C, H, W) Tensor, whether it was a NumPy array, and its
    original shape."""
    as_numpy = not isinstance(image, Tensor)
    if as_numpy:
        arr = image if is_device_array(image) else np.asarray(image)
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{where}: expected a numeric image, got dtype {arr.dtype}")
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        t = Tensor(arr, dtype=arr.dtype) if type(arr) is np.ndarray else Tensor._wrap(arr)
    else:
        t = image if image.dtype.kind == "f" else image.astype(np.float32)
    shape = tuple(t.shape)
    if t.ndim not in (2, 3, 4) or min(shape, default=0) < 1:
        raise ValueError(f"{where}: expected an image of shape (H, W), (C, H, W) or "
                         f"(N, C, H, W), got shape {shape}")
    lead = (1,) * (4 - t.ndim)
    return t.reshape(lead + shape), as_numpy, shape
