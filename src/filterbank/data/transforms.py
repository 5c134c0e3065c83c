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


# ----------------------------------------------------------------- resizing and cropping
def _size_arg(size, where: str) -> tuple[int, int]:
    """An int or an (h, w) pair of positive ints, as a pair."""
    s = _pair(size, "size", where)
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in s) \
            or min(s) < 1:
        raise ValueError(f"{where}: size must be a positive int or a pair (h, w) of positive "
                         f"ints, got {size!r}")
    return int(s[0]), int(s[1])


def _linear_taps(start: np.ndarray, length: np.ndarray, out: int):
    """Per image, the two source indices and the weight of the second for each of ``out``
    outputs resampling ``length`` pixels from ``start`` (``align_corners=False``)."""
    length = length.astype(np.float64)[:, None]
    # PyTorch's source coordinate: src = (i + 0.5) * L_in / L_out - 0.5, clamped at 0
    src = np.maximum((np.arange(out) + 0.5)[None] * (length / out) - 0.5, 0.0)
    i0 = np.floor(src)
    frac = (src - i0).astype(np.float32)
    i0 = i0.astype(np.int64)
    i1 = np.where(i0 < length - 1, i0 + 1, i0)
    return start[:, None] + i0, start[:, None] + i1, frac


def _resized_crop(b: np.ndarray, top, left, height, width, out_hw: tuple[int, int]):
    """Crop ``b[n, :, top:top+height, left:left+width]`` (one box per image, int arrays of
    length N) and resize each crop bilinearly to ``out_hw``: a row gather, a column gather.

    Equals ``torch.nn.functional.interpolate(crop, out_hw, mode='bilinear',
    align_corners=False, antialias=False)`` per image. Integer images are computed in float32
    and rounded back."""
    n = b.shape[0]
    oh, ow = out_hw
    y0, y1, fy = _linear_taps(np.asarray(top), np.asarray(height), oh)
    x0, x1, fx = _linear_taps(np.asarray(left), np.asarray(width), ow)
    src = b if b.dtype == np.float64 else b.astype(np.float32, copy=False)
    nn = np.arange(n)[:, None]
    # rows: (N, oh, C, W) -- the advanced indices (axes 0 and 2) move to the front
    fy = fy[:, :, None, None]
    rows = src[nn, :, y0] * (1 - fy) + src[nn, :, y1] * fy
    # columns: (N, ow, oh, C)
    fx = fx[:, :, None, None]
    cols = rows[nn, :, :, x0] * (1 - fx) + rows[nn, :, :, x1] * fx
    out = cols.transpose(0, 3, 2, 1)
    if b.dtype.kind in "iu":
        info = np.iinfo(b.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return np.ascontiguousarray(out, dtype=b.dtype)


def resized_shape(height: int, width: int, size, max_size: int | None = None
                  ) -> tuple[int, int]:
    """The (h, w) that :class:`Resize` gives an ``height x width`` image (torchvision's rule).

    An int ``size`` is the new shorter side; the longer side keeps the aspect ratio,
    ``long_out = int(size * long / short)``, and is capped at ``max_size`` (the shorter side
    then shrinks to ``int(max_size * short / long)``). A pair ``(h, w)`` is returned as is.

    Example:
        >>> resized_shape(480, 640, 224)
        (224, 298)
    """
    if not isinstance(size, int | np.integer):
        return _size_arg(size, "Resize")
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = int(size), int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise ValueError(f"Resize: max_size must be larger than size, got max_size="
                             f"{max_size} and size={size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), int(max_size)
    return (new_long, new_short) if width <= height else (new_short, new_long)


class Resize(Transform):
    """Resize images bilinearly (``align_corners=False``, as torchvision and PyTorch).

    For output pixel ``i`` along an axis of ``L_in`` pixels resized to ``L_out``, the source
    coordinate is ``src = max((i + 0.5) * L_in / L_out - 0.5, 0)`` and
    ``y[i] = (1 - f) x[i0] + f x[min(i0 + 1, L_in - 1)]`` with ``i0 = floor(src)``,
    ``f = src - i0``; rows first, then columns. This is
    ``torch.nn.functional.interpolate(x, size, mode='bilinear', align_corners=False,
    antialias=False)``. No antialiasing: shrinking by more than 2x skips pixels and may alias
    (torchvision's default on tensors, ``antialias=True``, averages them; apply a blur first,
    or resize in steps of at most 2x, if that matters).

    Args:
        size: ``(h, w)`` output size, or an int: the new length of the *shorter* side, the
            longer one keeping the aspect ratio (``int(size * long / short)``), as torchvision.
        max_size: cap on the longer side when ``size`` is an int (default None).
        interpolation: ``'bilinear'`` (default) or ``'nearest'``
            (``src = floor(i * L_in / L_out)``, PyTorch's ``'nearest'``).

    Shape:
        ``(N, C, H, W) -> (N, C, h, w)`` (or one ``(C, H, W)`` image); any dtype (integer
        images are rounded back to their dtype).

    Example:
        >>> Resize((2, 2))(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
        array([[[ 2.5,  4.5],
                [10.5, 12.5]]], dtype=float32)
        >>> Resize(8)(np.zeros((3, 16, 24), np.float32)).shape
        (3, 8, 12)
    """

    def __init__(self, size, interpolation: str = "bilinear", max_size: int | None = None,
                 antialias=None):
        if isinstance(size, int | np.integer) and not isinstance(size, bool):
            if size < 1:
                raise ValueError(f"Resize: size must be positive, got {size}")
            self.size = int(size)
        else:
            self.size = _size_arg(size, "Resize")
            if max_size is not None:
                raise ValueError(f"Resize: max_size is only allowed with an int size, got size="
                                 f"{self.size}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"Resize: interpolation must be 'bilinear' or 'nearest', got "
                             f"{interpolation!r}")
        if antialias:
            raise ValueError("Resize: antialias=True is not implemented (bilinear without "
                             "antialiasing, as antialias=False in torchvision)")
        if max_size is not None and isinstance(self.size, int) and max_size <= self.size:
            raise ValueError(f"Resize: max_size must be larger than size, got max_size="
                             f"{max_size} and size={self.size}")
        self.interpolation = interpolation
        self.max_size = max_size

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        n, _, h, w = b.shape
        oh, ow = resized_shape(h, w, self.size, self.max_size)
        if (oh, ow) == (h, w):
            return restore(b.copy())
        if self.interpolation == "nearest":
            rows = np.minimum(np.floor(np.arange(oh) * (h / oh)).astype(np.int64), h - 1)
            cols = np.minimum(np.floor(np.arange(ow) * (w / ow)).astype(np.int64), w - 1)
            return restore(np.ascontiguousarray(b[:, :, rows][:, :, :, cols]))
        zeros = np.zeros(n, np.int64)
        return restore(_resized_crop(b, zeros, zeros, np.full(n, h), np.full(n, w), (oh, ow)))

    def extra_repr(self) -> str:
        extra = f", max_size={self.max_size}" if self.max_size is not None else ""
        return f"size={self.size}, interpolation={self.interpolation!r}{extra}"


class CenterCrop(Transform):
    """Crop the central ``size`` window (images smaller than ``size`` are zero-padded first).

    The window starts at ``top = round((H - h) / 2)``, ``left = round((W - w) / 2)``
    (Python's round, as torchvision). If ``h > H`` (or ``w > W``), ``(h - H) // 2`` zero rows
    go above and ``(h - H + 1) // 2`` below before cropping, as torchvision.

    Args:
        size: output ``(h, w)``, or an int for a square.

    Shape:
        ``(N, C, H, W) -> (N, C, h, w)`` (or one ``(C, H, W)`` image).

    Example:
        >>> CenterCrop(2)(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
        array([[[ 5.,  6.],
                [ 9., 10.]]], dtype=float32)
    """

    def __init__(self, size):
        self.size = _size_arg(size, "CenterCrop")

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        h, w = self.size
        hi, wi = b.shape[2:]
        if h > hi or w > wi:
            ph, pw = max(h - hi, 0), max(w - wi, 0)
            b = np.pad(b, ((0, 0), (0, 0), (ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2)))
            hi, wi = b.shape[2:]
        top, left = int(round((hi - h) / 2.0)), int(round((wi - w) / 2.0))
        return restore(b[:, :, top:top + h, left:left + w].copy())

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomResizedCrop(Transform):
    """Crop a random box of random area and aspect ratio from each image, resized to ``size``
    (Szegedy et al., 2015; the Inception / ResNet ImageNet augmentation).

    Per image, torchvision's sampling: up to 10 tries draw an area fraction ``s ~ U(scale)``
    and a log-uniform aspect ratio ``r`` (w / h) from ``ratio``, giving
    ``w = round(sqrt(s H W r))``, ``h = round(sqrt(s H W / r))``; the first try with
    ``0 < w <= W`` and ``0 < h <= H`` is used, placed uniformly at random. If no try fits, the
    whole image is centre-cropped to the nearest aspect ratio within ``ratio``. The box is
    resized bilinearly as :class:`Resize` (no antialiasing). All tries of a batch are drawn at
    once (10 per image), and all crops resized by one gather, so the random stream differs
    from torchvision's while the distribution is the same.

    Args:
        size: output ``(h, w)``, or an int for a square.
        scale: range of the box's area as a fraction of the image's (default (0.08, 1.0)).
        ratio: range of the box's aspect ratio w / h (default (3/4, 4/3)).
        interpolation: ``'bilinear'`` (only).
        generator: own random generator (see the module docstring).

    Shape:
        ``(N, C, H, W) -> (N, C, h, w)`` (or one ``(C, H, W)`` image).

    Example:
        >>> t = RandomResizedCrop(8, generator=np.random.default_rng(0))
        >>> t(np.zeros((4, 3, 20, 30), np.float32)).shape
        (4, 3, 8, 8)
    """

    tries = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation: str = "bilinear", antialias=None,
                 generator: np.random.Generator | None = None):
        self.size = _size_arg(size, "RandomResizedCrop")
        scale, ratio = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomResizedCrop: scale must be (min, max) with 0 < min <= max, "
                             f"got {scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomResizedCrop: ratio must be (min, max) with 0 < min <= max, "
                             f"got {ratio}")
        if interpolation != "bilinear":
            raise ValueError(f"RandomResizedCrop: interpolation must be 'bilinear', got "
                             f"{interpolation!r}")
        if antialias:
            raise ValueError("RandomResizedCrop: antialias=True is not implemented")
        self.scale, self.ratio = scale, ratio
        self.generator = generator

    def get_params(self, rng: np.random.Generator, n: int, height: int, width: int):
        """``(top, left, h, w)``: int arrays of length ``n``, one box per image."""
        area = height * width
        target = area * rng.uniform(self.scale[0], self.scale[1], size=(n, self.tries))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                    size=(n, self.tries)))
        w = np.rint(np.sqrt(target * aspect)).astype(np.int64)
        h = np.rint(np.sqrt(target / aspect)).astype(np.int64)
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        rows = np.arange(n)
        first = np.argmax(fits, axis=1)
        found = fits[rows, first]
        h, w = h[rows, first], w[rows, first]
        # fallback: the central crop with the closest allowed aspect ratio
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fw, fh = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fw, fh = int(round(height * self.ratio[1])), height
        else:
            fw, fh = width, height
        h, w = np.where(found, h, fh), np.where(found, w, fw)
        top = np.where(found, rng.integers(0, height - h + 1), (height - fh) // 2)
        left = np.where(found, rng.integers(0, width - w + 1), (width - fw) // 2)
        return top, left, h, w

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        n, _, height, width = b.shape
        top, left, h, w = self.get_params(rng, n, height, width)
        return restore(_resized_crop(b, top, left, h, w, self.size))

    def extra_repr(self) -> str:
        return (f"size={self.size}, scale={self.scale}, "
                f"ratio=({self.ratio[0]:.4g}, {self.ratio[1]:.4g})")


# ------------------------------------------------------------------------------ colour
#: ITU-R 601-2 luma weights of R, G, B (as PIL's convert('L'); torchvision's tensor path
#: rounds the red weight to 0.2989, a difference of at most 1e-4 of the range).
LUMA = (0.299, 0.587, 0.114)


def _check_channels(b: np.ndarray, where: str) -> int:
    c = b.shape[1]
    if c not in (1, 3):
        raise ValueError(f"{where}: expected 1 or 3 (RGB) channels, got {c} (input shape "
                         f"{b.shape})")
    return c


def _gray(b: np.ndarray) -> np.ndarray:
    """(N, 1, H, W) luma of an RGB batch, in b's float dtype."""
    wr, wg, wb = (b.dtype.type(v) for v in LUMA)
    return wr * b[:, 0:1] + wg * b[:, 1:2] + wb * b[:, 2:3]


class Grayscale(Transform):
    """RGB -> grey with the ITU-R 601-2 luma transform: ``L = 0.299 R + 0.587 G + 0.114 B``.

    As torchvision: one-channel images pass through unchanged; integer images are computed in
    float32 and truncated back to their dtype; ``num_output_channels=3`` repeats ``L`` (so a
    model built for RGB sees grey images).

    Args:
        num_output_channels: 1 (default) or 3.

    Shape:
        ``(N, 3, H, W) -> (N, num_output_channels, H, W)`` (also ``(N, 1, H, W)`` in, and one
        ``(C, H, W)`` image).

    Example:
        >>> Grayscale()(np.ones((3, 1, 2), np.float32))
        array([[[1., 1.]]], dtype=float32)
    """

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels must be 1 or 3, got "
                             f"{num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def forward(self, x, rng, batched):
        b, restore = _to_nchw(x, batched, repr(self))
        c = _check_channels(b, repr(self))
        if c == 1:
            g = b.copy()
        elif b.dtype.kind == "f":
            g = _gray(b)
        else:
            g = _gray(b.astype(np.float32)).astype(b.dtype)  # truncation, as torchvision
        if self.num_output_channels == 3:
            g = np.repeat(g, 3, axis=1)
        return restore(g)

    def extra_repr(self) -> str:
        return f"num_output_channels={self.num_output_channels}"


def _jitter_range(value, name: str, center: float, bound: tuple[float, float],
                  clip_first_on_zero: bool = True):
    """torchvision's ColorJitter argument rule: a number v means [center - v, center + v]
    (clipped at 0 for the factors), a pair is (min, max); None when it is the identity."""
    if value is None:
        return None
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"ColorJitter: if {name} is a single number, it must be "
                             f"non-negative, got {value}")
        lo, hi = center - float(value), center + float(value)
        if clip_first_on_zero:
            lo = max(lo, 0.0)
    else:
        v = tuple(value)
        if len(v) != 2:
            raise ValueError(f"ColorJitter: {name} must be a number or a pair (min, max), got "
                             f"{value!r}")
        lo, hi = float(v[0]), float(v[1])
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"ColorJitter: {name} values must lie in [{bound[0]}, {bound[1]}] with "
                         f"min <= max, got ({lo}, {hi})")
    if lo == hi == center:
        return None
    return lo, hi


def _blend(a: np.ndarray, b, ratio: np.ndarray) -> np.ndarray:
    """torchvision's ``_blend`` on float images: ``clip(r a + (1 - r) b, 0, 1)``."""
    r = ratio.astype(a.dtype).reshape(-1, 1, 1, 1)
    return np.clip(r * a + (1 - r) * b, 0, 1)


def rgb_to_hsv(b: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) RGB in [0, 1] -> HSV, each in [0, 1] (torchvision's vectorised formulas;
    ``h`` is the hue as a fraction of a turn, 0 for greys)."""
    r, g, bl = b[:, 0], b[:, 1], b[:, 2]
    maxc, minc = b.max(axis=1), b.min(axis=1)
    eqc = maxc == minc
    cr = maxc - minc
    one = np.ones_like(maxc)
    s = cr / np.where(eqc, one, maxc)
    div = np.where(eqc, one, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - bl) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0).astype(b.dtype, copy=False)
    return np.stack([h, s, maxc], axis=1)


def hsv_to_rgb(b: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hsv`: (N, 3, H, W) HSV -> RGB in [0, 1]."""
    h, s, v = b[:, 0], b[:, 1], b[:, 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int64) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    out = np.stack([np.choose(i, (v, q, p, p, t, v)), np.choose(i, (t, v, v, q, p, p)),
                    np.choose(i, (p, p, t, v, v, q))], axis=1)
    return out.astype(b.dtype, copy=False)


class ColorJitter(Transform):
    """Randomly change brightness, contrast, saturation and hue, in a random order per image.

    Per image, factors are drawn uniformly from the given ranges, and the four adjustments
    applied in a random order, each with torchvision's formula on float images in [0, 1]
    (``gray`` is the 0.299/0.587/0.114 luma of :class:`Grayscale`)::

        brightness b:  x' = clip(b x, 0, 1)
        contrast   c:  x' = clip(c x + (1 - c) mean(gray(x)), 0, 1)   (mean over the image)
        saturation s:  x' = clip(s x + (1 - s) gray(x), 0, 1)
        hue        h:  x' = hsv_to_rgb((H + h) mod 1, S, V) of rgb_to_hsv(x)

    Saturation and hue leave one-channel images unchanged (contrast then uses the mean of
    the image itself). The random stream is NumPy's, so the factors differ from torchvision's
    for the same seed; the formulas do not.

    Args:
        brightness: v >= 0 for factors in [max(0, 1 - v), 1 + v], or (min, max).
        contrast: as brightness.
        saturation: as brightness.
        hue: v in [0, 0.5] for shifts in [-v, v] (fractions of a turn), or (min, max) within
            [-0.5, 0.5].
        generator: own random generator (see the module docstring).

    Shape:
        ``(N, C, H, W)`` or ``(C, H, W)`` with C = 1 or 3, unchanged; floating-point input in
        [0, 1] (apply ToTensor first).

    Example:
        >>> t = ColorJitter(brightness=(0.5, 0.5))
        >>> t(np.ones((3, 1, 1), np.float32))[:, 0, 0]
        array([0.5, 0.5, 0.5], dtype=float32)
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0,
                 generator: np.random.Generator | None = None):
        self.brightness = _jitter_range(brightness, "brightness", 1.0, (0.0, math.inf))
        self.contrast = _jitter_range(contrast, "contrast", 1.0, (0.0, math.inf))
        self.saturation = _jitter_range(saturation, "saturation", 1.0, (0.0, math.inf))
        self.hue = _jitter_range(hue, "hue", 0.0, (-0.5, 0.5), clip_first_on_zero=False)
        self.generator = generator

    @staticmethod
    def adjust(b: np.ndarray, which: int, factor: np.ndarray) -> np.ndarray:
        """Apply adjustment ``which`` (0 brightness, 1 contrast, 2 saturation, 3 hue) with one
        factor per image of the float NCHW batch ``b``."""
        c = b.shape[1]
        if which == 0:
            return np.clip(factor.astype(b.dtype).reshape(-1, 1, 1, 1) * b, 0, 1)
        if which == 1:
            g = _gray(b) if c == 3 else b
            return _blend(b, g.mean(axis=(1, 2, 3), keepdims=True), factor)
        if c == 1:
            return b
        if which == 2:
            return _blend(b, _gray(b), factor)
        hsv = rgb_to_hsv(b)
        hsv[:, 0] = np.mod(hsv[:, 0] + factor.astype(b.dtype).reshape(-1, 1, 1), 1.0)
        return hsv_to_rgb(hsv)

    def forward(self, x, rng, batched):
        if x.dtype.kind != "f":
            raise TypeError(f"ColorJitter: expected a floating-point image in [0, 1] (apply "
                            f"ToTensor first), got dtype {x.dtype}")
        b, restore = _to_nchw(x, batched, repr(self))
        _check_channels(b, repr(self))
        n = b.shape[0]
        order = np.argsort(rng.random((n, 4)), axis=1)  # a random permutation per image
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        factors = [None if r is None else rng.uniform(r[0], r[1], size=n) for r in ranges]
        out = b.copy()
        for step in range(4):
            for which, f in enumerate(factors):
                if f is None:
                    continue
                sel = order[:, step] == which
                if sel.all():
                    out = self.adjust(out, which, f)
                elif sel.any():
                    out[sel] = self.adjust(out[sel], which, f[sel])
        return restore(out)

    def extra_repr(self) -> str:
        return (f"brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}")
