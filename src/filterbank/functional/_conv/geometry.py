"""Argument normalisation and the shapes of one convolution.

``_ntuple`` and ``_padding_pairs`` turn the user's ``stride``/``dilation``/``padding``
(an int, a tuple, ``'valid'`` or ``'same'``) into one tuple per spatial dim; ``_Geometry``
derives every size the algorithms need from the input and weight shapes, and the
per-kernel-offset slice plans that im2col and col2im copy along.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _ntuple(value, n: int, what: str, name: str, minimum: int) -> tuple[int, ...]:
    if _is_int(value):
        out = (int(value),) * n
    elif isinstance(value, tuple | list) and len(value) == n and all(_is_int(v) for v in value):
        out = tuple(int(v) for v in value)
    else:
        raise ValueError(f"{name}: expected {what} to be an int or a tuple of {n} ints, "
                         f"got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name}: expected {what} >= {minimum}, got {value!r}")
    return out


def _padding_pairs(padding, n: int, kernel, stride, dilation, name: str):
    """Per spatial dim ``(before, after)`` zero padding; 'same' pads ``d (k - 1)`` in total,
    the odd one after (as PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions, got stride={stride}")
            pairs = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"{name}: padding must be an int, a tuple of {n} ints, 'valid' or "
                         f"'same', got {padding!r}")
    p = _ntuple(padding, n, "padding", name, 0)
    return tuple((v, v) for v in p)



class _Geometry:
    """Shapes of one convolution ``x (N, C, *S) * w (O, C/groups, *K) -> y (N, O, *So)``."""

    def __init__(self, xshape, wshape, stride, pads, dilation, groups, out_spatial=None):
        self.N, self.C = int(xshape[0]), int(xshape[1])
        self.S = tuple(int(s) for s in xshape[2:])
        self.O = int(wshape[0])
        self.K = tuple(int(k) for k in wshape[2:])
        self.nd = len(self.S)
        self.stride, self.pads, self.dilation = tuple(stride), tuple(pads), tuple(dilation)
        self.groups = int(groups)
        self.Cg, self.Og = self.C // self.groups, self.O // self.groups
        self.So = tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                        for s, (lo, hi), k, st, d in zip(self.S, pads, self.K, stride, dilation))
        if out_spatial is not None:  # a transposed conv's input, when output_padding >= stride
            self.So = tuple(int(s) for s in out_spatial)
        self.KK = math.prod(self.K)
        self.Lo = math.prod(self.So)
        self._plans = None

    @property
    def plans(self):
        """Per kernel offset: (empty, input slices, output slices) of the in-bounds region."""
        if self._plans is None:
            plans = []
            for kidx in itertools.product(*(range(k) for k in self.K)):
                src, dst, empty = [], [], False
                for k, s, so, st, d, (lo, _) in zip(kidx, self.S, self.So, self.stride,
                                                    self.dilation, self.pads):
                    shift = k * d - lo  # input index of output 0
                    o_lo = max(0, -(shift // st))
                    o_hi = min(so, (s - 1 - shift) // st + 1)
                    if o_hi <= o_lo:
                        empty = True
                        break
                    i0 = o_lo * st + shift
                    src.append(slice(i0, i0 + (o_hi - o_lo - 1) * st + 1, st))
                    dst.append(slice(o_lo, o_hi))
                plans.append((empty, tuple(src), tuple(dst)))
            self._plans = plans
        return self._plans


_ALL2 = (slice(None), slice(None))


def _swap01(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(0, 1)


def _zero_outside(a: np.ndarray, box: tuple[slice, ...], lead: int = 2) -> None:
    """Zero ``a`` outside ``box`` (slices of its trailing dims)."""
    for i, sl in enumerate(box):
        head = (slice(None),) * (lead + i)
        if sl.start > 0:
            a[head + (slice(0, sl.start),)] = 0
        if sl.stop < a.shape[lead + i]:
            a[head + (slice(sl.stop, None),)] = 0

