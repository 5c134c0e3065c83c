"""functional.fold: unfold (im2col) and fold (col2im) over a grid of kernel size, stride,
padding and dilation through the op registry + the generic checks, then the lecture's
"convolution = unfold + matmul", fold/unfold adjointness, and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import (
    OpCase,
    check_float32,
    check_gradcheck,
    check_reference,
    check_torch,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

try:
    import torch
except ImportError:  # the torch checks skip themselves
    torch = None

rng = np.random.default_rng(12)


def _r(*shape):
    return rng.standard_normal(shape)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _out(size, k, d, p, s):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _np_unfold(x, k, d=1, p=0, s=1):
    """Loop reference (tests only), straight from the definition."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = map(_pair, (k, d, p, s))
    n, c, h, w = x.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = _out(h, kh, dh, ph, sh), _out(w, kw, dw, pw, sw)
    out = np.zeros((n, c * kh * kw, oh * ow))
    for ci, i, j, a, b in itertools.product(range(c), range(kh), range(kw), range(oh),
                                            range(ow)):
        out[:, (ci * kh + i) * kw + j, a * ow + b] = xp_[:, ci, a * sh + i * dh, b * sw + j * dw]
    return out


def _np_fold(cols, size, k, d=1, p=0, s=1):
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = map(_pair, (k, d, p, s))
    h, w = _pair(size)
    n = cols.shape[0]
    c = cols.shape[1] // (kh * kw)
    oh, ow = _out(h, kh, dh, ph, sh), _out(w, kw, dw, pw, sw)
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for ci, i, j, a, b in itertools.product(range(c), range(kh), range(kw), range(oh),
                                            range(ow)):
        out[:, ci, a * sh + i * dh, b * sw + j * dw] += cols[:, (ci * kh + i) * kw + j,
                                                             a * ow + b]
    return out[:, :, ph:ph + h, pw:pw + w]


# (H, W, kernel_size, dilation, padding, stride): overlapping and gapped patches, padding
# wider than the kernel reach, rectangular everything
GRID = [
    (5, 6, 2, 1, 0, 1),
    (6, 6, 3, 1, 1, 1),
    (7, 7, 3, 2, 1, 2),
    (6, 5, (2, 3), (1, 2), (1, 0), (2, 1)),
    (4, 4, 3, 1, 2, 3),
    (5, 5, 1, 1, 0, 2),
    (3, 3, 3, 1, 0, 1),
    (5, 4, (3, 1), 1, (0, 1), (1, 3)),
]


def _tag(h, w, k, d, p, s):
    return f"{h}x{w}_k{k}_d{d}_p{p}_s{s}".replace(" ", "").replace(",", "-")


CASES = []
for _h, _w, _k, _d, _p, _s in GRID:
    _kw = {"kernel_size": _k, "dilation": _d, "padding": _p, "stride": _s}
    _kh, _kw_ = _pair(_k)
    _L = _out(_h, _kh, _pair(_d)[0], _pair(_p)[0], _pair(_s)[0]) * \
        _out(_w, _kw_, _pair(_d)[1], _pair(_p)[1], _pair(_s)[1])
    CASES.append(OpCase(
        f"unfold_{_tag(_h, _w, _k, _d, _p, _s)}", F.unfold, [_r(2, 3, _h, _w)], kwargs=_kw,
        reference=lambda x, **kw: _np_unfold(x, kw["kernel_size"], kw["dilation"],
                                             kw["padding"], kw["stride"]),
        torch_fn=lambda x, **kw: torch.nn.functional.unfold(x, **kw)))
    CASES.append(OpCase(
        f"fold_{_tag(_h, _w, _k, _d, _p, _s)}",
        lambda c, size=(_h, _w), **kw: F.fold(c, size, **kw), [_r(2, 3 * _kh * _kw_, _L)],
        kwargs=_kw,
        reference=lambda c, size=(_h, _w), **kw: _np_fold(c, size, kw["kernel_size"],
                                                          kw["dilation"], kw["padding"],
                                                          kw["stride"]),
        torch_fn=lambda c, size=(_h, _w), **kw: torch.nn.functional.fold(c, size, **kw)))
CASES += [
    OpCase("unfold_noncontiguous", lambda x: F.unfold(x, 2, stride=2),
           [noncontiguous(_r(2, 2, 4, 4))], reference=lambda x: _np_unfold(x, 2, s=2),
           torch_fn=lambda x: torch.nn.functional.unfold(x, 2, stride=2)),
    OpCase("unfold_unbatched", lambda x: F.unfold(x, 2, padding=1), [_r(2, 3, 3)],
           reference=lambda x: _np_unfold(x[None], 2, p=1)[0],
           torch_fn=lambda x: torch.nn.functional.unfold(x, 2, padding=1)),
    OpCase("fold_noncontiguous", lambda c: F.fold(c, (3, 3), 2),
           [noncontiguous(_r(1, 8, 4))], reference=lambda c: _np_fold(c, 3, 2),
           torch_fn=lambda c: torch.nn.functional.fold(c, (3, 3), 2)),
    OpCase("fold_unbatched", lambda c: F.fold(c, 4, 3, padding=1), [_r(9, 16)],
           reference=lambda c: _np_fold(c[None], 4, 3, p=1)[0],
           torch_fn=lambda c: torch.nn.functional.fold(c, 4, 3, padding=1)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


# ------------------------------------------------------------------------ special cases
def test_convolution_is_unfold_then_matmul():
    """The lecture's im2col: conv2d(x, w) == (w as a matrix) @ unfold(x), reshaped."""
    x = fb.tensor(_r(2, 3, 7, 6))
    w = fb.tensor(_r(4, 3, 3, 2))
    cols = F.unfold(x, (3, 2), padding=1, stride=2)  # (2, 18, L)
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 4, 4)
    np.testing.assert_allclose(y.data, F.conv2d(x, w, padding=1, stride=2).data, atol=1e-5)


def test_fold_of_unfold_counts_the_patches_covering_each_pixel():
    y = F.fold(F.unfold(fb.ones(1, 1, 3, 3), 2), (3, 3), 2)
    assert y[0, 0].tolist() == [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]


def test_fold_is_the_adjoint_of_unfold():
    """<unfold(x), c> == <x, fold(c)> for any x and c: each op is the other's gradient."""
    x, c = _r(2, 2, 6, 5), _r(2, 2 * 6, 9)
    kw = {"kernel_size": (2, 3), "dilation": (2, 1), "padding": 1, "stride": (2, 2)}
    u = F.unfold(fb.tensor(x, dtype=fb.float64), **kw).data
    f = F.fold(fb.tensor(c, dtype=fb.float64), (6, 5), **kw).data
    np.testing.assert_allclose(np.sum(u * c), np.sum(x * f), rtol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: F.unfold(fb.ones(2, 3, 4), 5),
     r"unfold: with spatial size \(3, 4\), kernel_size=\(5, 5\).*grid of sliding blocks "
     r"would be \(-1, 0\)"),
    (lambda: F.unfold(fb.ones(3, 4), 2),
     r"unfold: expected a 4-d \(N, C, H, W\) or 3-d \(C, H, W\) input, got shape \(3, 4\)"),
    (lambda: F.unfold(fb.ones(1, 1, 4, 4), 2, stride=0),
     r"unfold: expected stride >= 1, got 0"),
    (lambda: F.unfold(fb.ones(1, 1, 4, 4), (2, 2, 2)),
     r"unfold: expected kernel_size to be an int or a tuple of 2 ints"),
    (lambda: F.fold(fb.ones(1, 5, 4), (3, 3), 2),
     r"fold: input.shape\[1\] = 5 is not divisible by the kernel size kH \* kW = 4"),
    (lambda: F.fold(fb.ones(1, 4, 5), (3, 3), 2),
     r"fold: output_size=\(3, 3\) with kernel_size=\(2, 2\).* gives 2 \* 2 = 4 sliding "
     r"blocks, but input.shape\[2\] = 5"),
    (lambda: F.fold(fb.ones(1, 1, 4, 4), (3, 3), 2), r"fold: expected a 3-d"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
