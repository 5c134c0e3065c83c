"""Image transforms and data augmentation, for single images and whole batches.

Layouts: :class:`ToTensor` takes uint8 images in HWC layout (``(H, W)``, ``(H, W, C)`` or a
batch ``(N, H, W, C)``) and returns float32 CHW / NCHW in [0, 1]. Every other transform works
channels-first: a ``(C, H, W)`` image or an ``(N, C, H, W)`` batch (``(H, W)`` is one grey
image). Random transforms draw independent parameters for every image of a batch and apply them
with vectorised NumPy (one gather or one ``np.where`` over the batch), never a loop over
images. The dtype is preserved (float32 stays float32). Inputs may be NumPy arrays or Tensors;
the output has the same kind.

Randomness: a transform built with ``generator=`` draws from it; otherwise it draws from the
generator passed at call time (the :class:`~filterbank.data.DataLoader` passes its own), else
from the global one (``fb.manual_seed``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from filterbank import random as _random
from filterbank.tensor import Tensor


class Transform:
    """Base class: subclasses implement ``forward(x, rng, batched)`` on a NumPy array.

    ``__call__(x, generator=None, batched=None)``: ``batched=True`` says a 3-d array is a
    batch of single-channel images ``(N, H, W)`` rather than one ``(C, H, W)`` image (the
    DataLoader passes it); ``None`` decides from ``x.ndim``.
    """

    generator: np.random.Generator | None = None

    def __call__(self, x, generator: np.random.Generator | None = None,
                 batched: bool | None = None):
        rng = self.generator if self.generator is not None else _random.resolve(generator)
        is_tensor = isinstance(x, Tensor)
        arr = x.data if is_tensor else np.asarray(x)
        out = self.forward(arr, rng, batched)
        return Tensor._wrap(out) if is_tensor and not isinstance(out, Tensor) else out

    def forward(self, x: np.ndarray, rng: np.random.Generator, batched: bool | None):
        raise NotImplementedError  # pragma: no cover

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _to_nchw(x: np.ndarray, batched: bool | None, where: str):
    """View ``x`` as an NCHW batch; return it and the function that restores the layout."""
    if x.ndim == 4:
        return x, lambda y: y
    if x.ndim == 3:
        if batched:
            return x[:, None], lambda y: y[:, 0]
        return x[None], lambda y: y[0]
    if x.ndim == 2 and not batched:
        return x[None, None], lambda y: y[0, 0]
    raise ValueError(f"{where}: expected a (C, H, W) image or an (N, C, H, W) batch, got shape "
                     f"{x.shape}")


def _pair(v, name: str, where: str) -> tuple:
    if isinstance(v, int | float | np.integer | np.floating):
        return (v, v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"{where}: {name} must be a number or a pair, got {v}")
    return v


def _fill_array(fill, c: int, dtype, where: str) -> np.ndarray:
    """``fill`` as a (1, C, 1, 1) array (a number, or one value per channel)."""
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    if f.size not in (1, c):
        raise ValueError(f"{where}: fill/value needs 1 or {c} values for {c} channels, got "
                         f"{f.size}")
    return np.broadcast_to(f, (c,)).astype(dtype).reshape(1, c, 1, 1)


class Compose(Transform):
    """Apply transforms one after the other.

    Args:
        transforms: list of transforms (or plain callables taking one argument).

    Example:
        >>> t = Compose([ToTensor(), Normalize((0.5,), (0.5,))])
        >>> t(np.full((4, 4), 255, np.uint8)).shape
        (1, 4, 4)
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: expected callables, got {type(t).__name__}")

    def __call__(self, x, generator: np.random.Generator | None = None,
                 batched: bool | None = None):
        for t in self.transforms:
            x = t(x, generator=generator, batched=batched) if isinstance(t, Transform) else t(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose({inner}\n)"


class Lambda(Transform):
    """Wrap a function of one array as a transform."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, x, rng, batched):
        return self.fn(x)


class ToTensor(Transform):
    """uint8 HWC image(s) -> float32 CHW Tensor in [0, 1].

    ``y = x / 255`` for uint8 input (other dtypes are converted to float32 unscaled), with the
    channel axis moved first.

    Shape:
        ``(H, W) -> (1, H, W)``, ``(H, W, C) -> (C, H, W)``, ``(N, H, W, C) -> (N, C, H, W)``;
        with ``batched=True`` a 3-d input is ``(N, H, W) -> (N, 1, H, W)``.

    Example:
        >>> ToTensor()(np.full((2, 2, 3), 255, np.uint8)).shape
        (3, 2, 2)
    """

    def forward(self, x, rng, batched):
        if x.ndim == 2 and not batched:
            y = x[None]
        elif x.ndim == 3 and batched:
            y = x[:, None]
        elif x.ndim == 3:
            y = x.transpose(2, 0, 1)
        elif x.ndim == 4:
            y = x.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"ToTensor: expected an (H, W), (H, W, C) image or an "
                             f"(N, H, W, C) batch, got shape {x.shape}")
        out = np.ascontiguousarray(y, dtype=np.float32)
        if x.dtype == np.uint8:
            np.divide(out, np.float32(255), out=out)
        return Tensor._wrap(out)


class Normalize(Transform):
    """Per-channel standardisation: ``y[c] = (x[c] - mean[c]) / std[c]``.

    Args:
        mean: one value per channel (or one for all).
        std: one value per channel (or one for all); must be non-zero.

    Shape:
        ``(C, H, W)`` or ``(N, C, H, W)``, unchanged. Floating input only (use ToTensor first).

    Example:
        >>> Normalize((0.5,), (0.25,))(np.ones((1, 2, 2), np.float32))[0, 0, 0]
        np.float32(2.0)
    """

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float,
                 inplace: bool = False):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.size == 0 or self.std.size == 0:
            raise ValueError("Normalize: mean and std need at least one value")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")
        self.inplace = inplace

    def forward(self, x, rng, batched):
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a floating-point image (apply ToTensor "
                            f"first), got dtype {x.dtype}")
        b, restore = _to_nchw(x, batched, repr(self))
        c = b.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(f"{self!r}: {name} has {v.size} values, but the input has "
                                 f"{c} channels (input shape {x.shape})")
        m = np.broadcast_to(self.mean, (c,)).astype(x.dtype).reshape(1, c, 1, 1)
        s = np.broadcast_to(self.std, (c,)).astype(x.dtype).reshape(1, c, 1, 1)
        if self.inplace and x.flags.writeable:
            np.subtract(b, m, out=b)
            np.divide(b, s, out=b)
            return x
        return restore((b - m) / s)

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}"


class RandomCrop(Transform):
    """Crop a random ``size`` window from each image, after optional padding.

    Each image of a batch gets its own offset; all crops are one gather over a strided
    window view of the padded batch.

    Args:
        size: output (h, w), or an int for a square.
        padding: pixels added before cropping: an int (all sides), (left/right, top/bottom) or
            (left, top, right, bottom). Default None.
        pad_if_needed: pad images smaller than ``size`` (as torchvision).
        fill: constant for ``padding_mode='constant'`` (number or one per channel).
        padding_mode: 'constant', 'edge', 'reflect' or 'symmetric' (as ``np.pad``).
        generator: own random generator (see the module docstring).

    Shape:
        ``(N, C, H, W) -> (N, C, h, w)`` (or one ``(C, H, W)`` image).

    Example:
        >>> RandomCrop(28, padding=4, generator=np.random.default_rng(0))(
        ...     np.zeros((8, 1, 28, 28), np.float32)).shape
        (8, 1, 28, 28)
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0,
                 padding_mode: str = "constant", generator: np.random.Generator | None = None):
        self.size = tuple(int(s) for s in _pair(size, "size", "RandomCrop"))
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop: size must be positive, got {self.size}")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: padding_mode must be 'constant', 'edge', 'reflect' "
                             f"or 'symmetric', got {padding_mode!r}")
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, int):
            pad = (padding,) * 4
        elif len(padding) == 2:
            pad = (padding[0], padding[1], padding[0], padding[1])
        elif len(padding) == 4:
            pad = tuple(padding)
        else:
            raise ValueError(f"RandomCrop: padding must be an int or a sequence of 2 or 4 ints, "
                             f"got {padding!r}")
        if min(pad) < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, got {padding!r}")
        self.padding = pad  # left, top, right, bottom
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def _pad(self, b, left, top, right, bottom):
        if not (left or top or right or bottom):
            return b
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        if self.padding_mode != "constant":
            return np.pad(b, widths, mode=self.padding_mode)
        fill = _fill_array(self.fill, b.shape[1], b.dtype, repr(self))
        out = np.empty(b.shape[:2] + (b.shape[2] + top + bottom, b.shape[3] + left + right),
                       b.dtype)
        out[...] = fill
        out[:, :, top:top + b.shape[2], left:left + b.shape[3]] = b
        return out

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        b = self._pad(b, *self.padding)
        h, w = self.size
        if self.pad_if_needed and b.shape[2] < h:
            d = h - b.shape[2]
            b = self._pad(b, 0, d, 0, d)
        if self.pad_if_needed and b.shape[3] < w:
            d = w - b.shape[3]
            b = self._pad(b, d, 0, d, 0)
        n, c, hp, wp = b.shape
        if hp < h or wp < w:
            raise ValueError(f"{self!r}: crop size {(h, w)} is larger than the padded image "
                             f"{(hp, wp)} (input shape {x.shape})")
        top = rng.integers(0, hp - h + 1, size=n)
        left = rng.integers(0, wp - w + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(b, (h, w), axis=(2, 3))
        # advanced indices around a slice: the batch axis comes first, giving (N, C, h, w)
        out = windows[np.arange(n), :, top, left]
        return restore(out)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}"


class _RandomFlip(Transform):
    axis: int

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        flip = rng.random(b.shape[0]) < self.p
        flipped = np.flip(b, axis=self.axis)
        return restore(np.where(flip[:, None, None, None], flipped, b))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right with probability ``p`` (independently per image).

    Args:
        p: flip probability (default 0.5).
        generator: own random generator (see the module docstring).

    Example:
        >>> RandomHorizontalFlip(p=1.0)(np.arange(3.0, dtype=np.float32).reshape(1, 1, 3))
        array([[[2., 1., 0.]]], dtype=float32)
    """

    axis = 3


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image top-bottom with probability ``p`` (independently per image).

    Args:
        p: flip probability (default 0.5).
        generator: own random generator (see the module docstring).
    """

    axis = 2


class RandomAffine(Transform):
    """Random rotation, translation and scaling about the image centre, one map per image.

    For each output pixel ``p`` the source position is the inverse map
    ``q = S^-1 R(-angle) (p - c - t) + c`` (``c`` the centre, ``t`` the translation, positive
    angles rotate counter-clockwise as displayed), sampled with ``'nearest'`` or
    ``'bilinear'`` interpolation; positions outside the image get ``fill``. All images of a
    batch are resampled by one fancy-indexing gather.

    Args:
        degrees: angle range in degrees: a number d for (-d, d), or (min, max).
        translate: maximal shift as fractions of (width, height), e.g. (0.1, 0.1); shifts are
            rounded to whole pixels (as torchvision). Default None (no shift).
        scale: (min, max) scale factor range. Default None (1).
        interpolation: 'nearest' or 'bilinear'.
        fill: value for pixels mapped from outside the image (number or one per channel).
        generator: own random generator (see the module docstring).

    Shape:
        ``(N, C, H, W)`` or ``(C, H, W)``, unchanged.

    Example:
        >>> x = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
        >>> RandomAffine(degrees=(90, 90))(x)     # counter-clockwise quarter turn
        array([[[1., 3.],
                [0., 2.]]], dtype=float32)
    """

    def __init__(self, degrees, translate=None, scale=None, interpolation: str = "nearest",
                 fill=0, generator: np.random.Generator | None = None):
        d = _pair(degrees, "degrees", "RandomAffine")
        self.degrees = (-abs(float(d[0])), abs(float(d[0]))) if np.isscalar(degrees) \
            else (float(d[0]), float(d[1]))
        if self.degrees[0] > self.degrees[1]:
            raise ValueError(f"RandomAffine: degrees must be (min, max) with min <= max, got "
                             f"{degrees}")
        if translate is not None:
            translate = tuple(float(t) for t in _pair(translate, "translate", "RandomAffine"))
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translate fractions must be in [0, 1], got "
                                 f"{translate}")
        if scale is not None:
            scale = tuple(float(s) for s in _pair(scale, "scale", "RandomAffine"))
            if not 0 < scale[0] <= scale[1]:
                raise ValueError(f"RandomAffine: scale must be (min, max) with 0 < min <= max, "
                                 f"got {scale}")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"RandomAffine: interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")
        self.translate = translate
        self.scale = scale
        self.interpolation = interpolation
        self.fill = fill
        self.generator = generator

    def _params(self, rng, n, h, w):
        angle = np.deg2rad(rng.uniform(self.degrees[0], self.degrees[1], size=n))
        if self.translate is not None:
            tx = np.round(rng.uniform(-1, 1, size=n) * self.translate[0] * w)
            ty = np.round(rng.uniform(-1, 1, size=n) * self.translate[1] * h)
        else:
            tx = ty = np.zeros(n)
        s = rng.uniform(*self.scale, size=n) if self.scale is not None else np.ones(n)
        return angle, tx, ty, s

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        n, c, h, w = b.shape
        angle, tx, ty, s = self._params(rng, n, h, w)
        cos = (np.cos(angle) / s).astype(np.float32)[:, None, None]
        sin = (np.sin(angle) / s).astype(np.float32)[:, None, None]
        cx, cy = np.float32((w - 1) / 2), np.float32((h - 1) / 2)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        du = xs[None] - cx - tx.astype(np.float32)[:, None, None]
        dv = ys[None] - cy - ty.astype(np.float32)[:, None, None]
        src_x = cos * du - sin * dv + cx  # (N, H, W)
        src_y = sin * du + cos * dv + cy
        flat = b.reshape(n, c, h * w)
        fill = _fill_array(self.fill, c, np.float32, repr(self)).reshape(1, c, 1)

        def gather(xi, yi):
            valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            lin = (np.clip(yi, 0, h - 1) * w + np.clip(xi, 0, w - 1)).reshape(n, 1, h * w)
            vals = np.take_along_axis(flat, np.broadcast_to(lin, (n, c, h * w)), axis=2)
            return vals, valid.reshape(n, 1, h * w)

        if self.interpolation == "nearest":
            xi = np.floor(src_x + 0.5).astype(np.int64)
            yi = np.floor(src_y + 0.5).astype(np.int64)
            vals, valid = gather(xi, yi)
            out = np.where(valid, vals, fill.astype(b.dtype))
        else:
            x0f, y0f = np.floor(src_x), np.floor(src_y)
            wx = (src_x - x0f).reshape(n, 1, h * w)
            wy = (src_y - y0f).reshape(n, 1, h * w)
            x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
            acc = np.zeros((n, c, h * w), np.float32)
            for dx, dy, wgt in ((0, 0, (1 - wx) * (1 - wy)), (1, 0, wx * (1 - wy)),
                                (0, 1, (1 - wx) * wy), (1, 1, wx * wy)):
                vals, valid = gather(x0 + dx, y0 + dy)
                acc += wgt * np.where(valid, vals.astype(np.float32, copy=False), fill)
            if b.dtype.kind in "iu":
                info = np.iinfo(b.dtype)
                acc = np.clip(np.rint(acc), info.min, info.max)
            out = acc.astype(b.dtype, copy=False)
        return restore(out.reshape(n, c, h, w))

    def extra_repr(self) -> str:
        return (f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"interpolation={self.interpolation!r}")


class RandomErasing(Transform):
    """Erase a random rectangle in each image with probability ``p`` (Zhong et al., 2017).

    Per image: an area fraction from ``scale`` and an aspect ratio from ``ratio`` (log-uniform)
    give the rectangle; up to 10 draws are tried until it fits (as torchvision), otherwise the
    image is left unchanged. The rectangles of a whole batch become one mask and one
    ``np.where``.

    Args:
        p: probability that an image is erased.
        scale: range of the erased area as a fraction of the image area.
        ratio: range of the rectangle's aspect ratio h / w.
        value: fill value: a number, one per channel, or 'random' (standard normal noise).
        inplace: accepted for torchvision compatibility; a new array is always returned.
        generator: own random generator (see the module docstring).

    Shape:
        ``(N, C, H, W)`` or ``(C, H, W)``, unchanged.
    """

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0,
                 inplace: bool = False, generator: np.random.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p}")
        scale, ratio = tuple(scale), tuple(ratio)
        if len(scale) != 2 or not 0 <= scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomErasing: scale must be (min, max) within [0, 1], got "
                             f"{scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomErasing: ratio must be (min, max) with 0 < min <= max, "
                             f"got {ratio}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', "
                             f"got {value!r}")
        self.p, self.scale, self.ratio, self.value = p, scale, ratio, value
        self.inplace = inplace
        self.generator = generator

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        n, c, h, w = b.shape
        tries = 10
        apply = rng.random(n) < self.p
        area = h * w * rng.uniform(self.scale[0], self.scale[1], size=(n, tries))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                    size=(n, tries)))
        eh = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        ew = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (eh < h) & (ew < w)
        first = np.argmax(fits, axis=1)
        rows = np.arange(n)
        eh, ew = eh[rows, first], ew[rows, first]
        apply &= fits.any(axis=1)
        top = np.floor(rng.random(n) * (h - eh + 1)).astype(np.int64)
        left = np.floor(rng.random(n) * (w - ew + 1)).astype(np.int64)
        r = np.arange(h)[None, :, None]
        col = np.arange(w)[None, None, :]
        mask = ((r >= top[:, None, None]) & (r < (top + eh)[:, None, None])
                & (col >= left[:, None, None]) & (col < (left + ew)[:, None, None])
                & apply[:, None, None])[:, None]
        if isinstance(self.value, str):
            fill = rng.standard_normal(b.shape, dtype=np.float32).astype(b.dtype, copy=False)
        else:
            fill = _fill_array(self.value, c, b.dtype, repr(self))
        return restore(np.where(mask, fill, b))

    def extra_repr(self) -> str:
        return f"p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r}"
