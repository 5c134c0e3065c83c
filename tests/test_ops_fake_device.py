"""Every registered op case on the (fake) GPU: inputs moved to the device, forward and backward.

The op registries of tests/functional/ and tests/test_ops.py (every ``OpCase`` in a module-level
list) run twice, in float32: on NumPy arrays, then on device arrays of the fake CuPy
(``tests/fakecupy``), which refuses host arrays mixed into device arithmetic and NumPy
functions that CuPy lacks. Checked: every output and every input gradient is a device array
(no silent copy to the host), with the NumPy run's values. A case that cannot pass yet because
of a NumPy-only call in a file this test does not own is marked xfail (strict) with that call.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from fakecupy import installed
from harness import OpCase, as_tensors, differentiable

import filterbank as fb

MODULES = ["functional.test_activation", "functional.test_conv", "functional.test_distance",
           "functional.test_elementwise", "functional.test_fold", "functional.test_index",
           "functional.test_kernels", "functional.test_linear", "functional.test_loss",
           "functional.test_matmul", "functional.test_norm", "functional.test_pool",
           "functional.test_reduce", "functional.test_shape", "functional.test_upsample",
           "test_ops"]


def _registered() -> list[tuple[str, OpCase]]:
    out, seen = [], set()
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for value in vars(mod).values():
            if not isinstance(value, list | tuple):
                continue
            for case in value:
                if isinstance(case, OpCase) and id(case) not in seen:
                    seen.add(id(case))
                    out.append((f"{mod_name.rsplit('.', 1)[-1][5:]}:{case.name}", case))
    return out


#: case id -> why it cannot pass yet: the first host/device mix (file:line: code) seen on the
#: fake device. Regenerate after fixing an op (strict xfail: a case that passes must leave).
XFAIL: dict[str, str] = json.loads(
    (Path(__file__).parent / "fakecupy" / "xfail_ops.json").read_text())


def _xfail_reason(case_id: str) -> str | None:
    return XFAIL.get(case_id)


def _params():
    params = []
    for case_id, case in _registered():
        reason = _xfail_reason(case_id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case_id, marks=marks))
    return params


@pytest.fixture(scope="module")
def cupy():
    with installed() as module:
        yield module


def _outputs(out) -> list:
    return list(out) if isinstance(out, tuple | list) else [out]


def _run(case: OpCase, move):
    """Forward and backward (outputs contracted with fixed weights) of ``case`` in float32,
    every array passed through ``move``; returns (outputs, input gradients)."""
    inputs = as_tensors(case, dtype=np.float32)
    for t in inputs:
        t.data = move(t.data)
    kwargs = {k: move(v) if isinstance(v, np.ndarray) else v for k, v in case.kwargs.items()}
    outs = _outputs(case.fn(*inputs, **kwargs))
    rng = np.random.default_rng(1)
    total = None
    for o in outs:
        if o.requires_grad:
            w = fb.Tensor._wrap(move(rng.standard_normal(o.shape).astype(o.dtype)))
            term = (o * w).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    grads = [t.grad for t in inputs if t.requires_grad]
    return outs, grads


@pytest.mark.parametrize("case", _params())
def test_op_on_device(case, cupy):
    host_outs, host_grads = _run(case, lambda a: a)
    dev_outs, dev_grads = _run(case, lambda a: a.view(cupy.ndarray))
    assert len(dev_outs) == len(host_outs)
    for k, (d, h) in enumerate(zip(dev_outs, host_outs)):
        assert isinstance(d.data, cupy.ndarray), f"output {k} is a {type(d.data)} on the host"
        assert d.dtype == h.dtype, f"output {k}: {d.dtype} != {h.dtype}"
        np.testing.assert_allclose(d.data.get(), h.data, rtol=1e-6, atol=1e-6,
                                   err_msg=f"output {k}")
    if not differentiable(case):
        return
    assert len(dev_grads) == len(host_grads)
    for k, (d, h) in enumerate(zip(dev_grads, host_grads)):
        assert (d is None) == (h is None), f"gradient {k}: {d} vs {h}"
        if d is None:
            continue
        assert isinstance(d.data, cupy.ndarray), f"gradient {k} is a {type(d.data)} on the host"
        np.testing.assert_allclose(d.data.get(), h.data, rtol=1e-6, atol=1e-6,
                                   err_msg=f"gradient {k}")
