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
