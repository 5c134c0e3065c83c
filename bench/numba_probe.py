"""Would numba JIT kernels speed up filterbank's data movement? (issue 12, lever 3; a probe).

Times filterbank's NumPy implementation against numba kernels, side by side in one process,
interleaved, median of several rounds, for im2col / col2im, 2x2 max-pool forward and backward,
batch norm forward and backward (training) and ReLU + 2x2 max-pool fused, on LeNet-5 and
ResNet-18-CIFAR shapes, float32. Each numba kernel comes serial (``@njit(cache=True)``) and
parallel (``parallel=True``, ``prange``, 2 threads); each result is checked against filterbank's
(forward through the public ops on Tensors that require grad, backward through their Function).

numba is not a filterbank dependency; run this from a separate venv that has it, on the source
tree (numba is imported lazily, so ruff and the main venv never need it)::

    python3 -m venv /tmp/nbvenv && /tmp/nbvenv/bin/pip install numpy numba safetensors \
        threadpoolctl tqdm
    PYTHONPATH=src NUMBA_CACHE_DIR=/tmp/nbcache /tmp/nbvenv/bin/python bench/numba_probe.py
    PYTHONPATH=src /tmp/nbvenv/bin/python bench/numba_probe.py --costs

On a machine that other processes keep busy, wall times of multi-threaded code swing by
several times between runs. ``--cpu`` times the process's CPU seconds instead; with
``FILTERBANK_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` the NumPy path runs on one thread, so the
NumPy and serial numba columns then compare the work each does, whatever else runs (the
parallel column then counts both threads' CPU time, spin-waits included)::

    FILTERBANK_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src NUMBA_CACHE_DIR=/tmp/nbcache \
        /tmp/nbvenv/bin/python bench/numba_probe.py --cpu

``--costs`` measures what numba costs: ``import numba``, the cold first-call compile of every
kernel (fresh ``NUMBA_CACHE_DIR``), the warm start from that cache (a second process), the
installed size of numba + llvmlite, which threading layer numba picks, and whether its
parallel kernels slow down a 2-thread OpenBLAS GEMM or filterbank's convolution thread pool
running right after them.

``--profile`` (main venv, no numba needed) gives each op family's share of one training step,
by cProfile on one thread::

    FILTERBANK_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/numba_probe.py \
        --profile
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

# replaced by numba.prange once numba is imported (see _jit); plain range in Python mode
prange = range

LENET = [64, 256]  # batch sizes; ResNet-18-CIFAR: 32 and 64
RESNET_STAGES = [(64, 32), (128, 16), (256, 8), (512, 4)]  # (channels, height = width)


# ------------------------------------------------------------------------ numba kernels
# Written once with prange; _jit compiles a renamed copy for the serial variant (prange is
# range there) so the two variants keep separate cache entries.


def k_im2col(x, kh, kw, pad, cols):
    """cols[c, k, n, oh, ow] = x_pad[n, c, oh + i, ow + j], k = i * kw + j (stride 1)."""
    n_, c_, h, w = x.shape
    ho, wo = cols.shape[3], cols.shape[4]
    kk = kh * kw
    for ck in prange(c_ * kk):
        c = ck // kk
        k = ck % kk
        i = k // kw
        j = k % kw
        for n in range(n_):
            for oh in range(ho):
                ih = oh + i - pad
                if ih < 0 or ih >= h:
                    for ow in range(wo):
                        cols[c, k, n, oh, ow] = 0.0
                else:
                    for ow in range(wo):
                        iw = ow + j - pad
                        if iw >= 0 and iw < w:
                            cols[c, k, n, oh, ow] = x[n, c, ih, iw]
                        else:
                            cols[c, k, n, oh, ow] = 0.0


def k_col2im(dcols, kh, kw, pad, dx):
    """dx[n, c] = sum over offsets of the columns shifted back (each plane by one thread)."""
    n_, c_, h, w = dx.shape
    ho, wo = dcols.shape[3], dcols.shape[4]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for ih in range(h):
            for iw in range(w):
                dx[n, c, ih, iw] = 0.0
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                for oh in range(ho):
                    ih = oh + i - pad
                    if ih < 0 or ih >= h:
                        continue
                    for ow in range(wo):
                        iw = ow + j - pad
                        if iw >= 0 and iw < w:
                            dx[n, c, ih, iw] += dcols[c, k, n, oh, ow]


def k_maxpool2(x, y, idx):
    """2x2 stride-2 max; idx = offset (0..3) of the first maximum in scan order."""
    n_, c_, _, _ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for oh in range(ho):
            for ow in range(wo):
                best = x[n, c, 2 * oh, 2 * ow]
                b = 0
                for o in range(1, 4):
                    v = x[n, c, 2 * oh + o // 2, 2 * ow + o % 2]
                    if v > best:
                        best = v
                        b = o
                y[n, c, oh, ow] = best
                idx[n, c, oh, ow] = b


def k_maxpool2_back(gy, idx, dx):
    n_, c_, ho, wo = gy.shape
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for oh in range(ho):
            for ow in range(wo):
                g = gy[n, c, oh, ow]
                b = idx[n, c, oh, ow]
                for o in range(4):
                    dx[n, c, 2 * oh + o // 2, 2 * ow + o % 2] = g if o == b else 0.0


def k_relu_maxpool2(x, y, idx):
    """max(0, 2x2 max): the pooled ReLU; the gradient flows to idx where y > 0."""
    n_, c_, _, _ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for oh in range(ho):
            for ow in range(wo):
                best = x[n, c, 2 * oh, 2 * ow]
                b = 0
                for o in range(1, 4):
                    v = x[n, c, 2 * oh + o // 2, 2 * ow + o % 2]
                    if v > best:
                        best = v
                        b = o
                y[n, c, oh, ow] = best if best > 0 else 0.0
                idx[n, c, oh, ow] = b


def k_relu_maxpool2_back(gy, y, idx, dx):
    n_, c_, ho, wo = gy.shape
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for oh in range(ho):
            for ow in range(wo):
                g = gy[n, c, oh, ow] if y[n, c, oh, ow] > 0 else 0.0
                b = idx[n, c, oh, ow]
                for o in range(4):
                    dx[n, c, 2 * oh + o // 2, 2 * ow + o % 2] = g if o == b else 0.0


def k_bn_forward(x3, weight, bias, eps, xc, y, mean, inv_std):
    """Training batch norm on (N, C, L): float64 sums in one read, then xc and y in one pass."""
    n_, c_, l_ = x3.shape
    cnt = n_ * l_
    for c in prange(c_):
        s = 0.0
        for n in range(n_):
            for j in range(l_):
                s += x3[n, c, j]
        m = s / cnt
        q = 0.0
        for n in range(n_):
            for j in range(l_):
                d = x3[n, c, j] - m
                q += d * d
        istd = 1.0 / np.sqrt(q / cnt + eps)
        mf = np.float32(m)
        k = np.float32(istd * weight[c])
        b = bias[c]
        for n in range(n_):
            for j in range(l_):
                d = x3[n, c, j] - mf
                xc[n, c, j] = d
                y[n, c, j] = d * k + b
        mean[c] = m
        inv_std[c] = istd


def k_bn_backward(gy3, xc, weight, inv_std, dx, dw, db):
    """dx = k gy - xc k istd^2 sum(gy xc) / n - k sum(gy) / n, k = weight istd."""
    n_, c_, l_ = gy3.shape
    cnt = n_ * l_
    for c in prange(c_):
        sg = 0.0
        sgx = 0.0
        for n in range(n_):
            for j in range(l_):
                g = gy3[n, c, j]
                sg += g
                sgx += g * xc[n, c, j]
        istd = inv_std[c]
        k = weight[c] * istd
        a = np.float32(k)
        bx = np.float32(k * istd * istd * sgx / cnt)
        bc = np.float32(k * sg / cnt)
        for n in range(n_):
            for j in range(l_):
                dx[n, c, j] = a * gy3[n, c, j] - bx * xc[n, c, j] - bc
        dw[c] = istd * sgx
        db[c] = sg


KERNELS = [k_im2col, k_col2im, k_maxpool2, k_maxpool2_back, k_relu_maxpool2,
           k_relu_maxpool2_back, k_bn_forward, k_bn_backward]


def _import_numba():
    try:
        import numba  # noqa: PLC0415  (optional: only this probe uses it)
    except ImportError:
        sys.exit("numba_probe: numba is not installed in this Python; make a separate venv "
                 "with numpy and numba (see this file's docstring) and run it from there with "
                 "PYTHONPATH=src")
    return numba


def _jit():
    """{name: (serial, parallel)} dispatchers; threads set to 2."""
    numba = _import_numba()
    globals()["prange"] = numba.prange
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    out = {}
    for f in KERNELS:
        g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial")
        g.__qualname__ = f.__qualname__ + "_serial"
        ser = numba.njit(cache=True, fastmath=False)(g)
        par = numba.njit(cache=True, fastmath=False, parallel=True)(f)
        out[f.__name__[2:]] = (ser, par)
    return out


# ---------------------------------------------------------------- filterbank baselines
def _fb():
    """(conv, F, Tensor): conv gives _Geometry, _im2col and _col2im (private: im2col has no
    public entry point), from wherever the (moving) conv package keeps them; the other ops
    go through the public API (``filterbank.functional``)."""
    import filterbank.functional as F  # noqa: PLC0415
    from filterbank import Tensor  # noqa: PLC0415

    try:
        from filterbank.functional._conv import geometry, im2col  # noqa: PLC0415

        conv = types.SimpleNamespace(_Geometry=geometry._Geometry, _im2col=im2col._im2col,
                                     _col2im=im2col._col2im)
    except ImportError:  # before the split of functional/conv.py
        from filterbank.functional import conv  # noqa: PLC0415
    return conv, F, Tensor


def _geometry(conv, x_shape, k, pad, out_c):
    return conv._Geometry(x_shape, (out_c, x_shape[1], k, k), (1, 1), ((pad, pad), (pad, pad)),
                          (1, 1), 1)


# ------------------------------------------------------------------------- the cases
# filterbank's forward runs through the public op on a Tensor that requires grad (so the op
# saves what its backward needs, as in training); its backward is the op's Function
# (``y.grad_fn``) called on the upstream gradient: the op's own work, without the autograd
# walk and the accumulation into .grad, like the numba kernels.
def _cases(jk, rng):
    """Yield (kernel, shape label, {variant: thunk}, check) per case; check() asserts equality
    of every variant's result with filterbank's."""
    conv, F, Tensor = _fb()

    def im2col_case(label, n, c, h, k, pad):
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        g = _geometry(conv, x.shape, k, pad, c)
        ho = g.So[0]
        cols = {v: np.empty((c, k * k, n, ho, ho), np.float32) for v in ("np", "ser", "par")}
        ser, par = jk["im2col"]
        fns = {"np": lambda: conv._im2col(x, g, 0, n, cols["np"]),
               "ser": lambda: ser(x, k, k, pad, cols["ser"]),
               "par": lambda: par(x, k, k, pad, cols["par"])}

        def check():
            for v in ("ser", "par"):
                np.testing.assert_array_equal(cols[v], cols["np"], err_msg=f"im2col {v}")

        return "im2col", label, fns, check

    def col2im_case(label, n, c, h, k, pad):
        g = _geometry(conv, (n, c, h, h), k, pad, c)
        ho = g.So[0]
        dcols = rng.standard_normal((c, k * k, n, ho, ho), dtype=np.float32)
        dx = {v: np.empty((n, c, h, h), np.float32) for v in ("np", "ser", "par")}
        ser, par = jk["col2im"]
        fns = {"np": lambda: conv._col2im(dcols, g, 0, n, dx["np"]),
               "ser": lambda: ser(dcols, k, k, pad, dx["ser"]),
               "par": lambda: par(dcols, k, k, pad, dx["par"])}

        def check():  # the sums run in another order
            for v in ("ser", "par"):
                np.testing.assert_allclose(dx[v], dx["np"], rtol=1e-5, atol=1e-5,
                                           err_msg=f"col2im {v}")

        return "col2im", label, fns, check

    def maxpool_cases(label, n, c, h):
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        gy = rng.standard_normal((n, c, h // 2, h // 2), dtype=np.float32)
        xt = Tensor(x, requires_grad=True)
        res = {}
        fn = F.max_pool2d(xt, 2).grad_fn  # the op's saved state, for the backward timing
        ser, par = jk["maxpool2"]
        sb, pb = jk["maxpool2_back"]
        # numba's index of the maximum, for its backward (the pairs path keeps two bits
        # instead; the backward check compares the gradients they route)
        idx_nb = np.empty(gy.shape, np.int8)
        par(x, np.empty(gy.shape, np.float32), idx_nb)

        def nb_fwd(k, v):
            def run():
                y = np.empty(gy.shape, np.float32)
                idx = np.empty(gy.shape, np.int8)
                k(x, y, idx)
                res[v] = y
            return run

        def nb_bwd(k, v):
            def run():
                dx = np.empty(x.shape, np.float32)
                k(gy, idx_nb, dx)
                res["b" + v] = dx
            return run

        def np_fwd():
            res["np"] = F.max_pool2d(xt, 2).data

        def check_f():
            for v in ("ser", "par"):
                np.testing.assert_array_equal(res[v], res["np"], err_msg=f"pool {v}")

        def check_b():
            for v in ("ser", "par"):
                np.testing.assert_array_equal(res["b" + v], res["bnp"], err_msg=f"pool bw {v}")

        yield ("maxpool2 fwd", label, {"np": np_fwd, "ser": nb_fwd(ser, "ser"),
                                       "par": nb_fwd(par, "par")}, check_f)
        yield ("maxpool2 bwd", label,
               {"np": lambda: res.__setitem__("bnp", fn.backward(gy)),
                "ser": nb_bwd(sb, "ser"), "par": nb_bwd(pb, "par")}, check_b)

    def relu_pool_cases(label, n, c, h):
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        gy = rng.standard_normal((n, c, h // 2, h // 2), dtype=np.float32)
        xt = Tensor(x, requires_grad=True)
        res = {}
        ser, par = jk["relu_maxpool2"]
        sb, pb = jk["relu_maxpool2_back"]
        keep = {}

        def np_fwd():
            r = F.relu(xt)
            p = F.max_pool2d(r, 2)
            res["np"] = p.data
            keep["r"], keep["p"] = r.grad_fn, p.grad_fn

        np_fwd()
        y_nb = np.empty(gy.shape, np.float32)
        idx_nb = np.empty(gy.shape, np.int8)
        par(x, y_nb, idx_nb)

        def nb_fwd(k, v):
            def run():
                y = np.empty(gy.shape, np.float32)
                idx = np.empty(gy.shape, np.int8)
                k(x, y, idx)
                res[v] = y
            return run

        def nb_bwd(k, v):
            def run():
                dx = np.empty(x.shape, np.float32)
                k(gy, y_nb, idx_nb, dx)
                res["b" + v] = dx
            return run

        def np_bwd():
            res["bnp"] = keep["r"].backward(keep["p"].backward(gy))

        def check_f():
            for v in ("ser", "par"):
                np.testing.assert_array_equal(res[v], res["np"], err_msg=f"relu+pool {v}")

        def check_b():
            for v in ("ser", "par"):
                np.testing.assert_array_equal(res["b" + v], res["bnp"],
                                              err_msg=f"relu+pool bw {v}")

        yield ("relu+maxpool2 fwd", label, {"np": np_fwd, "ser": nb_fwd(ser, "ser"),
                                            "par": nb_fwd(par, "par")}, check_f)
        yield ("relu+maxpool2 bwd", label, {"np": np_bwd, "ser": nb_bwd(sb, "ser"),
                                            "par": nb_bwd(pb, "par")}, check_b)

    def bn_cases(label, n, c, h):
        x = rng.standard_normal((n, c, h, h), dtype=np.float32) * 2 + 0.5
        gy = rng.standard_normal(x.shape, dtype=np.float32)
        w = rng.uniform(0.5, 1.5, c).astype(np.float32)
        b = rng.standard_normal(c, dtype=np.float32)
        xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
        eps = 1e-5
        res = {}
        x3, gy3 = x.reshape(n, c, -1), gy.reshape(n, c, -1)
        ser, par = jk["bn_forward"]
        sb, pb = jk["bn_backward"]
        # batch statistics only (no running buffers: updating them is C-sized work)
        fn = F.batch_norm(xt, None, None, wt, bt, training=True, eps=eps).grad_fn
        xc_nb = np.empty_like(x3)
        y_nb = np.empty_like(x3)
        mean, istd = np.empty(c), np.empty(c)
        par(x3, w, b, eps, xc_nb, y_nb, mean, istd)

        def np_fwd():
            res["np"] = F.batch_norm(xt, None, None, wt, bt, training=True, eps=eps).data

        def nb_fwd(k, v):
            def run():
                xc, y = np.empty_like(x3), np.empty_like(x3)
                m, s = np.empty(c), np.empty(c)
                k(x3, w, b, eps, xc, y, m, s)
                res[v] = y.reshape(x.shape)
            return run

        def nb_bwd(k, v):
            def run():
                dx = np.empty_like(gy3)
                dw, db = np.empty(c), np.empty(c)
                k(gy3, xc_nb, w, istd, dx, dw, db)
                res["b" + v] = (dx.reshape(x.shape), dw, db)
            return run

        def check_f():
            for v in ("ser", "par"):
                np.testing.assert_allclose(res[v], res["np"], rtol=1e-4, atol=1e-4,
                                           err_msg=f"bn {v}")

        def check_b():
            ref = res["bnp"]
            for v in ("ser", "par"):
                for a, r, what in zip(res["b" + v], ref, ("dx", "dw", "db")):
                    np.testing.assert_allclose(a, r, rtol=1e-3, atol=1e-3,
                                               err_msg=f"bn bw {what} {v}")

        yield ("batchnorm fwd", label, {"np": np_fwd, "ser": nb_fwd(ser, "ser"),
                                        "par": nb_fwd(par, "par")}, check_f)
        yield ("batchnorm bwd", label, {"np": lambda: res.__setitem__("bnp", fn.backward(gy)),
                                        "ser": nb_bwd(sb, "ser"), "par": nb_bwd(pb, "par")},
               check_b)

    for n in LENET:
        yield im2col_case(f"LeNet b{n} 1@28 5x5 p2", n, 1, 28, 5, 2)
        yield im2col_case(f"LeNet b{n} 6@14 5x5 p0", n, 6, 14, 5, 0)
        yield col2im_case(f"LeNet b{n} 6@14 5x5 p0", n, 6, 14, 5, 0)
    for n in (32, 64):
        for c, h in RESNET_STAGES:
            yield im2col_case(f"ResNet b{n} {c}@{h} 3x3 p1", n, c, h, 3, 1)
            yield col2im_case(f"ResNet b{n} {c}@{h} 3x3 p1", n, c, h, 3, 1)
    for n in LENET:
        yield from maxpool_cases(f"LeNet b{n} 6@28", n, 6, 28)
        yield from maxpool_cases(f"LeNet b{n} 16@10", n, 16, 10)
        yield from relu_pool_cases(f"LeNet b{n} 6@28", n, 6, 28)
        yield from relu_pool_cases(f"LeNet b{n} 16@10", n, 16, 10)
    for n in (32, 64):
        for c, h in RESNET_STAGES:
            yield from bn_cases(f"ResNet b{n} {c}@{h}", n, c, h)


_CLOCK = time.perf_counter


def _time(fns: dict, rounds: int) -> dict:
    """Median ms per call; each round runs every variant once in turn (interleaved), each
    over enough calls to last ~20 ms. ``--cpu`` times CPU seconds of the process instead of
    wall seconds (see the module docstring)."""
    clock = _CLOCK
    reps = {}
    for v, f in fns.items():
        t0 = clock()
        f()
        dt = clock() - t0
        reps[v] = max(1, int(0.02 / max(dt, 1e-6)))
    samples = {v: [] for v in fns}
    for _ in range(rounds):
        for v, f in fns.items():
            t0 = clock()
            for _ in range(reps[v]):
                f()
            samples[v].append((clock() - t0) / reps[v] * 1e3)
    return {v: statistics.median(s) for v, s in samples.items()}


def run_table(rounds: int, only: str | None) -> list[dict]:
    jk = _jit()
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'kernel':<18} {'shape':<26} {'numpy ms':>9} {'nb ms':>8} {'nb-par ms':>9} "
          f"{'x ser':>6} {'x par':>6}", flush=True)
    for kernel, label, fns, check in _cases(jk, rng):
        if only and only not in kernel:
            continue
        for f in fns.values():  # compile (or load) and produce the results to compare
            f()
        check()
        t = _time(fns, rounds)
        row = {"kernel": kernel, "shape": label, "numpy_ms": t["np"], "numba_ms": t["ser"],
               "numba_par_ms": t["par"], "speedup": t["np"] / t["ser"],
               "speedup_par": t["np"] / t["par"]}
        rows.append(row)
        print(f"{kernel:<18} {label:<26} {t['np']:9.3f} {t['ser']:8.3f} {t['par']:9.3f} "
              f"{row['speedup']:6.2f} {row['speedup_par']:6.2f}", flush=True)
    return rows


# ------------------------------------------------------------------------------ costs
def _small_args():
    """Tiny float32 inputs for one call of each kernel (to compile it)."""
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3, 8, 8), dtype=np.float32)
    cols = np.empty((3, 9, 2, 8, 8), np.float32)
    y = np.empty((2, 3, 4, 4), np.float32)
    idx = np.zeros((2, 3, 4, 4), np.int8)
    x3 = x.reshape(2, 3, -1)
    w = np.ones(3, np.float32)
    return {
        "im2col": (x, 3, 3, 1, cols),
        "col2im": (cols, 3, 3, 1, np.empty_like(x)),
        "maxpool2": (x, y, idx),
        "maxpool2_back": (y, idx, np.empty_like(x)),
        "relu_maxpool2": (x, y, idx),
        "relu_maxpool2_back": (y, y, idx, np.empty_like(x)),
        "bn_forward": (x3, w, w, 1e-5, np.empty_like(x3), np.empty_like(x3), np.empty(3),
                       np.empty(3)),
        "bn_backward": (x3, x3, w, np.ones(3), np.empty_like(x3), np.empty(3), np.empty(3)),
    }


def compile_only() -> None:
    """One call of every kernel variant; prints JSON {name: seconds} (first-call time)."""
    t0 = time.perf_counter()
    numba = _import_numba()
    t_import = time.perf_counter() - t0
    jk = _jit()
    args = _small_args()
    out = {"import_numba_s": t_import}
    for name, (ser, par) in jk.items():
        for v, f in (("ser", ser), ("par", par)):
            t = time.perf_counter()
            f(*args[name])
            out[f"{name}/{v}"] = time.perf_counter() - t
    out["threading_layer"] = numba.threading_layer()
    out["process_s"] = time.perf_counter() - t0
    print(json.dumps(out))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _oversubscription(rounds: int) -> None:
    """A 2-thread OpenBLAS GEMM, and a filterbank convolution step (its own pool), each alone
    and right after a numba parallel kernel: does the pair cost more than its parts?"""
    import filterbank.functional as F  # noqa: PLC0415
    from filterbank import Tensor  # noqa: PLC0415

    jk = _jit()
    numba = _import_numba()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 2304), dtype=np.float32)
    b = rng.standard_normal((2304, 4096), dtype=np.float32)
    c = np.empty((256, 4096), np.float32)
    x = rng.standard_normal((64, 64, 32, 32), dtype=np.float32)
    x3 = x.reshape(64, 64, -1)
    w = np.ones(64, np.float32)
    xc, y = np.empty_like(x3), np.empty_like(x3)
    m, s = np.empty(64), np.empty(64)
    ser, par = jk["bn_forward"]
    xt = Tensor(rng.standard_normal((64, 256, 8, 8), dtype=np.float32), requires_grad=True)
    wt = Tensor(rng.standard_normal((256, 256, 3, 3), dtype=np.float32) * 0.02,
                requires_grad=True)

    def gemm():
        np.matmul(a, b, out=c)

    def conv_step():
        F.conv2d(xt, wt, padding=1).sum().backward()

    def bn_par():
        par(x3, w, w, 1e-5, xc, y, m, s)

    def bn_ser():
        ser(x3, w, w, 1e-5, xc, y, m, s)

    bn_par()
    bn_ser()
    print(f"numba threading layer: {numba.threading_layer()}, "
          f"numba threads: {numba.get_num_threads()}", flush=True)
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        print("thread pools:", [(i["internal_api"], i["num_threads"],
                                 i.get("threading_layer")) for i in threadpool_info()])
    except ImportError:
        pass
    for name, step in (("GEMM 256x2304x4096 (OpenBLAS)", gemm),
                       ("filterbank conv2d 256@8x8 b64 fwd+bwd", conv_step)):
        fns = {"step": step, "bn_par": bn_par, "bn_ser": bn_ser,
               "bn_par+step": lambda s=step: (bn_par(), s()),
               "bn_ser+step": lambda s=step: (bn_ser(), s())}
        t = _time(fns, rounds)
        for v in ("par", "ser"):
            pair, parts = t[f"bn_{v}+step"], t[f"bn_{v}"] + t["step"]
            print(f"{name}: step {t['step']:.2f} ms, numba bn fwd 64@32 b64 {v} "
                  f"{t['bn_' + v]:.2f} ms, pair {pair:.2f} ms = {pair / parts:.3f}x the sum "
                  f"of its parts", flush=True)


def run_costs(rounds: int) -> None:
    here = Path(__file__).resolve()
    env = dict(os.environ)
    src = str(here.parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-c", "import time; t = time.perf_counter(); import numba; "
           "print(time.perf_counter() - t)"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # file cache warm
    imp = [float(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                text=True).stdout) for _ in range(5)]
    print(f"import numba: median {statistics.median(imp) * 1e3:.0f} ms over 5 processes "
          f"({', '.join(f'{t * 1e3:.0f}' for t in imp)})")
    with tempfile.TemporaryDirectory(prefix="nbcache-") as cache:
        env["NUMBA_CACHE_DIR"] = cache
        res = {}
        for start in ("cold", "warm", "warm2"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, str(here), "--compile-only"], env=env,
                                 check=True, capture_output=True, text=True).stdout
            wall = time.perf_counter() - t
            res[start] = json.loads(out.strip().splitlines()[-1])
            res[start]["wall_s"] = wall
        print(f"{'first call (s)':<28} {'cold':>8} {'warm':>8}")
        for k in res["cold"]:
            if "/" in k:
                print(f"{k:<28} {res['cold'][k]:8.3f} {res['warm'][k]:8.4f}")
        for k in ("import_numba_s", "process_s", "wall_s"):
            print(f"{k:<28} {res['cold'][k]:8.3f} {res['warm'][k]:8.3f} "
                  f"(again: {res['warm2'][k]:.3f})")
        total = sum(v for k, v in res["cold"].items() if "/" in k)
        total_w = sum(v for k, v in res["warm"].items() if "/" in k)
        print(f"all 16 kernel variants, first calls: cold {total:.2f} s, warm {total_w:.3f} s; "
              f"cache dir {_du(Path(cache)) / 2**20:.2f} MiB")
        print(f"threading layer picked: {res['cold']['threading_layer']}")
    numba = _import_numba()
    import llvmlite  # noqa: PLC0415

    sizes = {}
    for mod in (numba, llvmlite):
        root = Path(mod.__file__).parent
        sizes[mod.__name__] = _du(root)
        for extra in root.parent.glob(f"{mod.__name__}*.dist-info"):
            sizes[mod.__name__] += _du(extra)
        for extra in root.parent.glob(f"{mod.__name__}.libs"):
            sizes[mod.__name__] += _du(extra)
    print("installed: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items())
          + f"; together {sum(sizes.values()) / 2**20:.1f} MiB")
    _oversubscription(rounds)


# ---------------------------------------------------------------------------- profile
def run_profile() -> None:
    """Share of a training step (cProfile, CPU time, 3 steps after 2 warm-up steps) per op
    family."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _e2e import MODELS, build_fb, fb_steps, make_data  # noqa: PLC0415

    if os.environ.get("FILTERBANK_NUM_THREADS") != "1":
        print("note: set FILTERBANK_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1; cProfile sees only "
              "the calling thread")
    conv_files = ("functional/conv.py", "functional/_conv/im2col.py")
    wino_files = ("functional/conv.py", "functional/_conv/winograd.py",
                  "functional/_conv/winograd43.py")
    groups = {  # family -> (files, function names, class the method must belong to)
        "conv fwd+bwd (all)": (("functional/conv.py",), ("forward", "backward"), "ConvNd"),
        "  im2col": (conv_files, ("_im2col",), None),
        "  col2im": (conv_files, ("_col2im",), None),
        "  winograd transforms": (wino_files, ("_input_tiles", "_fold_input_tiles"), None),
        "maxpool fwd+bwd": (("functional/pool.py",), ("forward", "backward"), "MaxPool"),
        "batchnorm fwd+bwd": (("functional/norm.py",), ("forward", "backward"), "BatchNorm"),
        "relu fwd+bwd": (("functional/elementwise.py",), ("forward", "backward"), "ReLU"),
    }
    for name, batch in (("lenet5", 64), ("lenet5", 256), ("resnet18_cifar", 32)):
        spec = MODELS[name]
        model = build_fb(name)
        x, y = make_data(spec.chw, batch, spec.classes)
        train, _ = fb_steps(model, x, y)
        train()
        train()
        steps = 3
        prof = cProfile.Profile(time.process_time)  # CPU time: robust on a busy machine
        prof.enable()
        for _ in range(steps):
            train()
        prof.disable()
        st = pstats.Stats(prof).stats
        total = sum(v[3] for (_, _, f), v in st.items() if f == "train")
        print(f"{name} b{batch}: {total / steps * 1e3:.1f} ms CPU per step (mean of {steps}, "
              f"1 thread, under cProfile)")
        for fam, (files, funcs, cls) in groups.items():
            t = sum(ct for (file, line, func), (_, _, _tt, ct, _) in st.items()
                    if func in funcs and file.endswith(files)
                    and (cls is None or _in_class(file, line, cls)))
            print(f"  {fam:<22} {t / steps * 1e3:8.2f} ms  {100 * t / total:5.1f}%")


def _in_class(file: str, line: int, cls: str) -> bool:
    """Whether the method defined at ``file:line`` belongs to class ``cls``."""
    src = Path(file).read_text().splitlines()
    for i in range(line - 1, -1, -1):
        if src[i].startswith("class "):
            return src[i].startswith(f"class {cls}(")
    return False


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(
        prog="numba_probe.py",
        description="numba kernels vs filterbank's NumPy ops (im2col/col2im, 2x2 max-pool, "
                    "ReLU + max-pool, batch norm), side by side; see the module docstring for "
                    "the venv with numba and the thread settings.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--costs", action="store_true",
                      help="numba's costs: import, cold/warm compile, install size, "
                           "oversubscription of OpenBLAS and filterbank's thread pool")
    mode.add_argument("--profile", action="store_true",
                      help="each op family's share of a training step (cProfile, CPU time; "
                           "no numba needed)")
    mode.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=7,
                    help="timing rounds per case (median reported); default 7")
    ap.add_argument("--cpu", action="store_true",
                    help="time the process's CPU seconds instead of wall seconds")
    ap.add_argument("--only", metavar="TEXT",
                    help="table: only kernels whose name contains TEXT (e.g. maxpool2)")
    ap.add_argument("--json", action="store_true", help="table: also print the rows as JSON")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.cpu:
        global _CLOCK
        _CLOCK = time.process_time
    if args.compile_only:
        compile_only()
    elif args.costs:
        run_costs(args.rounds)
    elif args.profile:
        run_profile()
    else:
        rows = run_table(args.rounds, args.only)
        if args.json:
            print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
