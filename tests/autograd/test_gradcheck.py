"""gradcheck passes correct gradients, catches wrong ones, and refuses float32."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.autograd import Function


class WrongSin(Function):
    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, gy):
        return gy * np.cos(self.x) * 1.01  # 1% off


class SwappedGrads(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b * b

    def backward(self, gy):
        return gy * self.b * self.b, gy * self.a * self.b  # d/db should be 2ab


def _x(*shape, seed=0):
    return fb.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=np.float64,
                     requires_grad=True)


def test_passes_on_correct_ops_with_several_outputs():
    x, y = _x(2, 3), _x(3, seed=1)
    assert fb.gradcheck(lambda a, b: (a * b).exp(), (x, y))
    assert fb.gradcheck(lambda a: [a.sum(0), a.max(1)], (x,))


def test_catches_a_wrong_backward():
    with pytest.raises(fb.GradcheckError, match=r"gradient mismatch for input 0"):
        fb.gradcheck(lambda a: WrongSin.apply(a), (_x(3),))
    assert fb.gradcheck(lambda a: WrongSin.apply(a), (_x(3),), raise_exception=False) is False


def test_catches_a_wrong_gradient_for_the_second_input_only():
    with pytest.raises(fb.GradcheckError, match=r"input 1"):
        fb.gradcheck(lambda a, b: SwappedGrads.apply(a, b), (_x(2), _x(2, seed=1)))


def test_catches_a_missing_gradient():
    # detach() hides one factor from backward: the analytic gradient is a, the true one 2a
    with pytest.raises(fb.GradcheckError, match="gradient mismatch"):
        fb.gradcheck(lambda a: a * a.detach(), (_x(2),))


def test_refuses_float32_and_inputs_without_grad():
    with pytest.raises(TypeError, match="finite differences need float64"):
        fb.gradcheck(lambda a: a * 2, (fb.ones(2, requires_grad=True),))
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        fb.gradcheck(lambda a: a * 2, (fb.ones(2, dtype=np.float64),))


def test_inputs_are_restored():
    x = _x(3)
    before = x.data.copy()
    fb.gradcheck(lambda a: a.sin(), (x,))
    np.testing.assert_array_equal(x.data, before)
