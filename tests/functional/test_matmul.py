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


# ------------------------------------------------------------------ mm, bmm, einsum (issue 10)
def _es(eq, *shapes, grad=None, reference=None):
    """An einsum case: NumPy's einsum is the reference, torch.einsum the oracle."""
    return OpCase(f"einsum_{eq.replace('->', '_to_').replace(',', '_').replace('...', 'E')}",
                  lambda *xs, eq=eq: F.einsum(eq, *xs), [_r(*s) for s in shapes],
                  reference=reference or (lambda *xs, eq=eq: np.einsum(eq, *xs)),
                  torch_fn=lambda *xs, eq=eq: torch.einsum(eq, *xs), grad=grad)


LINALG_CASES = [
    OpCase("mm", F.mm, [_r(3, 4), _r(4, 2)], reference=np.matmul,
           torch_fn=lambda a, b: torch.mm(a, b)),
    OpCase("mm_method_noncontiguous", lambda a, b: a.mm(b),
           [noncontiguous(_r(2, 3)), noncontiguous(_r(3, 5))], reference=np.matmul,
           torch_fn=lambda a, b: a.mm(b)),
    OpCase("bmm", F.bmm, [_r(2, 3, 4), _r(2, 4, 5)], reference=np.matmul,
           torch_fn=lambda a, b: torch.bmm(a, b)),
    OpCase("bmm_method", lambda a, b: a.bmm(b), [_r(3, 1, 2), _r(3, 2, 2)],
           reference=np.matmul, torch_fn=lambda a, b: a.bmm(b)),
    _es("ij,jk->ik", (3, 4), (4, 2)),
    _es("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
    _es("bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4)),
    _es("ij->", (2, 3)),
    _es("ij->j", (2, 3)),
    _es("ij->ji", (2, 3)),
    _es("ba", (2, 3)),  # implicit output: alphabetical, so a transpose
    _es("i,j->ij", (3,), (4,)),
    _es("i,i", (4,), (4,)),
    _es("ii->i", (3, 3)),
    _es("ii", (3, 3)),
    _es("iij->j", (3, 3, 2)),
    _es("ij,ij->ij", (3, 1), (3, 4)),  # size-1 dim broadcasts: its gradient is summed
    _es("ij,jk,kl->il", (2, 3), (3, 4), (4, 2)),
    _es("...ij,...jk->...ik", (2, 3, 4), (4, 5)),
    _es("...ij->ij", (2, 3, 4), reference=lambda a: a.sum(0)),  # NumPy refuses this one
    _es("...i,...i->...", (2, 1, 3), (4, 3)),
    _es("b...,b...->b", (2, 3, 2), (2, 3, 2), reference=lambda a, b: (a * b).sum((1, 2))),
    _es("ij,jk->ik", (3, 4), (4, 2), grad=[False, True]),
    OpCase("einsum_list_operands_noncontiguous",
           lambda a, b: F.einsum("ij,kj->ik", [a, b]),
           [noncontiguous(_r(3, 4)), noncontiguous(_r(2, 4))],
           reference=lambda a, b: np.einsum("ij,kj->ik", a, b),
           torch_fn=lambda a, b: torch.einsum("ij,kj->ik", [a, b])),
]


@pytest.mark.parametrize("case", LINALG_CASES, ids=str)
def test_linalg_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", LINALG_CASES, ids=str)
def test_linalg_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", LINALG_CASES, ids=str)
def test_linalg_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", LINALG_CASES, ids=str)
def test_linalg_float32(case):
    check_float32(case)


@pytest.mark.parametrize("call, match", [
    (lambda: F.mm(fb.ones(2, 3, 4), fb.ones(4, 2)),
     r"mm: expected two 2-d tensors, got shapes \(2, 3, 4\) and \(4, 2\)"),
    (lambda: F.mm(fb.ones(2, 3), fb.ones(4, 2)), r"matmul: inner dimensions differ"),
    (lambda: F.bmm(fb.ones(2, 3), fb.ones(2, 3, 4)), r"bmm: expected two 3-d tensors"),
    (lambda: F.bmm(fb.ones(2, 3, 4), fb.ones(3, 4, 5)),
     r"bmm: batch sizes differ: \(2, 3, 4\) and \(3, 4, 5\)"),
    (lambda: F.einsum("ij,jk->ik", fb.ones(2, 3)),
     r"einsum: the equation 'ij,jk->ik' has 2 operand\(s\) but 1 were given"),
    (lambda: F.einsum("ij->ik", fb.ones(2, 3)),
     r"einsum: output subscript 'k' does not appear in the operands"),
    (lambda: F.einsum("ijk->i", fb.ones(2, 3)),
     r"einsum: subscripts 'ijk' name 3 dims but the tensor has shape \(2, 3\)"),
    (lambda: F.einsum("i1->i", fb.ones(2, 3)), r"einsum: invalid subscript '1'"),
    (lambda: F.einsum("ij->ii", fb.ones(2, 3)), r"einsum: the output 'ii' repeats"),
    (lambda: F.einsum("ij,jk->ik", fb.ones(2, 3), fb.ones(4, 2)),
     r"einsum: 'ij,jk->ik' does not fit the shapes \[\(2, 3\), \(4, 2\)\]"),
])
def test_linalg_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_einsum_rejects_non_tensor_operands():
    with pytest.raises(TypeError, match=r"einsum: expected Tensor operands, got ndarray"):
        F.einsum("ij->", np.ones((2, 2)))
