"""functional.pool: max/avg pooling (1-3-D), adaptive pooling, global average pooling.

A registry of cases over a grid of kernel sizes (1-3), strides (1-3 and the default), padding,
dilation (max), ceil_mode, count_include_pad (avg), odd and even sizes, batch 1 and > 1 and
non-contiguous inputs runs through the generic checks: float64 finite-difference gradients,
PyTorch (float32 output and input gradient) and float32 dtype preservation. Max-pool inputs are
permutations of distinct values, so no window has a tie (the tie rule has its own tests).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
    OpCase,
    assert_close,
    check_float32,
    check_gradcheck,
    check_torch,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    TF = torch.nn.functional
else:
    torch = TF = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _distinct(shape, seed):
    """Values 0.25 apart in random order: no ties, far beyond gradcheck's eps."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.25 - n / 8


def _fns(name):
    ours = getattr(F, name)  # torch's is looked up when called: the registry builds without it
    return (lambda x, **kw: ours(x, **kw)), (lambda x, **kw: getattr(TF, name)(x, **kw))


def _valid(k, p, L, s, d):
    return p <= k // 2 and L + 2 * p >= d * (k - 1) + 1


# ---------------------------------------------------------------------------- registry
def _pool_cases():
    cases = []
    shapes = {1: [(2, 3, 7), (1, 2, 6)], 2: [(2, 2, 5, 6), (1, 3, 6, 5)],
              3: [(1, 2, 4, 5, 3)]}
    seed = 0
    for nd, kind in itertools.product((1, 2, 3), ("max", "avg")):
        ks = (1, 2, 3) if nd < 3 else (2, 3)
        strides = (None, 1, 2, 3) if nd < 3 else (None, 2)
        dils = (1, 2) if kind == "max" and nd < 3 else (1,)
        flags = (True, False)
        for i, (k, s, p, d, ceil, cip) in enumerate(itertools.product(
                ks, strides, (0, 1), dils, flags, flags if kind == "avg" else (True,))):
            shape = shapes[nd][i % len(shapes[nd])]
            if not _valid(k, p, min(shape[2:]), s, d):
                continue
            seed += 1
            x = _distinct(shape, seed)
            if i % 4 == 3:
                x = noncontiguous(x)
            kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
            if kind == "max":
                kw["dilation"] = d
            else:
                kw["count_include_pad"] = cip
            name = f"{kind}_pool{nd}d"
            fn, tfn = _fns(name)
            tag = "-".join(f"{a}{b}" for a, b in kw.items()) + ("-nc" if i % 4 == 3 else "")
            cases.append(OpCase(f"{name}-{'x'.join(map(str, shape))}-{tag}", fn, [x], kw,
                                torch_fn=tfn))
    # tuple arguments, a divisor override, unbatched input, the non-overlapping fast path
    extra = [
        ("max_pool2d", (2, 1, 5, 7), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0),
                                          dilation=(1, 2))),
        ("avg_pool2d", (2, 1, 5, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))),
        ("avg_pool2d", (2, 2, 5, 5), dict(kernel_size=3, stride=2, padding=1,
                                          divisor_override=5)),
        ("avg_pool3d", (1, 2, 3, 4, 5), dict(kernel_size=2, stride=1, divisor_override=3)),
        ("max_pool2d", (3, 6, 4), dict(kernel_size=2)),
        ("avg_pool2d", (3, 6, 4), dict(kernel_size=2)),
        ("max_pool2d", (2, 3, 8, 8), dict(kernel_size=2)),
        ("avg_pool2d", (2, 3, 8, 8), dict(kernel_size=2)),
        ("max_pool1d", (4, 9), dict(kernel_size=3, stride=2, ceil_mode=True)),
        ("max_pool3d", (1, 1, 4, 4, 4), dict(kernel_size=2, padding=1, dilation=2)),
    ]
    for name, shape, kw in extra:
        seed += 1
        fn, tfn = _fns(name)
        cases.append(OpCase(f"{name}-{'x'.join(map(str, shape))}-{kw}", fn,
                            [_distinct(shape, seed)], kw, torch_fn=tfn))
    return cases


def _adaptive_cases():
    cases = []
    grid = [("adaptive_avg_pool1d", (2, 3, 7), 3), ("adaptive_avg_pool1d", (2, 3, 8), 4),
            ("adaptive_avg_pool1d", (1, 2, 4), 6), ("adaptive_avg_pool1d", (3, 5), 2),
            ("adaptive_avg_pool2d", (2, 3, 7, 6), (3, 4)),
            ("adaptive_avg_pool2d", (2, 2, 8, 6), (4, 3)),
            ("adaptive_avg_pool2d", (1, 2, 5, 5), 1), ("adaptive_avg_pool2d", (1, 2, 3, 4), 5),
            ("adaptive_avg_pool2d", (2, 2, 5, 6), (None, 4)),
            ("adaptive_max_pool2d", (2, 3, 7, 6), (3, 4)),
            ("adaptive_max_pool2d", (2, 2, 8, 6), (4, 3)),
            ("adaptive_max_pool2d", (2, 2, 8, 6), (3, 3)),
            ("adaptive_max_pool2d", (1, 2, 5, 5), 1), ("adaptive_max_pool2d", (1, 2, 3, 4), 5),
            ("adaptive_max_pool2d", (2, 5, 6), (None, 4))]
    for i, (name, shape, out) in enumerate(grid):
        x = _distinct(shape, 100 + i)
        if i % 3 == 2:
            x = noncontiguous(x)
        fn, tfn = _fns(name)
        cases.append(OpCase(f"{name}-{'x'.join(map(str, shape))}-{out}", fn, [x],
                            dict(output_size=out), torch_fn=tfn))
    cases.append(OpCase("global_avg_pool2d", lambda x: F.global_avg_pool2d(x),
                        [_distinct((2, 3, 4, 5), 200)],
                        torch_fn=lambda x: x.mean(dim=(2, 3))))
    cases.append(OpCase("global_avg_pool2d-keepdim",
                        lambda x: F.global_avg_pool2d(x, keepdim=True),
                        [noncontiguous(_distinct((1, 2, 3, 3), 201))],
                        torch_fn=lambda x: x.mean(dim=(2, 3), keepdim=True)))
    return cases


CASES = _pool_cases() + _adaptive_cases()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    check_torch(case)


@pytest.mark.parametrize("case", CASES[::5], ids=str)
def test_float32_preserved(case):
    check_float32(case)


def test_grid_covers_ceil_mode_and_overlap():
    """The grid must contain cases where ceil_mode changes the output size and where windows
    overlap, or the checks above would not exercise those paths."""
    ceil_changes = overlap = 0
    for c in CASES:
        kw = c.kwargs
        if kw.get("ceil_mode"):
            floor = dict(kw, ceil_mode=False)
            x = fb.Tensor(np.asarray(c.inputs[0]))
            ceil_changes += c.fn(x, **kw).shape != c.fn(x, **floor).shape
        s = kw.get("stride") or kw.get("kernel_size")
        overlap += isinstance(s, int) and s < kw.get("kernel_size", 0)
    assert ceil_changes >= 5 and overlap >= 10


# ------------------------------------------------------------------ lecture examples
LECTURE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lecture_max_and_average_pooling(dtype):
    x = fb.Tensor(LECTURE.reshape(1, 1, 4, 4), dtype=dtype)
    y = F.max_pool2d(x, 2, stride=2)
    a = F.avg_pool2d(x, 2, stride=2)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(a.numpy()[0, 0], [[3.25, 5.25], [2, 2]])
    assert y.dtype == dtype and a.dtype == dtype


def test_lecture_max_pool_gradient_goes_to_the_argmax():
    x = fb.Tensor(LECTURE.reshape(1, 1, 4, 4), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    want = np.zeros((4, 4), np.float32)
    want[1, 1] = want[1, 3] = want[2, 0] = want[3, 3] = 1  # the 6, 8, 3 and 4
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], want)
    x.grad = None
    F.avg_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], np.full((4, 4), 0.25, np.float32))


# -------------------------------------------------------------------------- tie rule
TIES = [
    ("all-equal", np.ones((1, 1, 4, 4)), dict(kernel_size=2)),
    ("all-equal-overlap", np.ones((1, 2, 5, 5)), dict(kernel_size=3, stride=1, padding=1)),
    ("row-vs-column", np.array([[[[0, 1, 1], [1, 0, 0], [0, 0, 0]]]]),
     dict(kernel_size=2, stride=1)),
    ("dilated", np.array([[[[2, 0, 2, 0, 2], [0, 0, 0, 0, 0], [2, 0, 2, 0, 2]]]]),
     dict(kernel_size=2, stride=1, dilation=2)),
    ("quantised", np.round(np.random.default_rng(5).uniform(0, 2, (2, 3, 6, 7))),
     dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("1d", np.array([[[3, 3, 1, 3, 3, 3]]]), dict(kernel_size=3, stride=1)),
]


def _first_max_grad(x, kernel, stride, padding, dilation):
    """Reference written per window in plain Python: the first maximum in row-major scan
    order of each window gets the window's upstream gradient (here: 1)."""
    n, c, h, w = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2),
                constant_values=-np.inf)
    oh = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    g = np.zeros_like(xp)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best = None
        for a, e in itertools.product(range(kernel), range(kernel)):
            r, q = i * stride + a * dilation, j * stride + e * dilation
            if best is None or xp[b, ch, r, q] > xp[b, ch, best[0], best[1]]:
                best = (r, q)
        g[b, ch, best[0], best[1]] += 1
    return g[:, :, padding:padding + h, padding:padding + w]


@pytest.mark.parametrize("name, x, kw", TIES, ids=[t[0] for t in TIES])
def test_tie_gradient_goes_to_first_maximum_in_scan_order(name, x, kw):
    nd = x.ndim - 2
    pool = F.max_pool1d if nd == 1 else F.max_pool2d
    xt = fb.Tensor(x.astype(np.float32), requires_grad=True)
    y, idx = pool(xt, return_indices=True, **kw)
    y.backward(np.ones(y.shape, np.float32))
    if HAS_TORCH:
        tx = torch.tensor(x.astype(np.float32), requires_grad=True)
        ty, tidx = getattr(TF, f"max_pool{nd}d")(tx, return_indices=True, **kw)
        ty.backward(torch.ones_like(ty))
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())
    if nd == 2 and not kw.get("ceil_mode"):
        want = _first_max_grad(x, kw["kernel_size"], kw.get("stride", kw["kernel_size"]),
                               kw.get("padding", 0), kw.get("dilation", 1))
        np.testing.assert_array_equal(xt.grad.numpy(), want)


TIES_2X2 = [  # 2x2 windows, stride 2, no return_indices: the pairwise (tournament) path
    ("all-equal", np.ones((1, 1, 4, 4))),
    ("one-window-each-pattern", np.array([[[[0, 1, 1, 0, 0, 0, 0, 1],
                                            [1, 0, 1, 1, 1, 1, 0, 1]]]])),
    ("quantised", np.round(np.random.default_rng(6).uniform(0, 2, (2, 3, 6, 8)))),
    ("unbatched", np.round(np.random.default_rng(7).uniform(0, 1, (3, 4, 6)))),
]


@pytest.mark.parametrize("name, x", TIES_2X2, ids=[t[0] for t in TIES_2X2])
def test_tie_gradient_2x2_stride_2_goes_to_first_maximum(name, x):
    xt = fb.Tensor(x.astype(np.float32), requires_grad=True)
    y = F.max_pool2d(xt, 2)
    g = np.random.default_rng(8).uniform(1, 2, y.shape).astype(np.float32)
    y.backward(g)
    x4 = x.reshape((-1,) + x.shape[-3:]) if x.ndim == 4 else x[None]
    ones = _first_max_grad(x4, 2, 2, 0, 1)  # 1 at each window's first maximum
    want = ones * np.repeat(np.repeat(g.reshape(ones[:, :, ::2, ::2].shape), 2, -2), 2, -1)
    np.testing.assert_array_equal(xt.grad.numpy(), want.reshape(x.shape).astype(np.float32))
    np.testing.assert_array_equal(y.detach().numpy(), x.reshape(x.shape[:-2] + (x.shape[-2] // 2, 2,
                                  x.shape[-1] // 2, 2)).max(axis=(-3, -1)))
    if HAS_TORCH:
        tx = torch.tensor(x.astype(np.float32), requires_grad=True)
        TF.max_pool2d(tx, 2).backward(torch.tensor(g))
        np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())


def test_2x2_stride_2_large_input_split_over_threads():
    # 1M values: above filterbank._parallel.MIN_ELEMENTS, so the batch is cut into slices
    # that threads pool side by side; reference: np.argmax (first maximum) over each window's
    # 4 values in row-major scan order
    x = np.round(np.random.default_rng(9).uniform(0, 3, (16, 16, 64, 64))).astype(np.float32)
    g = np.random.default_rng(10).uniform(1, 2, (16, 16, 32, 32)).astype(np.float32)
    xt = fb.Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, 2)
    y.backward(g)
    win = x.reshape(16, 16, 32, 2, 32, 2).transpose(0, 1, 2, 4, 3, 5).reshape(16, 16, 32, 32, 4)
    first = win.argmax(axis=-1)
    want = (np.arange(4) == first[..., None]) * g[..., None]
    want = want.reshape(16, 16, 32, 32, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    np.testing.assert_array_equal(y.detach().numpy(), win.max(axis=-1))
    np.testing.assert_array_equal(xt.grad.numpy(), want)


@needs_torch
def test_tie_rule_adaptive_max_is_row_major():
    # bins of a 3 -> 2 pool overlap; in the first bin the maxima sit at (0, 1) and (1, 0):
    # row-major order picks (0, 1)
    x = np.array([[[[0, 1, 1], [1, 0, 0], [0, 0, 0]]]], np.float32)
    xt = fb.Tensor(x, requires_grad=True)
    y, idx = F.adaptive_max_pool2d(xt, 2, return_indices=True)
    y.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = TF.adaptive_max_pool2d(tx, 2, return_indices=True)
    ty.sum().backward()
    assert idx.numpy()[0, 0, 0, 0] == 1
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())


@needs_torch
@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1, dilation=1),
                                dict(kernel_size=2, stride=1, padding=1, dilation=2),
                                dict(kernel_size=2, stride=2, padding=0, dilation=1)])
def test_return_indices_match_torch(kw):
    x = _distinct((2, 3, 7, 6), 7).astype(np.float32)
    _, idx = F.max_pool2d(fb.Tensor(x), return_indices=True, ceil_mode=True, **kw)
    _, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, ceil_mode=True, **kw)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_no_grad_forward_matches_recorded_forward():
    x = fb.Tensor(_distinct((2, 3, 7, 7), 9).astype(np.float32), requires_grad=True)
    y = F.max_pool2d(x, 3, stride=2, padding=1)
    with fb.no_grad():
        y0 = F.max_pool2d(x, 3, stride=2, padding=1)
    assert not y0.requires_grad
    np.testing.assert_array_equal(y0.numpy(), y.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_for_every_pool(dtype):
    x = fb.Tensor(_distinct((2, 2, 6, 6), 3), dtype=dtype, requires_grad=True)
    for y in (F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
              F.adaptive_avg_pool2d(x, 4), F.adaptive_max_pool2d(x, 4), F.global_avg_pool2d(x),
              F.avg_pool2d(x, 2, ceil_mode=True, divisor_override=3)):
        x.grad = None
        y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype


def test_overlapping_windows_accumulate_gradient():
    # one large value inside every 2x2 window of a stride-1 pool wins 4 windows
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = 5
    xt = fb.Tensor(x, requires_grad=True)
    F.max_pool2d(xt, 2, stride=1).sum().backward()
    assert xt.grad.numpy()[0, 0, 1, 1] == 4
    assert xt.grad.numpy().sum() == 4


@needs_torch
def test_avg_divisor_rules_match_torch_at_the_border():
    x = np.arange(1, 26, dtype=np.float32).reshape(1, 1, 5, 5)
    for cip, ceil in itertools.product((True, False), (True, False)):
        y = F.avg_pool2d(fb.Tensor(x), 2, stride=2, padding=1, ceil_mode=ceil,
                         count_include_pad=cip)
        ty = TF.avg_pool2d(torch.tensor(x), 2, stride=2, padding=1, ceil_mode=ceil,
                           count_include_pad=cip)
        assert_close(y, ty)
    # the corner window of a padded 2x2 pool holds one input value: divided by 4 or by 1
    y_in = F.avg_pool2d(fb.Tensor(x), 2, 2, 1, count_include_pad=True)
    y_ex = F.avg_pool2d(fb.Tensor(x), 2, 2, 1, count_include_pad=False)
    assert y_in.numpy()[0, 0, 0, 0] == 0.25 and y_ex.numpy()[0, 0, 0, 0] == 1


# ---------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: F.max_pool2d(fb.zeros(4, 4), 2), ValueError,
     r"max_pool2d: expected a 3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got a 2-D tensor "
     r"of shape \(4, 4\)"),
    (lambda: F.avg_pool1d(fb.zeros(1, 2, 3, 4), 2), ValueError,
     r"avg_pool1d: expected a 2-D \(C, L\) or 3-D \(N, C, L\) input, got a 4-D"),
    (lambda: F.max_pool3d(fb.zeros(2, 3, 4), 2), ValueError, r"max_pool3d: expected a 4-D"),
    (lambda: F.max_pool2d(fb.zeros(1, 3, 5, 5), 7), ValueError,
     r"max_pool2d: the kernel \(size 7, dilation 1, so 7 wide\) is larger than the padded "
     r"input along spatial dim 0 \(5 \+ 2\*0 = 5\); the output size would be 0 \(input shape "
     r"\(1, 3, 5, 5\)\)"),
    (lambda: F.avg_pool2d(fb.zeros(1, 3, 5, 2), 3, padding=0), ValueError,
     r"avg_pool2d: the kernel .* along spatial dim 1 \(2 \+ 2\*0 = 2\)"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 4, 4), 3, dilation=2), ValueError,
     r"so 5 wide\) is larger than the padded input"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 8, 8), 3, padding=2), ValueError,
     r"max_pool2d: padding must be at most half of the kernel size, got padding=\(2, 2\) for "
     r"kernel_size=\(3, 3\)"),
    (lambda: F.avg_pool2d(fb.zeros(1, 1, 8, 8), 2, padding=-1), ValueError,
     r"avg_pool2d: padding must be non-negative, got -1"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 8, 8), 2, stride=0), ValueError,
     r"max_pool2d: stride must be positive, got 0"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 8, 8), 0), ValueError,
     r"max_pool2d: kernel_size must be positive, got 0"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 8, 8), (2, 2, 2)), TypeError,
     r"max_pool2d: kernel_size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    (lambda: F.max_pool2d(fb.zeros(1, 1, 8, 8), 2.0), TypeError, r"kernel_size must be an int"),
    (lambda: F.max_pool2d(fb.arange(64).reshape(1, 1, 8, 8), 2), TypeError,
     r"max_pool2d: expected a floating-point input, got dtype int64"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError,
     r"max_pool2d: expected a Tensor input, got ndarray"),
    (lambda: F.max_pool2d(fb.zeros(1, 0, 4, 4), 2), ValueError,
     r"expected non-empty channel and spatial dims"),
    (lambda: F.avg_pool2d(fb.zeros(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be a positive int or None, got 0"),
    (lambda: F.adaptive_avg_pool2d(fb.zeros(1, 1, 4, 4), 0), ValueError,
     r"adaptive_avg_pool2d: output_size must be positive, got 0"),
    (lambda: F.adaptive_max_pool2d(fb.zeros(1, 1, 4, 4), (2, 2, 2)), TypeError,
     r"adaptive_max_pool2d: output_size must be an int or a tuple of 2 ints"),
    (lambda: F.adaptive_avg_pool1d(fb.zeros(4), 2), ValueError,
     r"adaptive_avg_pool1d: expected a 2-D \(C, L\) or 3-D \(N, C, L\) input, got a 1-D"),
    (lambda: F.global_avg_pool2d(fb.zeros(3, 4, 4)), ValueError,
     r"global_avg_pool2d: expected a 4-D \(N, C, H, W\) input, got a 3-D tensor of shape "
     r"\(3, 4, 4\)"),
]


@pytest.mark.parametrize("call, exc, match", ERRORS, ids=[f"err{i}" for i in range(len(ERRORS))])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@needs_torch
def test_torch_rejects_what_we_reject():
    """Our geometry rules are torch's: every configuration we refuse, torch refuses too, and
    every one torch accepts we accept with the same output shape."""
    x = torch.zeros(1, 1, 5, 6)
    for k, s, p, d, ceil in itertools.product((1, 2, 3, 4, 6, 7), (1, 2, 3), (0, 1, 2, 3),
                                              (1, 2, 3), (False, True)):
        try:
            want = TF.max_pool2d(x, k, s, p, d, ceil).shape
        except RuntimeError:
            want = None
        try:
            got = F.max_pool2d(fb.zeros(1, 1, 5, 6), k, s, p, d, ceil).shape
        except ValueError:
            got = None
        assert got == (None if want is None else tuple(want)), (k, s, p, d, ceil)


def test_identity_adaptive_pool_returns_a_new_array():
    x = fb.Tensor(np.ones((1, 2, 6, 6), np.float32), requires_grad=True)
    y = F.adaptive_avg_pool2d(x, 6)
    assert not np.shares_memory(x.data, y.data)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(x.shape, np.float32))
