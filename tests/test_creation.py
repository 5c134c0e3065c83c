"""Factories (dtypes, shapes, copies, *_like) and the single seeded generator."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import random as fbr


@pytest.mark.parametrize("factory", [fb.zeros, fb.ones, fb.empty, fb.randn, fb.rand])
def test_shape_forms_default_dtype_and_explicit_dtype(factory):
    assert factory(2, 3).shape == (2, 3)
    assert factory((2, 3)).shape == (2, 3)
    assert factory(4).dtype == np.float32
    assert factory(4, dtype=np.float64).dtype == np.float64
    assert factory(4, dtype="float64").dtype == np.float64
    t = factory(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_values():
    assert fb.zeros(2).tolist() == [0.0, 0.0]
    assert fb.ones(2, dtype="int64").tolist() == [1, 1]
    assert fb.full((2,), 3.5).tolist() == [3.5, 3.5]


@pytest.mark.parametrize("fill, dtype", [(1.5, np.float32), (2, np.int64), (True, np.bool_),
                                         (np.int32(2), np.int64), (np.float64(1.5), np.float32)])
def test_full_infers_dtype_like_torch(fill, dtype):
    assert fb.full(3, fill).dtype == dtype


def test_arange():
    assert fb.arange(4).tolist() == [0, 1, 2, 3] and fb.arange(4).dtype == np.int64
    assert fb.arange(1, 7, 2).tolist() == [1, 3, 5]
    a = fb.arange(0.0, 1.0, 0.25)
    assert a.dtype == np.float32 and a.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert fb.arange(3, dtype=np.float64).dtype == np.float64


def test_tensor_copies_and_infers_dtypes():
    src = np.arange(3.0)
    t = fb.tensor(src)
    src[0] = 9.0
    assert t.tolist() == [0.0, 1.0, 2.0] and t.dtype == np.float32
    assert fb.tensor([[1, 2]]).dtype == np.int64
    assert fb.tensor(src, dtype="float64").dtype == np.float64
    assert fb.tensor(fb.ones(2, dtype=np.float64)).dtype == np.float64
    assert fb.tensor([fb.tensor(1.0), fb.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert fb.tensor(3.0).shape == ()


@pytest.mark.parametrize("like", [fb.zeros_like, fb.ones_like, fb.empty_like, fb.randn_like,
                                  fb.rand_like])
def test_like_factories_keep_shape_and_dtype(like):
    src = fb.zeros(2, 3, dtype=np.float64)
    assert like(src).shape == (2, 3) and like(src).dtype == np.float64
    assert like(src, dtype=np.float32).dtype == np.float32  # an explicit dtype wins
    assert like(src, requires_grad=True).requires_grad


def test_full_like():
    assert fb.full_like(fb.zeros(2, dtype="int64"), 7).tolist() == [7, 7]


def test_random_factories_need_a_floating_dtype():
    with pytest.raises(TypeError, match="randn: expected a floating dtype, got int64"):
        fb.randn(2, dtype="int64")


def test_manual_seed_makes_draws_reproducible_and_keeps_the_generator_object():
    g = fb.default_generator()
    assert fb.manual_seed(123) is g
    a = fb.randn(5).tolist()
    b = fb.rand(3).tolist()
    fb.manual_seed(123)
    assert fb.randn(5).tolist() == a and fb.rand(3).tolist() == b
    fb.manual_seed(124)
    assert fb.randn(5).tolist() != a
    # the stream is NumPy's default_rng(seed)
    fb.manual_seed(7)
    assert fb.randn(3, dtype=np.float64).tolist() == \
        np.random.default_rng(7).standard_normal(3).tolist()


def test_explicit_generator_does_not_touch_the_global_one():
    fb.manual_seed(0)
    expected = fb.randn(3).tolist()
    fb.manual_seed(0)
    fb.randn(3, generator=np.random.default_rng(99))
    assert fb.randn(3).tolist() == expected


def test_rng_state_round_trip():
    fb.manual_seed(5)
    state = fbr.get_rng_state()
    a = fb.rand(4).tolist()
    fbr.set_rng_state(state)
    assert fb.rand(4).tolist() == a


@pytest.mark.parametrize("seed, exc", [(1.5, TypeError), (True, TypeError), (-1, ValueError)])
def test_manual_seed_rejects_bad_seeds(seed, exc):
    with pytest.raises(exc, match="manual_seed"):
        fb.manual_seed(seed)


def test_resolve_rejects_non_generators():
    with pytest.raises(TypeError, match="numpy.random.Generator or None, got int"):
        fbr.resolve(3)


# ------------------------------------------------- NumPy interop, ranges (issue 10)
def test_from_numpy_shares_memory_both_ways_and_keeps_the_dtype():
    for dt in (np.float64, np.float32, np.int32, np.uint8, np.bool_):
        a = np.zeros(3, dt)
        t = fb.from_numpy(a)
        assert t.dtype == dt and t.data is a
    a = np.zeros((2, 2))
    t = fb.from_numpy(a)
    a[0, 0] = 5.0
    t.data[1, 1] = 7.0
    assert t.tolist() == [[5.0, 0.0], [0.0, 7.0]] and a[1, 1] == 7.0


def test_from_numpy_matches_torch_dtype_and_sharing():
    torch = pytest.importorskip("torch")
    a = np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::2]  # non-contiguous views work too
    t, tt = fb.from_numpy(a), torch.from_numpy(a)
    a[0, 0] = 9
    assert t.tolist() == tt.tolist() and str(t.dtype) == str(tt.dtype).split(".")[1]


@pytest.mark.parametrize("bad, match", [([1, 2], r"from_numpy: expected a numpy.ndarray, got "
                                                  r"list"),
                                        (np.array(["a"]), r"from_numpy: can't convert an array "
                                                          r"of dtype <U1")])
def test_from_numpy_rejects(bad, match):
    with pytest.raises(TypeError, match=match):
        fb.from_numpy(bad)


def test_as_tensor_shares_when_it_can_and_converts_otherwise():
    a = np.arange(3.0)
    assert fb.as_tensor(a).data is a and fb.as_tensor(a).dtype == np.float64
    assert fb.as_tensor(a, dtype=fb.float64).data is a
    b = fb.as_tensor(a, dtype=fb.float32)
    assert b.dtype == np.float32 and not np.shares_memory(b.data, a)
    t = fb.ones(2)
    assert fb.as_tensor(t) is t and fb.as_tensor(t, fb.float32) is t
    assert fb.as_tensor(t, fb.float64).dtype == np.float64
    assert fb.as_tensor([1.5, 2.0]).dtype == np.float32
    assert fb.as_tensor([1, 2]).dtype == np.int64


def test_eye():
    assert fb.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]] and fb.eye(2).dtype == np.float32
    assert fb.eye(2, 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert fb.eye(3, dtype=fb.int64).dtype == np.int64
    assert fb.eye(0).shape == (0, 0)
    with pytest.raises(ValueError, match=r"eye: expected n to be a non-negative int, got -1"):
        fb.eye(-1)


@pytest.mark.parametrize("start, end, steps, dtype", [
    (0, 1, 5, None), (0, 1, 7, None), (-3.5, 2.25, 11, None), (1, -1, 4, None),
    (0.1, 0.7, 13, None), (-1e3, 7.3, 101, None), (2, 2, 3, None), (5, 6, 1, None),
    (0, 1, 0, None), (0, 10, 4, "int64"), (-3.5, 3.5, 4, "int64"), (0, 1, 9, "float64"),
    (-2.5, 9.1, 37, "float64"),
])
def test_linspace_equals_torch_bit_for_bit(start, end, steps, dtype):
    torch = pytest.importorskip("torch")
    got = fb.linspace(start, end, steps, dtype=dtype)
    want = torch.linspace(start, end, steps, dtype=None if dtype is None else
                          getattr(torch, dtype))
    assert str(got.dtype) == str(want.dtype).split(".")[1]
    if dtype == "float64":  # PyTorch's fused multiply-add in double cannot be emulated exactly
        scale = np.finfo(np.float64).eps * max(abs(start), abs(end))
        np.testing.assert_allclose(got.data, want.numpy(), rtol=0, atol=4 * scale)
    else:
        assert got.tolist() == want.tolist()


def test_linspace_hand_computed_and_errors():
    assert fb.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match=r"linspace: expected steps to be a non-negative int"):
        fb.linspace(0, 1, -2)


def test_randint_forms_range_dtype_and_generator():
    x = fb.randint(3, 7, (200,), generator=np.random.default_rng(0))
    assert x.dtype == np.int64 and x.shape == (200,)
    assert x.data.min() == 3 and x.data.max() == 6  # 200 draws hit both ends
    y = fb.randint(5, (2, 3), generator=np.random.default_rng(0))
    assert y.shape == (2, 3) and ((y.data >= 0) & (y.data < 5)).all()
    a = fb.randint(0, 100, (5,), generator=np.random.default_rng(1)).tolist()
    b = fb.randint(0, 100, (5,), generator=np.random.default_rng(1)).tolist()
    assert a == b == np.random.default_rng(1).integers(0, 100, 5).tolist()
    fb.manual_seed(3)
    c = fb.randint(10, (4,)).tolist()
    fb.manual_seed(3)
    assert fb.randint(10, (4,)).tolist() == c  # the global generator when none is given
    assert fb.randint(0, 2, 3, dtype=fb.int32).dtype == np.int32


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fb.randint(5, 5, (2,)), ValueError, r"randint: expected low < high, got low=5, "
                                                 r"high=5"),
    (lambda: fb.randint(5), TypeError, r"randint: expected randint\(high, size\)"),
    (lambda: fb.randint(0.5, 3, (2,)), TypeError, r"randint: expected low to be an int"),
    (lambda: fb.randint(0, 3, (2,), generator=0), TypeError,
     r"expected generator to be a numpy.random.Generator"),
    (lambda: fb.randperm(-1), ValueError, r"randperm: expected n to be a non-negative int"),
])
def test_randint_randperm_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_randperm_is_a_seeded_permutation():
    p = fb.randperm(10, generator=np.random.default_rng(4))
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(10))
    assert p.tolist() == fb.randperm(10, generator=np.random.default_rng(4)).tolist()
    assert p.tolist() != list(range(10))
    assert fb.randperm(0).shape == (0,)


def test_allclose_follows_torch():
    torch = pytest.importorskip("torch")
    pairs = [([1.0, 2.0], [1.0, 2.0 + 1e-6]), ([1.0, 2.0], [1.0, 2.1]),
             ([1e-9], [0.0]), ([float("nan")], [float("nan")]), ([1.0, 1.0], [1.0])]
    for a, b in pairs:
        want = torch.allclose(torch.tensor(a), torch.tensor(b))
        got = fb.allclose(fb.tensor(a), fb.tensor(b))
        assert got is want, (a, b)
    assert fb.allclose(fb.tensor([float("nan")]), fb.tensor([float("nan")]), equal_nan=True)
    assert fb.allclose(fb.tensor([1.0]), fb.tensor([1.5]), atol=0.6)
    with pytest.raises(ValueError, match=r"allclose: shapes \(2,\) and \(3,\) do not broadcast"):
        fb.allclose(fb.ones(2), fb.ones(3))


FACTORIES = [
    lambda **k: fb.tensor([1.0], **k), lambda **k: fb.zeros(2, **k), lambda **k: fb.ones(2, **k),
    lambda **k: fb.empty(2, **k), lambda **k: fb.full((2,), 3.0, **k),
    lambda **k: fb.arange(3, **k), lambda **k: fb.randn(2, **k), lambda **k: fb.rand(2, **k),
    lambda **k: fb.zeros_like(fb.ones(2), **k), lambda **k: fb.ones_like(fb.ones(2), **k),
    lambda **k: fb.empty_like(fb.ones(2), **k), lambda **k: fb.full_like(fb.ones(2), 1, **k),
    lambda **k: fb.randn_like(fb.ones(2), **k), lambda **k: fb.rand_like(fb.ones(2), **k),
    lambda **k: fb.as_tensor([1, 2], **k), lambda **k: fb.eye(2, **k),
    lambda **k: fb.linspace(0, 1, 3, **k), lambda **k: fb.randint(0, 5, (2,), **k),
    lambda **k: fb.randperm(3, **k),
]


@pytest.mark.parametrize("make", FACTORIES)
def test_factories_take_pytorchs_device_keyword(make):
    # `torch.zeros(..., device=device)` with device = "cpu": the tutorial line runs as written
    for dev in ("cpu", fb.device("cpu"), "cpu:0", None):
        assert make(device=dev).device == "cpu"
    with pytest.raises(ValueError, match="'cuda' is not available"):
        make(device="cuda")
