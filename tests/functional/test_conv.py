"""functional.conv: conv1d/2d/3d, conv_transpose1d/2d/3d and the padding modes.

A registry of cases over a grid of strides (1-3), paddings (ints, asymmetric tuples, 'valid',
'same' with odd and even kernels), dilations (1-2), groups (1, 2, depthwise), odd and even
sizes, batch 1 and > 1, with and without bias and with non-contiguous inputs runs through the
generic checks: float64 finite-difference gradients, PyTorch in float32 (output and the
gradients of input, weight and bias) and float32 dtype preservation. Both algorithms (im2col
and Winograd) are forced on the cases they apply to; a test checks which one is picked.
"""

from __future__ import annotations

import itertools
import warnings

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
from filterbank.functional import conv as conv_module
from filterbank.functional._conv import chunking

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    TF = torch.nn.functional
else:
    torch = TF = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _forced(fn, algo, keep=True):
    """``fn`` run with the convolution algorithm forced to ``algo`` (None: automatic); with
    ``keep=False`` nothing is kept from forward for dW (backward rebuilds it)."""
    def run(*args, **kwargs):
        prev = conv_module._FORCE_ALGO, chunking.KEEP_BYTES
        conv_module._FORCE_ALGO = algo
        if not keep:
            chunking.KEEP_BYTES = 0
        try:
            return fn(*args, **kwargs)
        finally:
            conv_module._FORCE_ALGO, chunking.KEEP_BYTES = prev
    return run


def _quiet(fn):
    """torch warns that 'same' padding with an even kernel copies the input; we know."""
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using padding='same'")
            return fn(*args, **kwargs)
    return run


def _conv_fns(name, algo=None, keep=True):
    ours = getattr(F, name)  # torch's is looked up when called: the registry builds without it
    return (_forced(lambda x, w, b=None, **kw: ours(x, w, b, **kw), algo, keep),
            _quiet(lambda x, w, b=None, **kw: getattr(TF, name)(x, w, b, **kw)))


def _case(name, fn_name, x, w, b, kwargs, algo=None, noncontig=False, keep=True):
    fn, torch_fn = _conv_fns(fn_name, algo, keep)
    name += "" if keep else "-rebuild"
    if noncontig:
        x = noncontiguous(x)
    inputs = [x, w] + ([b] if b is not None else [])
    return OpCase(name, fn, inputs, kwargs, torch_fn=torch_fn)


def _out_size(size, k, s, p, d):
    return (size + p[0] + p[1] - d * (k - 1) - 1) // s + 1


def _pairs(padding, ks, ss, ds):
    if padding == "valid":
        return [(0, 0)] * len(ks)
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(ks, ds)]
    p = padding if isinstance(padding, tuple) else (padding,) * len(ks)
    return [(v, v) for v in p]


# ---------------------------------------------------------------------------- registry
def _conv_cases():
    cases = []
    rng = np.random.default_rng(0)
    sizes = {1: [(7,), (8,)], 2: [(5, 6), (6, 5)], 3: [(4, 5, 3)]}
    kernels = {1: [3, 2, 1], 2: [3, (3, 2), 2, 1], 3: [(2, 3, 2), 1]}
    groups_opts = ("1", "2", "depthwise")
    i = 0
    for nd in (1, 2, 3):
        strides = (1, 2, 3) if nd < 3 else (1, 2)
        paddings = (0, 1, "same", "valid", tuple(range(nd)))
        for s, p, d, gname in itertools.product(strides, paddings, (1, 2), groups_opts):
            if p == "same" and s != 1:
                continue
            if nd == 3 and (d == 2 or gname == "depthwise"):
                continue  # 3-d: a thinner grid keeps gradcheck fast
            i += 1
            k = kernels[nd][i % len(kernels[nd])]
            ks = (k,) * nd if isinstance(k, int) else k
            size = sizes[nd][i % len(sizes[nd])]
            pairs = _pairs(p, ks, (s,) * nd, (d,) * nd)
            if any(_out_size(n, kk, s, pp, d) < 1 for n, kk, pp in zip(size, ks, pairs)):
                continue
            c_in, groups, c_out = {"1": (2, 1, 3), "2": (4, 2, 2),
                                   "depthwise": (2, 2, 4)}[gname]
            batch = 1 + i % 2
            x = rng.standard_normal((batch, c_in) + size)
            w = rng.standard_normal((c_out, c_in // groups) + ks)
            b = rng.standard_normal(c_out) if i % 3 else None
            kw = dict(stride=s, padding=p, dilation=d, groups=groups)
            name = (f"conv{nd}d-x{(batch, c_in) + size}-k{ks}-s{s}-p{p}-d{d}-g{gname}"
                    f"{'-nobias' if b is None else ''}{'-noncontig' if i % 4 == 0 else ''}")
            cases.append(_case(name, f"conv{nd}d", x, w, b, kw, noncontig=i % 4 == 0,
                               keep=i % 5 != 0))
            if nd == 2 and gname == "1":  # automatic choice is row-Toeplitz for most of these
                cases.append(_case(name + "-forced-im2col", "conv2d", x, w, b, kw,
                                   algo="im2col", noncontig=i % 4 == 0))
    # both 2-d algorithms on the shapes Winograd applies to (3x3, stride 1, no dilation)
    for algo, (shape, p, groups, c_out) in itertools.product(
            ("winograd", "im2col"),
            [((2, 2, 5, 6), 1, 1, 3), ((1, 4, 6, 6), 0, 2, 4), ((2, 2, 4, 5), "same", 1, 2),
             ((1, 3, 5, 5), (2, 0), 1, 2), ((2, 2, 3, 3), 2, 2, 2), ((1, 2, 7, 4), "valid", 1, 1)]):
        i += 1
        x = rng.standard_normal(shape)
        w = rng.standard_normal((c_out, shape[1] // groups, 3, 3))
        b = rng.standard_normal(c_out) if i % 2 else None
        kw = dict(padding=p, groups=groups)
        cases.append(_case(f"conv2d-{algo}-x{shape}-p{p}-g{groups}"
                           f"{'-noncontig' if i % 3 == 0 else ''}", "conv2d", x, w, b, kw,
                           algo=algo, noncontig=i % 3 == 0, keep=i % 2 == 0))
    # row-Toeplitz forced on 2-d shapes it is never picked for too (even and 1-wide kernels)
    for (shape, k, s, p, d), bias in itertools.product(
            [((2, 1, 6, 7), (5, 5), 1, 2, 1), ((1, 3, 7, 6), (3, 2), 2, (1, 0), 1),
             ((2, 2, 8, 7), (2, 3), 3, 1, 2), ((1, 2, 5, 5), (1, 1), 1, 0, 1),
             ((2, 2, 6, 5), (3, 3), 1, "same", 2), ((1, 1, 7, 7), (2, 2), 1, "same", 1)],
            (True, False)):
        i += 1
        x = rng.standard_normal(shape)
        w = rng.standard_normal((3, shape[1]) + k)
        b = rng.standard_normal(3) if bias else None
        kw = dict(stride=s, padding=p, dilation=d)
        cases.append(_case(f"conv2d-toeplitz-x{shape}-k{k}-s{s}-p{p}-d{d}"
                           f"{'' if bias else '-nobias'}{'-noncontig' if i % 3 == 0 else ''}",
                           "conv2d", x, w, b, kw, algo="toeplitz", noncontig=i % 3 == 0))
    return cases


def _transpose_cases():
    cases = []
    rng = np.random.default_rng(1)
    sizes = {1: [(4,), (5,)], 2: [(3, 4), (4, 3)], 3: [(2, 3, 2)]}
    i = 0
    for nd in (1, 2, 3):
        strides = (1, 2, 3) if nd < 3 else (1, 2)
        for s, p, d, groups in itertools.product(strides, (0, 1), (1, 2), (1, 2)):
            if nd == 3 and d == 2:
                continue
            i += 1
            k = 3 if i % 2 else 2
            ks = (k,) * nd
            size = sizes[nd][i % len(sizes[nd])]
            opad = (max(s, d) - 1) if i % 3 else 0
            if any((n - 1) * s - 2 * p + d * (k - 1) + opad + 1 < 1 for n in size):
                continue
            batch = 1 + i % 2
            c_in, c_out = 2 * groups, 2 if groups == 2 else 3
            x = rng.standard_normal((batch, c_in) + size)
            w = rng.standard_normal((c_in, c_out // groups) + ks)
            b = rng.standard_normal(c_out) if i % 3 != 1 else None
            kw = dict(stride=s, padding=p, output_padding=opad, groups=groups, dilation=d)
            name = (f"conv_transpose{nd}d-x{(batch, c_in) + size}-k{k}-s{s}-p{p}-op{opad}-d{d}"
                    f"-g{groups}{'-nobias' if b is None else ''}"
                    f"{'-noncontig' if i % 4 == 0 else ''}")
            cases.append(_case(name, f"conv_transpose{nd}d", x, w, b, kw,
                               noncontig=i % 4 == 0))
    return cases


def _pad_mode_cases():
    cases = []
    rng = np.random.default_rng(2)
    for mode, (shape, pads) in itertools.product(
            ("reflect", "replicate", "circular"),
            [((2, 2, 5), ((2, 1),)), ((1, 2, 4, 5), ((1, 2), (3, 0))),
             ((1, 1, 3, 4, 3), ((1, 1), (0, 2), (2, 1)))]):
        x = rng.standard_normal(shape)
        flat = tuple(v for pair in reversed(pads) for v in pair)  # torch's F.pad order
        cases.append(OpCase(
            f"pad_mode-{mode}-x{shape}-p{pads}",
            lambda x, pads, mode: conv_module.pad_mode(x, pads, mode), [x],
            dict(pads=pads, mode=mode),
            torch_fn=lambda x, pads, mode, flat=flat: TF.pad(x, flat, mode=mode)))
    return cases


CONV = _conv_cases()
TRANSPOSE = _transpose_cases()
PAD = _pad_mode_cases()
ALL = CONV + TRANSPOSE + PAD


@pytest.mark.parametrize("case", ALL, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@needs_torch
@pytest.mark.parametrize("case", ALL, ids=str)
def test_vs_torch(case):
    check_torch(case)


@pytest.mark.parametrize("case", ALL[::3], ids=str)
def test_float32_preserved(case):
    check_float32(case)


def test_registry_covers_the_grid():
    names = " ".join(str(c) for c in ALL)
    for part in ("-s1-", "-s2-", "-s3-", "-psame", "-pvalid", "-d2-", "-gdepthwise", "-g2",
                 "x(1,", "x(2,", "-noncontig", "-nobias", "conv1d", "conv3d", "-op1-",
                 "conv2d-winograd", "conv2d-im2col", "conv2d-toeplitz", "-forced-im2col",
                 "k(3, 2)", "-k2-", "k(1, 1)", "-rebuild"):
        assert part in names.replace(", ", ",") or part in names, part


# ------------------------------------------------------------------ hand-computed answers
def test_lecture_example():
    """The lecture's 4x4 image cross-correlated with [[1, 0], [0, 2]]."""
    x = fb.tensor([[[[1, .5, 1, 0], [0, .25, .5, 1], [1, .25, 0, 1], [.5, 0, 1, 1]]]])
    w = fb.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    y = F.conv2d(x, w)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy()[0, 0], [[1.5, 1.5, 3], [.5, .25, 2.5], [1, 2.25, 2]])


def test_transpose_scatters_the_kernel():
    """Each input value stamps ``value * w`` into the output at stride 2."""
    x = fb.tensor([[[1.0, 2.0, 3.0]]])
    w = fb.tensor([[[1.0, 10.0, 100.0]]])
    y = F.conv_transpose1d(x, w, stride=2)
    np.testing.assert_allclose(y.numpy()[0, 0], [1, 10, 102, 20, 203, 30, 300])


def test_one_by_one_is_a_matrix_product():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 5, 3, 4)), rng.standard_normal((6, 5, 1, 1))
    y = F.conv2d(fb.tensor(x, dtype="float64"), fb.tensor(w, dtype="float64"))
    np.testing.assert_allclose(y.numpy(), np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x),
                               rtol=1e-12)


# ------------------------------------------------------------------------- algorithms
def test_algorithm_choice():
    geometry = conv_module._Geometry
    pads = ((1, 1), (1, 1))
    from filterbank.functional._conv.winograd43 import Winograd43

    for g in (geometry((8, 64, 32, 32), (64, 64, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((8, 128, 16, 16), (128, 128, 3, 3), (1, 1), pads, (1, 1), 1)):
        assert conv_module._algorithm(g) is Winograd43  # F(4x4, 3x3): 32-128 channels
    for g in (geometry((8, 64, 32, 32), (64, 64, 3, 3), (2, 2), pads, (1, 1), 1),
              geometry((8, 64, 32, 32), (64, 64, 3, 3), (1, 1), pads, (2, 2), 1),
              geometry((8, 64, 32, 32), (64, 1, 3, 3), (1, 1), pads, (1, 1), 64),
              geometry((8, 3, 32, 32), (64, 3, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((8, 64, 32, 32), (64, 64, 1, 1), (1, 1), ((0, 0),) * 2, (1, 1), 1),
              geometry((8, 512, 4, 4), (512, 512, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((8, 16, 14, 14), (16, 16, 3, 3), (1, 1), pads, (1, 1), 1)):
        assert conv_module._algorithm(g) is conv_module._Im2col
    # small feature maps (8x8 or less) with 16-256 channels: channels-last im2col
    from filterbank.functional._conv.nhwc import Im2colNHWC

    for g in (geometry((8, 256, 8, 8), (256, 256, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((8, 16, 14, 14), (32, 16, 3, 3), (2, 2), pads, (1, 1), 1),
              geometry((8, 64, 4, 4), (64, 64, 3, 3), (1, 1), pads, (1, 1), 1)):
        assert conv_module._algorithm(g) is Im2colNHWC
    for g in (geometry((8, 16, 28, 28), (16, 16, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((8, 256, 14, 14), (256, 256, 3, 3), (1, 1), pads, (1, 1), 1)):
        assert conv_module._algorithm(g) is conv_module._Winograd
    # few output channels but many input channels, or a wide kernel row: im2col
    for g in (geometry((4, 64, 1, 256), (8, 64, 1, 32), (1, 1), ((0, 0),) * 2, (1, 1), 1),
              geometry((64, 64, 22, 22), (8, 64, 3, 3), (1, 1), pads, (1, 1), 1),
              geometry((64, 32, 38, 38), (8, 32, 5, 5), (1, 1), pads, (1, 1), 1)):
        assert conv_module._algorithm(g) is conv_module._Im2col
    # LeNet-5's layers (few output channels, narrow images): row-Toeplitz
    for g in (geometry((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), ((2, 2),) * 2, (1, 1), 1),
              geometry((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0),) * 2, (1, 1), 1)):
        assert conv_module._algorithm(g) is conv_module._RowToeplitz


@pytest.mark.parametrize("padding, keep", [(1, True), (0, False), ((2, 1), True)])
def test_winograd_matches_im2col_at_size(padding, keep):
    """Float32 Winograd against float32 im2col on a realistic channel count."""
    rng = np.random.default_rng(4)
    x = fb.Tensor(rng.standard_normal((3, 32, 13, 12), dtype=np.float32), requires_grad=True)
    w = fb.Tensor(rng.standard_normal((24, 32, 3, 3), dtype=np.float32) * 0.1,
                  requires_grad=True)
    b = fb.Tensor(rng.standard_normal(24, dtype=np.float32), requires_grad=True)
    gy = rng.standard_normal((3, 24, 13 + 2 * (padding if isinstance(padding, int) else 2) - 2,
                              12 + 2 * (padding if isinstance(padding, int) else 1) - 2)
                             ).astype(np.float32)
    results = []
    for algo in ("winograd", "im2col"):
        for t in (x, w, b):
            t.grad = None
        y = _forced(F.conv2d, algo, keep)(x, w, b, padding=padding)
        y.backward(gy)
        results.append([y.data.copy(), x.grad.data, w.grad.data, b.grad.data])
    for got, want, what in zip(*results, ("y", "dx", "dw", "db")):
        assert got.dtype == np.float32
        assert_close(got, want, atol=1e-5, rtol=1e-4, what=what)


@pytest.mark.parametrize("algo", ["winograd", "im2col"])
def test_gradients_are_bit_reproducible_with_many_chunks(algo, monkeypatch):
    """Several chunks per worker thread: dW/db must not depend on which thread summed which
    chunk (exact resume and same-seed runs rely on it)."""
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "3")
    cls = conv_module._Winograd if algo == "winograd" else conv_module._Im2col
    monkeypatch.setattr(cls, "CHUNK_BYTES", 1 << 12)  # force many small chunks
    rng = np.random.default_rng(7)
    x = fb.Tensor(rng.standard_normal((48, 8, 12, 12), dtype=np.float32))
    w = fb.Tensor(rng.standard_normal((8, 8, 3, 3), dtype=np.float32), requires_grad=True)
    b = fb.Tensor(rng.standard_normal(8, dtype=np.float32), requires_grad=True)
    gy = rng.standard_normal((48, 8, 12, 12)).astype(np.float32)
    first = None
    for _ in range(6):
        w.grad = b.grad = None
        _forced(F.conv2d, algo, keep=False)(x, w, b, padding=1).backward(gy)
        got = (w.grad.data.copy(), b.grad.data.copy())
        if first is None:
            first = got
        else:
            assert np.array_equal(got[0], first[0]) and np.array_equal(got[1], first[1])


@needs_torch
@pytest.mark.parametrize("out_channels, groups", [(8, 1), (64, 1), (128, 2)])
def test_im2col_weight_gradient_in_both_layouts(out_channels, groups, monkeypatch):
    """dW is accumulated as (K x O) for few output channels and (O x K) for many (>= 64 per
    group); both layouts, with several chunks per worker, must equal PyTorch's."""
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "2")
    monkeypatch.setattr(conv_module._Im2col, "CHUNK_BYTES", 1 << 12)  # many chunks
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 4 * groups, 7, 7)).astype(np.float32)
    w = rng.standard_normal((out_channels, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    gy = rng.standard_normal((40, out_channels, 4, 4)).astype(np.float32)
    xs, ws, bs = (fb.Tensor(a, requires_grad=True) for a in (x, w, b))
    _forced(F.conv2d, "im2col")(xs, ws, bs, stride=2, padding=1, groups=groups).backward(gy)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    TF.conv2d(xt, wt, bt, stride=2, padding=1, groups=groups).backward(torch.tensor(gy))
    for ours, theirs, what in ((xs, xt, "dx"), (ws, wt, "dw"), (bs, bt, "db")):
        assert ours.grad.dtype == np.float32
        assert_close(ours.grad.data, theirs.grad.numpy(), atol=1e-4, rtol=1e-4, what=what)


@pytest.mark.parametrize("algo", ["im2col", "winograd", "toeplitz"])
def test_skips_unneeded_gradients(algo):
    """No input gradient for a first layer, no weight gradient for a frozen weight."""
    rng = np.random.default_rng(5)
    conv = _forced(F.conv2d, algo)
    x = fb.Tensor(rng.standard_normal((2, 3, 6, 6), dtype=np.float32))
    w = fb.Tensor(rng.standard_normal((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    y = conv(x, w, padding=1)
    assert y.grad_fn.algo.__name__.lower().endswith(algo)
    y.sum().backward()
    assert x.grad is None and w.grad is not None
    x.requires_grad = True
    w2 = fb.Tensor(w.data.copy())
    y = conv(x, w2, padding=1)
    for saved_for_dw in ("x", "cols", "v", "rows"):  # nothing kept for a weight gradient
        assert not hasattr(y.grad_fn, saved_for_dw)
    y.sum().backward()
    assert x.grad is not None and w2.grad is None
    x3 = fb.Tensor(x.data.copy())
    y = conv(x3, w, padding=1)
    for saved_for_dx in ("w", "t"):  # nothing kept for an input gradient
        assert not hasattr(y.grad_fn, saved_for_dx)


def test_empty_batch_backward():
    x = fb.Tensor(np.zeros((0, 2, 5, 5), np.float32), requires_grad=True)
    w = fb.Tensor(np.ones((3, 2, 3, 3), np.float32), requires_grad=True)
    b = fb.Tensor(np.ones(3, np.float32), requires_grad=True)
    F.conv2d(x, w, b, padding=1).sum().backward()
    assert x.grad.shape == (0, 2, 5, 5) and x.grad.dtype == np.float32
    assert not w.grad.data.any() and not b.grad.data.any()


@pytest.mark.parametrize("algo, keep, padding", [
    ("winograd", True, 1), ("im2col", True, 1), ("winograd", False, 1), ("toeplitz", True, 2),
    ("toeplitz", True, 0)])
def test_reused_buffers_never_clobber_live_data(algo, keep, padding):
    """Two graphs alive at once (and their outputs) must not share workspace memory."""
    rng = np.random.default_rng(6)
    conv = _forced(F.conv2d, algo, keep)
    # toeplitz: input, padded input, rows, outputs and input gradient all >= 1 MiB, the size
    # from which the workspace hands out (and reuses) buffers; without padding the input
    # gradient is a workspace buffer itself
    shape, k = ((4, 32, 16, 16), 3) if algo != "toeplitz" else ((32, 8, 32, 32), 5)
    xs = [fb.Tensor(rng.standard_normal(shape, dtype=np.float32), requires_grad=True)
          for _ in range(2)]
    w = fb.Tensor(rng.standard_normal((shape[1] * 2, shape[1], k, k), dtype=np.float32) * 0.1,
                  requires_grad=True)
    ys = [conv(x, w, padding=padding) for x in xs]
    ys_copy = [y.data.copy() for y in ys]
    assert not np.shares_memory(ys[0].data, ys[1].data)
    grads = []
    for x, y in zip(xs, ys):
        w.grad = None
        y.backward(fb.Tensor(np.ones(y.shape, np.float32)))
        grads.append((x.grad.data.copy(), w.grad.data.copy()))
    for x, y, y_copy, (dx, dw) in zip(xs, ys, ys_copy, grads):
        np.testing.assert_array_equal(y.data, y_copy)
        if not HAS_TORCH:  # the workspace checks above stand without the oracle
            continue
        tx = torch.tensor(x.data, requires_grad=True)
        tw = torch.tensor(w.data, requires_grad=True)
        ty = TF.conv2d(tx, tw, padding=padding)
        ty.backward(torch.ones_like(ty))
        assert_close(y_copy, ty, what="y")
        assert_close(dx, tx.grad, what="dx")
        assert_close(dw, tw.grad, what="dw")


@needs_torch
def test_unbatched_input():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((3, 6, 5)), rng.standard_normal((2, 3, 3, 3))
    y = F.conv2d(fb.tensor(x), fb.tensor(w), padding=1)
    want = TF.conv2d(torch.tensor(x[None], dtype=torch.float32),
                     torch.tensor(w, dtype=torch.float32), padding=1)[0]
    assert y.shape == (2, 6, 5)
    assert_close(y, want)


def test_empty_batch():
    y = F.conv2d(fb.zeros(0, 3, 5, 5), fb.zeros(4, 3, 3, 3))
    assert y.shape == (0, 4, 3, 3) and y.dtype == np.float32


# ------------------------------------------------------------------------------ errors
_x4 = fb.zeros(2, 4, 8, 8)
_w3 = fb.zeros(6, 3, 3, 3)

ERRORS = [
    ("rank", lambda: F.conv2d(fb.zeros(4, 8), _w3), ValueError,
     ["conv2d", "4-d", "(4, 8)"]),
    ("channels", lambda: F.conv2d(_x4, _w3), ValueError,
     ["conv2d", "expected 3 input channels", "got 4", "(2, 4, 8, 8)"]),
    ("weight rank", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3)), ValueError,
     ["conv2d", "4-d weight", "(6, 4, 3)"]),
    ("kernel larger", lambda: F.conv2d(fb.zeros(1, 3, 2, 8), _w3), ValueError,
     ["conv2d", "kernel size 3", "padded input size 2", "(1, 3, 2, 8)"]),
    ("dilated kernel larger", lambda: F.conv1d(fb.zeros(1, 1, 5), fb.zeros(1, 1, 3),
                                               dilation=3), ValueError,
     ["conv1d", "kernel size 7", "padded input size 5"]),
    ("groups divide", lambda: F.conv2d(fb.zeros(1, 4, 8, 8), fb.zeros(6, 2, 3, 3), groups=4),
     ValueError, ["conv2d", "groups=4", "(6)", "(1, 4, 8, 8)"]),
    ("groups positive", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), groups=0), ValueError,
     ["conv2d", "groups", "0"]),
    ("same strided", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), stride=2, padding="same"),
     ValueError, ["conv2d", "'same'", "stride"]),
    ("bad padding", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), padding="full"), ValueError,
     ["conv2d", "'full'"]),
    ("negative padding", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), padding=-1), ValueError,
     ["conv2d", "padding", "-1"]),
    ("zero stride", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), stride=0), ValueError,
     ["conv2d", "stride", "0"]),
    ("bias shape", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3), fb.zeros(5)), ValueError,
     ["conv2d", "(6,)", "(5,)"]),
    ("dtype", lambda: F.conv2d(_x4, fb.zeros(6, 4, 3, 3, dtype="float64")), TypeError,
     ["conv2d", "float32", "float64"]),
    ("not a tensor", lambda: F.conv2d([1, 2], _w3), TypeError, ["conv2d", "list"]),
    ("transpose channels", lambda: F.conv_transpose2d(_x4, fb.zeros(3, 2, 3, 3)), ValueError,
     ["conv_transpose2d", "expected 3 input channels", "got 4"]),
    ("transpose output size", lambda: F.conv_transpose1d(fb.zeros(1, 1, 1), fb.zeros(1, 1, 2),
                                                         padding=1), ValueError,
     ["conv_transpose1d", "output size (0,)", "not positive"]),
    ("transpose output padding", lambda: F.conv_transpose2d(_x4, fb.zeros(4, 2, 3, 3),
                                                            stride=2, output_padding=2),
     ValueError, ["conv_transpose2d", "output padding", "(2, 2)"]),
    ("transpose rank", lambda: F.conv_transpose3d(fb.zeros(4, 8, 8), fb.zeros(4, 2, 3, 3, 3)),
     ValueError, ["conv_transpose3d", "5-d", "(4, 8, 8)"]),
]


@pytest.mark.parametrize("name, call, exc, parts", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name, call, exc, parts):
    with pytest.raises(exc) as info:
        call()
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
