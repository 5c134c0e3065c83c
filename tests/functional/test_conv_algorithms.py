"""The newer convolution algorithms, forced: Winograd F(4x4, 3x3), channels-last shifted GEMM
and channels-last im2col.

Each is registered in ``functional/_conv/registry.py`` (and so can be forced through
``conv._FORCE_ALGO``) and runs here over its own grid (paddings incl. asymmetric and 'same',
odd sizes that leave partial output tiles, batch 1 and > 1, bias or not, non-contiguous
inputs, groups for Winograd, kernel sizes and dilation for shifted GEMM, strides, dilations
and paddings beyond the kernel reach (both input-gradient paths) for channels-last im2col,
intermediates kept or
rebuilt in backward) through the generic checks: float64 finite-difference gradients,
PyTorch in float32, and forward and all gradients against float64 im2col (a direct
convolution) to 1e-10, so a wrong transform entry cannot hide inside a loose tolerance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from harness import HAS_TORCH, OpCase, assert_close, check_gradcheck, check_torch, noncontiguous

import filterbank as fb
import filterbank.functional as F
from filterbank.functional import conv as conv_module
from filterbank.functional._conv import chunking, registry
from filterbank.functional._conv.geometry import _Geometry

if HAS_TORCH:
    import torch

    TF = torch.nn.functional
else:
    torch = TF = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")

ALGOS = ("winograd43", "shifted", "nhwc")


def _forced(algo, keep=True):
    def run(x, w, b=None, **kw):
        prev = conv_module._FORCE_ALGO, chunking.KEEP_BYTES
        conv_module._FORCE_ALGO = algo
        if not keep:
            chunking.KEEP_BYTES = 0
        try:
            return F.conv2d(x, w, b, **kw)
        finally:
            conv_module._FORCE_ALGO, chunking.KEEP_BYTES = prev
    return run


def _torch_conv(x, w, b=None, **kw):
    with warnings.catch_warnings():  # 'same' with an even kernel copies the input; we know
        warnings.filterwarnings("ignore", message="Using padding='same'")
        return TF.conv2d(x, w, b, **kw)


def _cases():
    rng = np.random.default_rng(12)
    grids = {
        # (x shape, C_out, kernel, padding, dilation, groups)
        "winograd43": [((2, 2, 5, 6), 3, 3, 1, 1, 1), ((1, 4, 9, 7), 4, 3, 0, 1, 2),
                       ((2, 3, 8, 8), 2, 3, "same", 1, 1), ((1, 2, 6, 11), 3, 3, (2, 0), 1, 1),
                       ((2, 2, 3, 3), 2, 3, 2, 1, 1), ((1, 3, 4, 13), 1, 3, "valid", 1, 1)],
        "shifted": [((2, 2, 5, 6), 3, 3, 1, 1, 1), ((1, 3, 7, 6), 2, 5, 2, 1, 1),
                    ((2, 2, 8, 7), 3, (3, 2), (1, 0), 1, 1), ((1, 2, 5, 5), 3, 1, 0, 1, 1),
                    ((2, 2, 9, 8), 2, 3, "same", 2, 1), ((1, 1, 7, 7), 2, 2, "same", 1, 1),
                    ((2, 2, 9, 8), 3, 3, (2, 1), (2, 1), 1)],
        # stride 1 with paddings <= d (k - 1) takes the gather path for dx, the others the
        # window-by-window scatter
        "nhwc": [((2, 2, 5, 6), 3, 3, 1, 1, 1), ((1, 3, 7, 6), 2, 5, 2, 1, 1),
                 ((2, 2, 8, 7), 3, (3, 2), (1, 0), 1, 1), ((1, 2, 5, 5), 3, 1, 0, 1, 1),
                 ((2, 2, 9, 8), 2, 3, "same", 2, 1), ((2, 3, 9, 9), 4, 3, 1, 1, 1, 2),
                 ((1, 2, 8, 7), 3, (3, 2), (1, 0), (1, 2), 1, (2, 1)),
                 ((2, 2, 7, 7), 2, 3, 3, 1, 1), ((1, 2, 9, 8), 3, 3, 1, 2, 1, 3),
                 ((2, 2, 6, 6), 3, 2, "valid", 1, 1)],
    }
    cases = []
    for i, (algo, spec) in enumerate((a, s) for a in ALGOS for s in grids[a]):
        shape, c_out, k, p, d, groups = spec[:6]
        stride = spec[6] if len(spec) > 6 else 1
        ks = (k, k) if isinstance(k, int) else k
        x = rng.standard_normal(shape)
        w = rng.standard_normal((c_out, shape[1] // groups) + ks)
        b = rng.standard_normal(c_out) if i % 2 else None
        noncontig, keep = i % 3 == 0, i % 4 != 1
        if noncontig:
            x = noncontiguous(x)
        kw = dict(padding=p, dilation=d, groups=groups)
        if stride != 1:
            kw["stride"] = stride
        name = (f"{algo}-x{shape}-o{c_out}-k{ks}-p{p}-d{d}-g{groups}"
                f"{'' if stride == 1 else f'-s{stride}'}"
                f"{'-nobias' if b is None else ''}{'-noncontig' if noncontig else ''}"
                f"{'' if keep else '-rebuild'}")
        inputs = [x, w] + ([b] if b is not None else [])
        cases.append(OpCase(name, _forced(algo, keep), inputs, kw, torch_fn=_torch_conv))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_float64_direct_convolution(case):
    """y, dx, dW and db against float64 im2col, to 1e-10 of their magnitude."""
    results, gy = [], None
    for fn in (case.fn, _forced("im2col")):
        ts = [fb.Tensor(np.asarray(a), dtype=np.float64, requires_grad=True)
              for a in case.inputs]
        y = fn(*ts, **case.kwargs)
        if gy is None:
            gy = np.random.default_rng(3).standard_normal(y.shape)
        y.backward(fb.Tensor(gy, dtype=np.float64))
        assert y.dtype == np.float64
        results.append([y.data] + [t.grad.data for t in ts])
    for got, want, what in zip(*results, ("y", "dx", "dw", "db")):
        assert_close(got, want, atol=1e-10, rtol=1e-10, what=f"{case} {what}")


def test_grid_covers_both_algorithms():
    names = " ".join(str(c) for c in CASES)
    for part in ALGOS + ("-noncontig", "-nobias", "-rebuild", "-g2", "-d2", "-psame",
                         "-pvalid", "-k(5,5)", "-k(3,2)", "-k(1,1)", "-s2", "-s(2,1)", "-p3"):
        assert part in names.replace(", ", ","), part


@pytest.mark.parametrize("algo", ALGOS)
def test_registered_and_forcible(algo):
    """Each refuses, by name, a convolution it does not compute (stride 2 for the stride-1
    algorithms, groups for channels-last im2col)."""
    assert registry.get(algo).name == algo
    kw = {"groups": 2} if algo == "nhwc" else {"stride": 2}
    stride, groups = (kw.get("stride", 1),) * 2, kw.get("groups", 1)
    g = _Geometry((2, 4, 8, 8), (4, 4 // groups, 3, 3), stride, ((1, 1),) * 2, (1, 1), groups)
    x = fb.Tensor(np.zeros((2, 4, 8, 8), np.float32))
    w = fb.Tensor(np.zeros((4, 4 // groups, 3, 3), np.float32))
    assert not registry.get(algo).applies(g)
    with pytest.raises(ValueError, match=algo):
        _forced(algo)(x, w, padding=1, **kw)


@pytest.mark.parametrize("algo, keep", [("winograd43", True), ("winograd43", False),
                                        ("shifted", True), ("nhwc", True), ("nhwc", False)])
def test_float32_at_realistic_channel_counts(algo, keep):
    """Float32 against float32 im2col with 64 input channels (many tiles, several chunks), at
    the tolerance the conv tests use for F(2x2, 3x3)."""
    rng = np.random.default_rng(4)
    x = fb.Tensor(rng.standard_normal((5, 64, 14, 13), dtype=np.float32), requires_grad=True)
    w = fb.Tensor(rng.standard_normal((48, 64, 3, 3), dtype=np.float32) * 0.1,
                  requires_grad=True)
    b = fb.Tensor(rng.standard_normal(48, dtype=np.float32), requires_grad=True)
    gy = rng.standard_normal((5, 48, 14, 13)).astype(np.float32)
    results = []
    for fn in (_forced(algo, keep), _forced("im2col")):
        for t in (x, w, b):
            t.grad = None
        y = fn(x, w, b, padding=1)
        y.backward(gy)
        results.append([y.data.copy(), x.grad.data, w.grad.data, b.grad.data])
    for got, want, what in zip(*results, ("y", "dx", "dw", "db")):
        assert got.dtype == np.float32
        assert_close(got, want, atol=1e-5, rtol=1e-4, what=what)


@pytest.mark.parametrize("algo", ALGOS)
def test_skips_unneeded_gradients(algo):
    rng = np.random.default_rng(5)
    x = fb.Tensor(rng.standard_normal((2, 3, 6, 6), dtype=np.float32))
    w = fb.Tensor(rng.standard_normal((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    y = _forced(algo)(x, w, padding=1)
    assert getattr(y.grad_fn.algo, "impl", y.grad_fn.algo) is registry.get(algo).impl
    y.sum().backward()
    assert x.grad is None and w.grad is not None
    x.requires_grad = True
    y = _forced(algo)(x, fb.Tensor(w.data.copy()), padding=1)
    assert not hasattr(y.grad_fn, "x") and not hasattr(y.grad_fn, "v")
    y.sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("algo", ALGOS)
def test_gradients_are_bit_reproducible_with_many_chunks(algo, monkeypatch):
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "3")
    monkeypatch.setattr(registry.get(algo).impl, "CHUNK_BYTES", 1 << 12)
    if algo == "nhwc":  # small convolutions run on the calling thread: use the pool anyway
        monkeypatch.setattr(registry.get(algo).impl, "POOL_MACS", 0)
    rng = np.random.default_rng(7)
    x = fb.Tensor(rng.standard_normal((24, 8, 12, 12), dtype=np.float32))
    w = fb.Tensor(rng.standard_normal((8, 8, 3, 3), dtype=np.float32), requires_grad=True)
    b = fb.Tensor(rng.standard_normal(8, dtype=np.float32), requires_grad=True)
    gy = rng.standard_normal((24, 8, 12, 12)).astype(np.float32)
    first = None
    for _ in range(4):
        w.grad = b.grad = None
        _forced(algo, keep=False)(x, w, b, padding=1).backward(gy)
        got = (w.grad.data.copy(), b.grad.data.copy())
        if first is None:
            first = got
        else:
            assert np.array_equal(got[0], first[0]) and np.array_equal(got[1], first[1])


def test_winograd43_transform_matrices():
    """Lavin & Gray's F(4, 3) in 1-d: A^T [(G g) * (B^T d)] is the 4-output correlation."""
    from filterbank.functional._conv import winograd43 as w43

    rng = np.random.default_rng(8)
    d, g = rng.standard_normal(6), rng.standard_normal(3)
    want = np.array([d[i:i + 3] @ g for i in range(4)])
    np.testing.assert_allclose(w43.AT @ ((w43.G @ g) * (w43.BT @ d)), want, rtol=1e-12)



@pytest.mark.parametrize("xshape, c_out, want", [
    ((32, 64, 32, 32), 64, "winograd43"), ((32, 64, 56, 56), 64, "winograd43"),
    ((32, 128, 28, 28), 128, "winograd43"), ((64, 64, 16, 16), 32, "winograd43"),
    ((32, 256, 14, 14), 256, "winograd"), ((32, 512, 7, 7), 512, "im2col"),
    ((64, 16, 28, 28), 16, "winograd"), ((64, 3, 32, 32), 64, "im2col"),
    ((64, 32, 16, 16), 32, "im2col"), ((8, 256, 32, 32), 256, "winograd")])
def test_winograd43_rule(xshape, c_out, want, monkeypatch):
    """Its measured rule: 32-128 channels, 24x24+ outputs (16x16+ with 64 channels on a
    side); ``Winograd43.AUTO = False`` switches it off."""
    g = _Geometry(xshape, (c_out, xshape[1], 3, 3), (1, 1), ((1, 1),) * 2, (1, 1), 1)
    assert registry.choose(g).name == want
    monkeypatch.setattr(registry.get("winograd43").impl, "AUTO", False)
    assert registry.choose(g).name != "winograd43"


@pytest.mark.parametrize("algo", ALGOS)
def test_runs_on_device_arrays(algo):
    """On the strict fake CuPy (tests/fakecupy): output and gradients stay device arrays, with
    the host's values (the device runs the batch as one chunk: dW sums in another order)."""
    from fakecupy import installed  # noqa: PLC0415

    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(s, dtype=np.float32)
              for s in ((3, 4, 9, 7), (5, 4, 3, 3), (5,), (3, 5, 9, 7))]

    def run(move):
        ts = [fb.Tensor._wrap(move(a.copy())) for a in arrays[:3]]
        for t in ts:
            t.requires_grad = True
        y = _forced(algo)(*ts, padding=1)
        y.backward(fb.Tensor._wrap(move(arrays[3].copy())))
        return [y.data] + [t.grad.data for t in ts]

    host = run(lambda a: a)
    with installed() as cupy:
        device = run(lambda a: a.view(cupy.ndarray))
        for d, h, what in zip(device, host, ("y", "dx", "dw", "db")):
            assert isinstance(d, cupy.ndarray), f"{what} is a {type(d)}"
            assert_close(d.get(), h, atol=1e-5, rtol=1e-4, what=what)
