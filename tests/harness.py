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
