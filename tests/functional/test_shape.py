"""functional.shape: a registry of shape ops and indexing + the generic checks, then
scatter-add, views and errors."""

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

rng = np.random.default_rng(2)


def _r(*shape):
    return rng.standard_normal(shape)


def _same(f):
    """The same expression works on filterbank, NumPy and torch arrays."""
    return {"fn": f, "reference": f, "torch_fn": f}


_IDX = np.array([2, 0, 2, 1])  # picks row 2 twice: its gradient must be the sum of both
_MASK = np.array([[True, False, True, False], [False, False, True, True], [True] * 4])


def _np_pad(a, pad, value=0.0):
    width = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        width[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(a, width, constant_values=value)


CASES = [
    OpCase("reshape", **_same(lambda a: a.reshape(4, 3)), inputs=[_r(2, 6)]),
    OpCase("reshape_minus1", **_same(lambda a: a.reshape(-1, 2)), inputs=[_r(2, 3, 2)]),
    OpCase("reshape_noncontiguous", **_same(lambda a: a.reshape(12)),
           inputs=[noncontiguous(_r(3, 4))]),
    OpCase("view_tuple", fn=lambda a: a.view((3, 2)), reference=lambda a: a.reshape(3, 2),
           torch_fn=lambda a: a.view(3, 2), inputs=[_r(6)]),
    OpCase("flatten", fn=lambda a: a.flatten(1), reference=lambda a: a.reshape(2, -1),
           torch_fn=lambda a: a.flatten(1), inputs=[_r(2, 3, 4)]),
    OpCase("flatten_middle", fn=lambda a: F.flatten(a, 1, -2),
           reference=lambda a: a.reshape(2, 12, 5), torch_fn=lambda a: a.flatten(1, -2),
           inputs=[_r(2, 3, 4, 5)]),
    OpCase("transpose", fn=lambda a: a.transpose(0, -1),
           reference=lambda a: a.swapaxes(0, -1), torch_fn=lambda a: a.transpose(0, -1),
           inputs=[_r(2, 3, 4)]),
    OpCase("permute", fn=lambda a: a.permute(2, 0, 1),
           reference=lambda a: a.transpose(2, 0, 1), torch_fn=lambda a: a.permute(2, 0, 1),
           inputs=[_r(2, 3, 4)]),
    OpCase("T", **_same(lambda a: a.T), inputs=[_r(2, 3)]),
    OpCase("squeeze_all", fn=lambda a: a.squeeze(), reference=np.squeeze,
           torch_fn=lambda a: a.squeeze(), inputs=[_r(1, 3, 1, 2)]),
    OpCase("squeeze_dim", fn=lambda a: a.squeeze(-2),
           reference=lambda a: a.squeeze(-2), torch_fn=lambda a: a.squeeze(-2),
           inputs=[_r(1, 3, 1, 2)]),
    OpCase("unsqueeze_neg", fn=lambda a: a.unsqueeze(-1),
           reference=lambda a: a[..., None], torch_fn=lambda a: a.unsqueeze(-1),
           inputs=[_r(2, 3)]),
    OpCase("expand", fn=lambda a: a.expand(2, 4, 3),
           reference=lambda a: np.broadcast_to(a, (2, 4, 3)),
           torch_fn=lambda a: a.expand(2, 4, 3), inputs=[_r(4, 1)]),
    OpCase("expand_minus1", fn=lambda a: a.expand(-1, 5),
           reference=lambda a: np.broadcast_to(a, (3, 5)),
           torch_fn=lambda a: a.expand(-1, 5), inputs=[_r(3, 1)]),
    OpCase("broadcast_to_0d", fn=lambda a: F.broadcast_to(a, (2, 3)),
           reference=lambda a: np.broadcast_to(a, (2, 3)),
           torch_fn=lambda a: a.broadcast_to((2, 3)), inputs=[_r()]),
    OpCase("concatenate", fn=lambda a, b, c: F.concatenate([a, b, c], axis=-1),
           reference=lambda a, b, c: np.concatenate([a, b, c], -1),
           torch_fn=lambda a, b, c: torch.cat([a, b, c], -1),
           inputs=[_r(2, 1), _r(2, 3), _r(2, 2)]),
    OpCase("cat_axis0_noncontiguous", fn=lambda a, b: F.cat([a, b]),
           reference=lambda a, b: np.concatenate([a, b]),
           torch_fn=lambda a, b: torch.cat([a, b]),
           inputs=[noncontiguous(_r(2, 3)), _r(1, 3)]),
    OpCase("stack_axis1", fn=lambda a, b: F.stack([a, b], 1),
           reference=lambda a, b: np.stack([a, b], 1),
           torch_fn=lambda a, b: torch.stack([a, b], 1), inputs=[_r(2, 3), _r(2, 3)]),
    OpCase("stack_last", fn=lambda a, b: F.stack([a, b], -1),
           reference=lambda a, b: np.stack([a, b], -1),
           torch_fn=lambda a, b: torch.stack([a, b], -1), inputs=[_r(2, 3), _r(2, 3)]),
    OpCase("split_size", fn=lambda a: a.split(2, 1),
           reference=lambda a: np.split(a, [2, 4], 1), torch_fn=lambda a: a.split(2, 1),
           inputs=[_r(2, 5)]),
    OpCase("split_sections", fn=lambda a: F.split(a, [1, 3]),
           reference=lambda a: np.split(a, [1]), torch_fn=lambda a: a.split([1, 3]),
           inputs=[_r(4, 2)]),
    OpCase("chunk", fn=lambda a: a.chunk(3, -1),
           reference=lambda a: np.split(a, [3, 6], -1), torch_fn=lambda a: a.chunk(3, -1),
           inputs=[_r(2, 7)]),
    OpCase("pad_last", fn=lambda a: F.pad(a, (1, 2)),
           reference=lambda a: _np_pad(a, (1, 2)),
           torch_fn=lambda a: torch.nn.functional.pad(a, (1, 2)), inputs=[_r(2, 3)]),
    OpCase("pad_2d_value", fn=lambda a: F.pad(a, (1, 0, 2, 1), value=-1.5),
           reference=lambda a: _np_pad(a, (1, 0, 2, 1), -1.5),
           torch_fn=lambda a: torch.nn.functional.pad(a, (1, 0, 2, 1), value=-1.5),
           inputs=[_r(1, 2, 3, 3)]),
    # indexing: basic, integer arrays (gather, repeated picks), masks, mixes, negatives
    OpCase("getitem_slice_step", **_same(lambda a: a[1:, ::2]), inputs=[_r(3, 5)]),
    OpCase("getitem_int_neg", **_same(lambda a: a[-1]), inputs=[_r(3, 4)]),
    OpCase("getitem_scalar", **_same(lambda a: a[1, 2]), inputs=[_r(3, 4)]),
    OpCase("getitem_none_ellipsis", **_same(lambda a: a[None, ..., 1]), inputs=[_r(2, 3, 4)]),
    OpCase("getitem_int_array_repeats", fn=lambda a: a[_IDX], reference=lambda a: a[_IDX],
           torch_fn=lambda a: a[torch.from_numpy(_IDX)], inputs=[_r(3, 4)]),
    OpCase("getitem_int_array_tensor", fn=lambda a: a[fb.tensor(_IDX)],
           reference=lambda a: a[_IDX], torch_fn=lambda a: a[torch.from_numpy(_IDX)],
           inputs=[_r(3, 2)]),
    OpCase("getitem_slice_and_list", fn=lambda a: a[1:, [0, 0, 3]],
           reference=lambda a: a[1:, [0, 0, 3]], torch_fn=lambda a: a[1:, [0, 0, 3]],
           inputs=[_r(3, 4)]),
    OpCase("getitem_gather_pairs", fn=lambda a: a[np.arange(3), [1, 3, 1]],
           reference=lambda a: a[np.arange(3), [1, 3, 1]],
           torch_fn=lambda a: a[torch.arange(3), torch.tensor([1, 3, 1])], inputs=[_r(3, 4)]),
    OpCase("getitem_negative_index_array", fn=lambda a: a[:, [-1, 0, -1]],
           reference=lambda a: a[:, [-1, 0, -1]], torch_fn=lambda a: a[:, [-1, 0, -1]],
           inputs=[_r(2, 4)]),
    OpCase("getitem_bool_mask", fn=lambda a: a[_MASK], reference=lambda a: a[_MASK],
           torch_fn=lambda a: a[torch.from_numpy(_MASK)], inputs=[_r(3, 4)]),
    OpCase("getitem_bool_tensor_rows", fn=lambda a: a[fb.tensor([True, False, True])],
           reference=lambda a: a[np.array([True, False, True])],
           torch_fn=lambda a: a[torch.tensor([True, False, True])], inputs=[_r(3, 4)]),
    OpCase("getitem_noncontiguous", fn=lambda a: a[[1, 1], 1:],
           reference=lambda a: a[[1, 1], 1:], torch_fn=lambda a: a[[1, 1], 1:],
           inputs=[noncontiguous(_r(3, 4))]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference(case):
    inputs = [np.asarray(a) for a in case.inputs]
    want = case.reference(*inputs)
    if isinstance(want, list):  # split/chunk give several outputs
        got = case.fn(*[fb.Tensor(a.astype(np.float32)) for a in inputs])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.data, w, rtol=1e-6)
    else:
        check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


# ------------------------------------------------------------------------ special cases
def test_gather_scatter_adds_repeated_picks():
    x = fb.zeros(3, requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0]


def test_getitem_of_1d_returns_a_0d_array_tensor():
    y = fb.tensor([1.0, 2.0])[1]
    assert y.shape == () and isinstance(y.data, np.ndarray)


def test_split_pieces_each_reach_the_input():
    x = fb.arange(6.0).requires_grad_()
    a, b, c = x.chunk(3)
    (a.sum() + 2 * c.sum()).backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0, 2.0, 2.0]


@pytest.mark.parametrize("call, match", [
    (lambda: fb.ones(2, 3).reshape(4, 2),
     r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    (lambda: fb.ones(2, 3).permute(0, 0), r"permute: \(0, 0\) is not a permutation"),
    (lambda: fb.ones(2, 3).transpose(0, 2), r"transpose: dim 2 is out of range"),
    (lambda: fb.ones(2, 3).expand(4, 3), r"expand: shape \(2, 3\) cannot be expanded"),
    (lambda: F.cat([fb.ones(2, 3), fb.ones(2, 4)]),
     r"concatenate: shapes must match except along axis 0, got \[\(2, 3\), \(2, 4\)\]"),
    (lambda: F.stack([fb.ones(2), fb.ones(3)]), r"stack: all shapes must be equal"),
    (lambda: F.split(fb.ones(4), [1, 2]), r"split: sizes \[1, 2\] do not add up"),
    (lambda: F.pad(fb.ones(2), (1, 1, 1, 1)), r"pad: expected an even number of at most 2"),
    (lambda: fb.ones(2).unsqueeze(3), r"unsqueeze: dim 3 is out of range"),
])
def test_shape_errors_name_the_op_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_getitem_errors_name_the_shape():
    with pytest.raises(IndexError, match=r"getitem: index .* is invalid for a tensor of shape "
                                         r"\(2, 3\)"):
        fb.ones(2, 3)[5]
    with pytest.raises(TypeError, match=r"getitem: index arrays must be integer or bool"):
        fb.ones(2, 3)[np.array([0.5])]


# ---------------------------------------------------------------- flip, repeat (issue 10)
FLIP_REPEAT_CASES = [
    OpCase("flip_one_dim", fn=lambda a: F.flip(a, 0), reference=lambda a: np.flip(a, 0),
           torch_fn=lambda a: torch.flip(a, (0,)), inputs=[_r(3, 4)]),
    OpCase("flip_neg_dims", fn=lambda a: a.flip(-1, 0), reference=lambda a: np.flip(a, (-1, 0)),
           torch_fn=lambda a: a.flip(-1, 0), inputs=[_r(2, 3, 4)]),
    OpCase("flip_list_keyword", fn=lambda a: a.flip(dims=[1, 2]),
           reference=lambda a: np.flip(a, (1, 2)), torch_fn=lambda a: a.flip(dims=[1, 2]),
           inputs=[noncontiguous(_r(2, 3, 4))]),
    OpCase("flip_empty_dims", fn=lambda a: F.flip(a, ()), reference=lambda a: a,
           torch_fn=lambda a: torch.flip(a, ()), inputs=[_r(2, 3)]),
    OpCase("repeat_same_ndim", fn=lambda a: a.repeat(2, 3), reference=lambda a: np.tile(a, (2, 3)),
           torch_fn=lambda a: a.repeat(2, 3), inputs=[_r(2, 3)]),
    OpCase("repeat_new_leading_dims", fn=lambda a: a.repeat(2, 1, 3),
           reference=lambda a: np.tile(a, (2, 1, 3)), torch_fn=lambda a: a.repeat(2, 1, 3),
           inputs=[_r(4)]),
    OpCase("repeat_tuple_noncontiguous", fn=lambda a: F.repeat(a, (1, 2, 2)),
           reference=lambda a: np.tile(a, (1, 2, 2)), torch_fn=lambda a: a.repeat(1, 2, 2),
           inputs=[noncontiguous(_r(3, 2))]),
    OpCase("repeat_zero", fn=lambda a: a.repeat(0, 2), reference=lambda a: np.tile(a, (0, 2)),
           torch_fn=lambda a: a.repeat(0, 2), inputs=[_r(2, 3)]),
    OpCase("repeat_0d", fn=lambda a: a.repeat(3), reference=lambda a: np.tile(a, 3),
           torch_fn=lambda a: a.repeat(3), inputs=[_r()]),
    OpCase("view_as", fn=lambda a: a.view_as(fb.zeros(3, 4)), reference=lambda a: a.reshape(3, 4),
           torch_fn=lambda a: a.view_as(torch.zeros(3, 4)), inputs=[_r(2, 6)]),
    OpCase("expand_as", fn=lambda a: a.expand_as(fb.zeros(2, 3, 4)),
           reference=lambda a: np.broadcast_to(a, (2, 3, 4)),
           torch_fn=lambda a: a.expand_as(torch.zeros(2, 3, 4)), inputs=[_r(3, 1)]),
    OpCase("t_2d", fn=lambda a: a.t(), reference=lambda a: a.T, torch_fn=lambda a: a.t(),
           inputs=[_r(2, 3)]),
    OpCase("t_1d", fn=lambda a: a.t(), reference=lambda a: a, torch_fn=lambda a: a.t(),
           inputs=[_r(3)]),
]


@pytest.mark.parametrize("case", FLIP_REPEAT_CASES, ids=str)
def test_flip_repeat_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", FLIP_REPEAT_CASES, ids=str)
def test_flip_repeat_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", FLIP_REPEAT_CASES, ids=str)
def test_flip_repeat_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", FLIP_REPEAT_CASES, ids=str)
def test_flip_repeat_float32(case):
    check_float32(case)


def test_repeat_gradient_sums_the_copies():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    (x.repeat(3, 2) * fb.arange(12.0).reshape(3, 4)).sum().backward()
    # x[0] is at columns 0 and 2 of every row: 0+2+4+6+8+10 = 30; x[1]: 1+3+5+7+9+11 = 36
    assert x.grad.tolist() == [30.0, 36.0]


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fb.ones(2, 3).flip(0, -2), ValueError, r"flip: dims \(0, -2\) name a dim more"),
    (lambda: fb.ones(2, 3).flip(2), ValueError, r"flip: dim 2 is out of range"),
    (lambda: fb.ones(2, 3).repeat(2), ValueError,
     r"repeat: got 1 sizes \(2,\) for a tensor with 2 dims"),
    (lambda: fb.ones(2).repeat(-1), ValueError, r"repeat: sizes must be non-negative"),
    (lambda: fb.ones(2).repeat(1.5), TypeError, r"repeat: expected ints"),
    (lambda: fb.ones(2, 3, 4).t(), ValueError,
     r"t\(\): expected a tensor with at most 2 dims, got shape \(2, 3, 4\)"),
])
def test_flip_repeat_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
