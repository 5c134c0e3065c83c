"""filterbank on a real NVIDIA GPU through CuPy (``make test-gpu``; issue 16).

Skipped, with the reason, where CuPy or a GPU is missing. The checks themselves live in
tests/gpu/checks.py; tests/test_device_fake.py runs them on the fake CuPy on every machine.
"""

from __future__ import annotations

import pytest

import filterbank as fb

from . import checks


def _why_not() -> str | None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "needs CuPy (pip install filterbank[cuda12] or filterbank[cuda13])"
    if getattr(__import__("cupy"), "_FAKE", False):
        return "the fake CuPy of tests/fakecupy is on sys.path, not the real one"
    if not fb.cuda.is_available():
        return "CuPy is installed but finds no GPU"
    return None


REASON = _why_not()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
DEVICE = "cuda"


def test_gpu_is_seen():
    assert fb.cuda.device_count() >= 1
    assert fb.ones(2, device=DEVICE).is_cuda


def test_moves():
    checks.check_moves(DEVICE)


def test_two_devices_in_one_op_raise():
    from filterbank.backend import DeviceError

    with pytest.raises(DeviceError, match=r"[Aa]dd: expected all tensors on the same device, "
                                          r"got cpu and cuda:0"):
        fb.ones(2) + fb.ones(2, device=DEVICE)


@pytest.mark.parametrize("case", checks.layer_cases() if REASON is None else [],
                         ids=str)
def test_layer_matches_cpu(case):
    checks.check_layer(case, DEVICE)


def test_lenet5_training_steps_match_cpu():
    from filterbank.models import lenet5

    checks.check_training(lambda: lenet5(padding=2), DEVICE, (1, 28, 28), steps=3)


def test_resnet18_training_steps_match_cpu():
    from filterbank.models import resnet18

    checks.check_training(lambda: resnet18(num_classes=10, stem="cifar"), DEVICE,
                          (3, 32, 32), steps=2, batch=8)


def test_checkpoint_round_trip(tmp_path):
    checks.check_checkpoint(DEVICE, tmp_path)
