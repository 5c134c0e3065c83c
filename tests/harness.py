"""Shared test machinery: registries of cases and the generic checks that run over them.

A test module registers its ops or layers once, as a list of :class:`OpCase` or
:class:`ModuleCase`, and parametrises the generic checks below over that list (PyTorch's
OpInfo/ModuleInfo, Chainer's FunctionTestCase). A new op gets every check by adding one entry.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import filterbank as fb

HAS_TORCH = importlib.util.find_spec("torch") is not None


@dataclass
class OpCase:
    """One op on one set of sample inputs.

    fn: filterbank function of the input tensors (plus ``kwargs``).
    inputs: NumPy arrays; float ones become float64 tensors requiring grad for gradcheck.
    reference: NumPy function of the same arrays (and kwargs), or None.
    torch_fn: function of torch tensors (and kwargs) for the PyTorch comparison, or None.
    grad: which inputs to differentiate (default: all floating ones).
    """

    name: str
    fn: Callable
    inputs: list[np.ndarray]
    kwargs: dict[str, Any] = field(default_factory=dict)
    reference: Callable | None = None
    torch_fn: Callable | None = None
    grad: list[bool] | None = None
    atol: float = 1e-5
    rtol: float = 1e-3
    eps: float = 1e-6

    def __str__(self) -> str:  # used as the pytest id
        return self.name


def as_tensors(case: OpCase, dtype=np.float64, requires_grad: bool = True):
    out = []
    for i, a in enumerate(case.inputs):
        a = np.asarray(a)
        floating = a.dtype.kind == "f"
        want = requires_grad and floating and (case.grad is None or case.grad[i])
        arr = a.astype(dtype) if floating else a
        if not a.flags.c_contiguous and a.ndim > 0:
            arr = noncontiguous(arr)  # keep the layout: ops must not assume C order
        t = fb.Tensor._wrap(arr)
        if want:
            t.requires_grad = True
        out.append(t)
    return out


def check_gradcheck(case: OpCase) -> None:
    inputs = as_tensors(case)
    fb.gradcheck(lambda *xs: case.fn(*xs, **case.kwargs), inputs,
                 eps=case.eps, atol=case.atol, rtol=case.rtol)


def check_reference(case: OpCase, dtype=np.float32, atol=1e-5, rtol=1e-4) -> None:
    inputs = as_tensors(case, dtype=dtype, requires_grad=False)
    got = case.fn(*inputs, **case.kwargs)
    want = case.reference(*[np.asarray(a) for a in case.inputs], **case.kwargs)
    assert_close(got, want, atol=atol, rtol=rtol)


def assert_close(got, want, atol=1e-5, rtol=1e-4, what: str = "") -> None:
    """allclose with the tolerance scaled to the magnitude of ``want``."""
    g = got.data if isinstance(got, fb.Tensor) else np.asarray(got)
    if hasattr(want, "detach"):
        want = want.detach().numpy()
    w = np.asarray(want)
    assert g.shape == w.shape, f"{what} shape {g.shape} != {w.shape}"
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    np.testing.assert_allclose(g, w, atol=atol * scale, rtol=rtol, err_msg=what)


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values as ``a`` in a non-contiguous (strided) layout."""
    big = np.zeros(a.shape + (2,), a.dtype)
    big[..., 0] = a
    return big[..., 0]


# ----------------------------------------------------------------------------- layers
@dataclass
class ModuleCase:
    """One layer configuration, checked against its PyTorch twin.

    make: builds the filterbank module (float32).
    make_torch: builds the equivalent torch module (its parameters are overwritten with ours,
        by state_dict name, so the names must match PyTorch's), or None.
    shapes: input shapes to run.
    make_input: ``f(rng, shape) -> ndarray`` (default: standard normal).
    """

    name: str
    make: Callable
    make_torch: Callable | None
    shapes: list[tuple[int, ...]]
    make_input: Callable | None = None
    gradcheck: bool = True
    atol: float = 1e-5
    rtol: float = 1e-4

    def __str__(self) -> str:
        return self.name

    def sample(self, shape, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.make_input is not None:
            return np.asarray(self.make_input(rng, shape))
        return rng.standard_normal(shape)


def check_module_vs_torch(case: ModuleCase, shape) -> None:
    """Output, input gradient and parameter gradients (float32) against PyTorch."""
    import torch

    m = case.make()
    tm = case.make_torch()
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()},
                       strict=True)
    x_np = case.sample(shape).astype(np.float32)
    x = fb.Tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    y, ty = m(x), tm(tx)
    assert y.dtype == np.float32, f"{case}: output dtype {y.dtype}"
    assert_close(y, ty, atol=case.atol, rtol=case.rtol, what=f"{case} forward")
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert x.grad.dtype == np.float32
    assert_close(x.grad, tx.grad, atol=case.atol, rtol=case.rtol, what=f"{case} input grad")
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        assert p.grad is not None, f"{case}: no gradient for {name}"
        assert p.grad.dtype == np.float32, f"{case}: {name}.grad dtype {p.grad.dtype}"
        assert_close(p.grad, tparams[name].grad, atol=case.atol, rtol=case.rtol,
                     what=f"{case} grad of {name}")


def check_module_gradcheck(case: ModuleCase, shape) -> None:
    """float64 finite differences w.r.t. the input and every parameter."""
    m = case.make().double()
    x = fb.Tensor(case.sample(shape), dtype=np.float64, requires_grad=True)
    params = list(m.parameters())
    fb.gradcheck(lambda x, *ps: m(x), [x, *params])


# ------------------------------------------------------------------ op checks vs torch
def _as_list(out):
    return list(out) if isinstance(out, tuple | list) else [out]


def differentiable(case: OpCase) -> bool:
    """Whether some input of ``case`` is floating and selected for differentiation."""
    return any(np.asarray(a).dtype.kind == "f" and (case.grad is None or case.grad[i])
               for i, a in enumerate(case.inputs))


def check_torch(case: OpCase, atol=1e-5, rtol=1e-4) -> None:
    """Forward (every output) and input gradients in float32 against ``case.torch_fn``.

    The outputs are contracted with fixed random weights, so one backward covers them all.
    """
    import torch

    inputs = as_tensors(case, dtype=np.float32)
    tin = []
    for a, t in zip(case.inputs, inputs):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            tin.append(torch.tensor(a.astype(np.float32), requires_grad=t.requires_grad))
        else:
            tin.append(torch.from_numpy(np.array(a)))
    outs = _as_list(case.fn(*inputs, **case.kwargs))
    touts = _as_list(case.torch_fn(*tin, **case.kwargs))
    assert len(outs) == len(touts), f"{case}: {len(outs)} outputs, torch gives {len(touts)}"
    for k, (o, to) in enumerate(zip(outs, touts)):
        assert_close(o, to.detach(), atol=atol, rtol=rtol, what=f"{case} output {k}")
    rng = np.random.default_rng(1)
    total = ttotal = None
    for o, to in zip(outs, touts):
        if not o.requires_grad:
            continue
        w = rng.standard_normal(o.shape).astype(np.float32)
        term, tterm = (o * w).sum(), (to * torch.from_numpy(w)).sum()
        total = term if total is None else total + term
        ttotal = tterm if ttotal is None else ttotal + tterm
    if total is None:
        return
    total.backward()
    ttotal.backward()
    for i, (t, tt) in enumerate(zip(inputs, tin)):
        if t.requires_grad:
            got = np.zeros(t.shape, np.float32) if t.grad is None else t.grad
            want = np.zeros(t.shape, np.float32) if tt.grad is None else tt.grad
            assert_close(got, want, atol=atol, rtol=rtol, what=f"{case} grad of input {i}")


def check_float32(case: OpCase) -> None:
    """float32 inputs give float32 outputs and float32 gradients."""
    inputs = as_tensors(case, dtype=np.float32)
    outs = _as_list(case.fn(*inputs, **case.kwargs))
    total = None
    for k, o in enumerate(outs):
        if o.dtype.kind == "f":
            assert o.dtype == np.float32, f"{case}: output {k} has dtype {o.dtype}"
        if o.requires_grad:
            term = o.sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    for i, t in enumerate(inputs):
        if t.requires_grad and t.grad is not None:
            assert t.grad.dtype == np.float32, f"{case}: grad of input {i} is {t.grad.dtype}"


# ----------------------------------------------------------------- the command line
def cli(argv) -> tuple[int, str, str]:
    """Run ``filterbank ARGV`` in this process: ``(exit status, stdout, stderr)`` (argparse's
    exits for --help and bad arguments included)."""
    import contextlib
    import io

    from filterbank.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    """The one-line error ``filterbank`` printed last (no traceback allowed)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("filterbank: error: "), err
    return lines[-1]


def tiny_run(folder, limit: int = 200) -> object:
    """Train a tiny simple_cnn run (width 4, hidden 16, ``limit`` images, one epoch) into
    ``folder`` from the command line; returns ``folder``."""
    code, _, err = cli(["train", "--model", "simple_cnn", "--dataset", "fashion-mnist",
                        "--limit", str(limit), "--epochs", "1", "--model-arg", "width=4",
                        "--model-arg", "hidden=16", "--no-progress", "--out", folder])
    assert code == 0, err
    return folder
