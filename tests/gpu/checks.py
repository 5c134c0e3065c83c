"""The device checks of tests/gpu, written against a device name so that the same code runs on a
real GPU (tests/gpu/test_gpu.py, ``make test-gpu``) and on the fake CuPy on any machine
(tests/test_device_fake.py), which keeps this code tested where no GPU is lent.

Each check runs the same work on the CPU and on ``device`` from the same seed and compares
(float32 tolerances: a GPU sums in another order).
"""

from __future__ import annotations

import importlib

import numpy as np

import filterbank as fb

ATOL, RTOL = 1e-4, 1e-3


def on(device: str, t) -> bool:
    """Whether tensor (or array) ``t`` lives on ``device``."""
    return fb.device(device) == (t.device if isinstance(t, fb.Tensor)
                                 else fb.backend.device_of(t))


def host(a) -> np.ndarray:
    return fb.backend.to_numpy(a.data if isinstance(a, fb.Tensor) else a)


def close(got, want, what: str, atol: float = ATOL, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(host(got), host(want), atol=atol, rtol=rtol, err_msg=what)


def check_moves(device: str) -> None:
    """Tensors there and back (values, dtype, grads through ``.to``), modules in place."""
    x = fb.randn(3, 4, generator=np.random.default_rng(0), requires_grad=True)
    g = x.to(device)
    assert on(device, g) and g.dtype == np.float32 and g.shape == (3, 4)
    close(g.detach().cpu(), x.detach(), "round trip", atol=0, rtol=0)
    (g * g).sum().backward()
    assert on("cpu", x.grad)
    close(x.grad, 2 * x.detach().numpy(), "grad through .to")
    m = fb.nn.Linear(4, 2)
    w = m.weight
    assert m.to(device) is m and m.weight is w and on(device, m.weight)
    assert m.cpu() is m and on("cpu", m.weight)


#: tests/nn modules whose module-level ``CASES``/``MODULES`` lists hold ModuleCase entries
LAYER_MODULES = ["nn.test_activation", "nn.test_conv", "nn.test_linear", "nn.test_norm",
                 "nn.test_pool", "nn.test_upsample"]


def layer_cases() -> list:
    """Every registered layer configuration (harness.ModuleCase), with one input shape each."""
    from harness import ModuleCase

    out, seen = [], set()
    for name in LAYER_MODULES:
        mod = importlib.import_module(name)
        for value in vars(mod).values():
            if not isinstance(value, list):
                continue
            for case in value:
                if isinstance(case, ModuleCase) and case.name not in seen:
                    seen.add(case.name)
                    out.append(case)
    return out


def check_layer(case, device: str) -> None:
    """One layer forward and backward on the CPU and on ``device``: output, input gradient
    and parameter gradients agree; everything computed on the device stays there."""
    shape = case.shapes[0]
    x_np = case.sample(shape).astype(np.float32)
    gy = None
    results = []
    for dev in ("cpu", device):
        fb.manual_seed(0)
        m = case.make().to(dev)
        x = fb.tensor(x_np, device=dev, requires_grad=True)
        y = m(x)
        if gy is None:
            gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        y.backward(fb.tensor(gy, device=dev))
        assert on(dev, y) and on(dev, x.grad), f"{case}: output or grad left {dev}"
        results.append((y, x.grad, {k: p.grad for k, p in m.named_parameters()}))
    (yc, gc, pc), (yd, gd, pd) = results
    close(yd, yc, f"{case} forward", atol=max(case.atol, ATOL), rtol=max(case.rtol, RTOL))
    close(gd, gc, f"{case} input grad", atol=max(case.atol, ATOL), rtol=max(case.rtol, RTOL))
    for k in pc:
        assert on(device, pd[k]), f"{case}: grad of {k} left {device}"
        close(pd[k], pc[k], f"{case} grad of {k}", atol=max(case.atol, ATOL),
              rtol=max(case.rtol, RTOL))


def train_losses(make_model, device: str, shape, steps: int = 3, classes: int = 10,
                 batch: int = 8) -> list[float]:
    """``steps`` SGD-with-momentum steps from seed 0 on ``device``; the losses."""
    fb.manual_seed(0)
    model = make_model()
    opt = fb.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.to(device)  # after the optimizer, as tutorials do: the parameters are the same
    rng = np.random.default_rng(1)
    x = fb.tensor(rng.standard_normal((batch, *shape)).astype(np.float32), device=device)
    y = fb.tensor(rng.integers(0, classes, batch), device=device)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = fb.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(on(device, p) for p in model.parameters())
    return losses


def check_training(make_model, device: str, shape, **kw) -> tuple[list, list]:
    cpu, dev = train_losses(make_model, "cpu", shape, **kw), train_losses(make_model, device,
                                                                          shape, **kw)
    np.testing.assert_allclose(dev, cpu, rtol=2e-3, atol=1e-4)
    return cpu, dev


def check_checkpoint(device: str, folder) -> None:
    """A module's state saved from ``device`` loads on the CPU (and back onto the device)."""
    from filterbank.serialization import load, save

    fb.manual_seed(0)
    m = fb.nn.Sequential(fb.nn.Linear(4, 3), fb.nn.BatchNorm1d(3)).to(device)
    path = save({"model": m.state_dict(), "w": m[0].weight.detach()}, folder / "ckpt.safetensors")
    obj = load(path)
    assert on("cpu", obj["w"]) and all(type(v) is np.ndarray for v in obj["model"].values())
    fb.manual_seed(1)
    fresh = fb.nn.Sequential(fb.nn.Linear(4, 3), fb.nn.BatchNorm1d(3)).to(device)
    fresh.load_state_dict(obj["model"])
    assert on(device, fresh[0].weight)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)
    assert on(device, load(path, map_location=device)["w"])
