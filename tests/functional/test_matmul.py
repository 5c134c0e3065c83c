"""functional.matmul: NumPy's matmul semantics (1-d cases, batches, broadcasting) through the
registry + the generic checks, then operators and errors."""

from __future__ import annotations

import numpy as np
import pytest
from harness import (
    OpCase,
    check_float32,
    check_gradcheck,
    check_reference,
    check_torch,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

try:
    import torch
except ImportError:  # the torch checks skip themselves
    torch = None

rng = np.random.default_rng(3)


def _r(*shape):
    return rng.standard_normal(shape)


def _mm(name, a, b, grad=None):
    return OpCase(name, F.matmul, [a, b], reference=np.matmul,
                  torch_fn=lambda x, y: torch.matmul(x, y), grad=grad)


CASES = [
    _mm("2d_2d", _r(3, 4), _r(4, 2)),
    _mm("1d_1d", _r(4), _r(4)),
    _mm("1d_2d", _r(4), _r(4, 3)),
    _mm("2d_1d", _r(3, 4), _r(4)),
    _mm("3d_3d", _r(2, 3, 4), _r(2, 4, 5)),
    _mm("batch_broadcast", _r(2, 1, 3, 4), _r(5, 4, 2)),
    _mm("3d_2d_shared_weight", _r(2, 3, 4), _r(4, 5)),
    _mm("2d_3d", _r(3, 4), _r(2, 4, 5)),
    _mm("1d_3d", _r(4), _r(2, 4, 3)),
    _mm("3d_1d", _r(2, 3, 4), _r(4)),
    _mm("noncontiguous", noncontiguous(_r(3, 4)), noncontiguous(_r(4, 2))),
    _mm("only_b_grad", _r(2, 3, 4), _r(4, 5), grad=[False, True]),
    _mm("only_a_grad", _r(3, 4), _r(4, 5), grad=[True, False]),
    OpCase("operator_at", lambda a, b: a @ b, [_r(2, 3), _r(3, 2)], reference=np.matmul,
           torch_fn=lambda a, b: a @ b),
    OpCase("operator_T", lambda a, b: a @ b.T, [_r(2, 3), _r(4, 3)],
           reference=lambda a, b: a @ b.T, torch_fn=lambda a, b: a @ b.T),
]
_W = _r(3, 2)
CASES.append(OpCase("numpy_constant_right", lambda a: a @ _W, [_r(4, 3)],
                    reference=lambda a: a @ _W))
CASES.append(OpCase("numpy_constant_left", lambda a: _W.T @ a, [_r(3, 4)],
                    reference=lambda a: _W.T @ a))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_fn], ids=str)
def test_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


def test_inner_dimension_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\) "
                                         r"\(3 != 4\)"):
        fb.ones(2, 3) @ fb.ones(4, 5)


def test_0d_operand_is_an_error():
    with pytest.raises(ValueError, match=r"matmul: both operands need >= 1 dim"):
        F.matmul(fb.tensor(2.0), fb.ones(3))
