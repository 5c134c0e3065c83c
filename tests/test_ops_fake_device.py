"""Every registered op case on the (fake) GPU: inputs moved to the device, forward and backward.

The op registries of tests/functional/ and tests/test_ops.py (every ``OpCase`` in a module-level
list) run twice, in float32: on NumPy arrays, then on device arrays of the fake CuPy
(``tests/fakecupy``), which refuses host arrays mixed into device arithmetic and NumPy
functions that CuPy lacks. Checked: every output and every input gradient is a device array
(no silent copy to the host), with the NumPy run's values. A case that cannot pass yet because
of a NumPy-only call in a file this test does not own is marked xfail (strict) with that call.

By default a representative subset runs (about 500 of the ~1,300 cases, well under a minute):
per op (module and leading name, e.g. ``conv:conv_transpose2d``) its first case, and for each
code-path feature found in the case names (``_WORDS``: forced algorithm, 1d/2d/3d,
non-contiguous, no bias, kept vs rebuilt intermediates, modes; ``_FLAGS``: stride, groups,
dilation > 1, padding > 0) the first case of that op with it. The choice depends only on the
registries' order, so it is the same on every run. The full sweep (~4 min on 2 cores):

    FILTERBANK_FULL_DEVICE_SWEEP=1 pytest tests/test_ops_fake_device.py

Regenerating ``fakecupy/xfail_ops.json`` after fixing an op: run the full sweep with
``--runxfail`` and ``FILTERBANK_DEVICE_XFAIL_OUT=some.json``; each failing case is written
there with its first host/device mix (:func:`_first_mix`). Review, then replace the list.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import traceback
from pathlib import Path

import numpy as np
import pytest
from fakecupy import installed
from harness import OpCase, as_tensors, differentiable

import filterbank as fb
from filterbank.backend import DeviceError

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


FULL_SWEEP = os.environ.get("FILTERBANK_FULL_DEVICE_SWEEP", "") not in ("", "0")

#: name fragments that select a code path (each gets its own representative per op)
_WORDS = ("forced", "im2col", "winograd", "toeplitz", "noncontig", "-nc", "nobias", "rebuild",
          "ceil_modeTrue", "count_include_padFalse", "mode=nearest", "mode=linear",
          "mode=bilinear", "mode=trilinear", "mode=area", "align_corners=True", "recompute",
          "1d", "2d", "3d", "circular", "reflect", "replicate", "psame", "mean", "sum", "none")
#: numeric hyperparameters, > 1 (> 0 for padding): the strided, grouped, dilated, padded paths
_FLAGS = {"strided": r"-s(?:tride)?[2-9]", "grouped": r"-g(?:[2-9]|depthwise)",
          "dilated": r"-d(?:ilation)?[2-9]", "padded": r"-p(?:adding)?[1-9]"}


def _path_keys(case_id: str) -> list[tuple]:
    """The (module, op, feature) keys that ``case_id`` can represent."""
    mod, name = case_id.split(":", 1)
    head = re.match(r"[A-Za-z]+(?:_[A-Za-z]+)*(?:\d+d)?", name)
    op = head.group(0) if head else name
    features = [w for w in _WORDS if w in name]
    features += [f for f, rx in _FLAGS.items() if re.search(rx, name)]
    return [(mod, op, None)] + [(mod, op, f) for f in features]


def _representatives(case_ids: list[str]) -> set[str]:
    """The first case (registry order) for every key of :func:`_path_keys`."""
    chosen: dict[tuple, str] = {}
    for case_id in case_ids:
        for key in _path_keys(case_id):
            chosen.setdefault(key, case_id)
    return set(chosen.values())


def _params():
    params = []
    registered = _registered()
    keep = None if FULL_SWEEP else _representatives([cid for cid, _ in registered])
    for case_id, case in registered:
        if keep is not None and case_id not in keep:
            continue
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


def _run(case: OpCase, move, device: bool = False):
    """Forward and backward (outputs contracted with fixed weights) of ``case`` in float32,
    every array passed through ``move``; returns (outputs, input gradients). With ``device``,
    a host output fails first (instead of the contraction's two-device error)."""
    inputs = as_tensors(case, dtype=np.float32)
    for t in inputs:
        t.data = move(t.data)
    kwargs = {k: _move_kwarg(v, move) for k, v in case.kwargs.items()}
    outs = _outputs(case.fn(*inputs, **kwargs))
    for k, o in enumerate(outs):
        if device and type(o.data).__module__ != "cupy":
            raise AssertionError(f"output {k} is a host {type(o.data).__name__} (made by "
                                 f"NumPy-only calls in the op's own file)")
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


def _move_kwarg(v, move):
    """Arrays, and tensors that need no gradient (batch norm's running statistics), as fresh
    copies through ``move``; both runs start from the case's values."""
    if isinstance(v, np.ndarray):
        return move(v)
    if isinstance(v, tuple) and any(isinstance(a, np.ndarray) for a in v):
        return tuple(_move_kwarg(a, move) for a in v)  # (running_mean, running_var)
    if isinstance(v, fb.Tensor) and not v.requires_grad:
        return fb.Tensor._wrap(move(v.data.copy()))
    return v


def _first_mix(exc: BaseException) -> str:
    """``file:line: code`` of the innermost filterbank frame of ``exc``'s traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/src/filterbank/" in f.filename.replace(os.sep, "/")]
    what = "NumPy-only or host call"
    if isinstance(exc, DeviceError):  # Function.apply's check: name the op's caller instead
        what = f"a host array met device arrays ({str(exc).split(':')[0]}: DeviceError)"
        frames = [f for f in frames if not f.filename.replace(os.sep, "/").endswith(
            ("/filterbank/backend.py", "/autograd/function.py"))]
    if not frames:
        return f"{what}: {exc}"[:300]
    f = frames[-1]
    where = f.filename.replace(os.sep, "/").split("/src/")[-1]
    return f"{what}; first host/device mix at {where}:{f.lineno}: {f.line}"


@pytest.fixture(name="record_failure")
def _record_failure(request):
    """With ``FILTERBANK_DEVICE_XFAIL_OUT``: add this case's failure to that JSON file."""
    out = os.environ.get("FILTERBANK_DEVICE_XFAIL_OUT")
    failures: list[str] = []
    yield failures
    if out and failures:
        path = Path(out)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[request.node.callspec.id] = failures[0]
        path.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")


@pytest.mark.parametrize("case", _params())
def test_op_on_device(case, cupy, record_failure):
    try:
        _check_on_device(case, cupy)
    except Exception as exc:
        record_failure.append(_first_mix(exc) if not isinstance(exc, AssertionError) else
                              f"the op's output is a host array or wrong: {exc}"[:300])
        raise


def _check_on_device(case, cupy):
    host_outs, host_grads = _run(case, lambda a: a)
    dev_outs, dev_grads = _run(case, lambda a: a.view(cupy.ndarray), device=True)
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


@pytest.mark.parametrize("fn", ["dropout", "dropout2d"])
def test_dropout_mask_on_device_matches_the_host(fn, cupy):
    """The mask is drawn on the host from the seeded generator and moved: a device run zeroes
    exactly the elements a CPU run zeroes, and the gradient stays on the device."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    op = getattr(fb.functional, fn)
    host = op(fb.Tensor(x), 0.4, generator=np.random.default_rng(7))
    t = fb.Tensor._wrap(x.view(cupy.ndarray), requires_grad=True)
    dev = op(t, 0.4, generator=np.random.default_rng(7))
    assert isinstance(dev.data, cupy.ndarray) and dev.dtype == np.float32
    np.testing.assert_array_equal(dev.data.get(), host.data)
    dev.sum().backward()
    assert isinstance(t.grad.data, cupy.ndarray)
    np.testing.assert_array_equal(t.grad.data.get(), (host.data != 0) * np.float32(1 / 0.6))


def test_kernels_on_a_raw_device_image(cupy):
    """apply_kernel / gradient_magnitude on a device array return device arrays, same values."""
    img = np.random.default_rng(1).standard_normal((3, 9, 8)).astype(np.float32)
    for f in (lambda a: fb.functional.apply_kernel(a, "gaussian"),
              fb.functional.gradient_magnitude):
        dev = f(img.view(cupy.ndarray))
        assert isinstance(dev, cupy.ndarray)
        np.testing.assert_allclose(dev.get(), f(img), rtol=1e-6, atol=1e-6)
