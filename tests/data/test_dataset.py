"""Dataset, TensorDataset, Subset, ConcatDataset, random_split (lengths as torch's)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import filterbank as fb
from filterbank.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return i, i * i


def test_tensor_dataset_items_and_batches():
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    y = np.arange(6) % 3
    ds = TensorDataset(fb.tensor(x), y)  # Tensors are unwrapped
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, x[4])
    assert yi == y[4]
    bx, by = ds.get_batch(np.array([5, 0, 2]))
    np.testing.assert_array_equal(bx, x[[5, 0, 2]])
    np.testing.assert_array_equal(by, y[[5, 0, 2]])
    assert bx.dtype == np.float32


@pytest.mark.parametrize("arrays, match", [
    ((np.zeros((3, 2)), np.zeros(4)), r"same length along axis 0, got lengths \[3, 4\]"),
    ((), "at least one array"),
    ((np.float32(1.0),), "expected NumPy arrays or Tensors"),
    ((np.zeros(()),), "0-d"),
])
def test_tensor_dataset_errors(arrays, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TensorDataset(*arrays)


def test_subset_maps_indices_and_keeps_fast_path():
    x = np.arange(10, dtype=np.float32)
    ds = TensorDataset(x)
    sub = Subset(ds, [9, 3, 5])
    assert len(sub) == 3
    assert sub[1][0] == 3
    (bx,) = sub.get_batch(np.array([2, 0]))
    np.testing.assert_array_equal(bx, [5, 9])
    with pytest.raises(ValueError, match="Subset: indices must lie in"):
        Subset(ds, [10])
    plain = Subset(Squares(), [1, 2])
    assert not hasattr(plain, "get_batch")
    assert plain[1] == (2, 4)


def test_concat_dataset():
    ds = Squares() + TensorDataset(np.array([100, 200]))
    assert isinstance(ds, ConcatDataset)
    assert len(ds) == 9
    assert ds[6] == (6, 36)
    assert ds[7][0] == 100 and ds[-1][0] == 200
    with pytest.raises(IndexError, match="out of range"):
        ds[9]


@pytest.mark.parametrize("n, lengths", [
    (10, [3, 7]), (10, [0.8, 0.2]), (11, [0.5, 0.5]), (7, [0.3, 0.3, 0.4]), (5, [0.1] * 10),
    (100, [0.7, 0.2, 0.1]), (3, [1.0]),
])
def test_random_split_lengths_match_torch(n, lengths):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # torch warns about empty splits; the lengths still count
        warnings.simplefilter("ignore")
        ref = [len(s) for s in torch.utils.data.random_split(range(n), lengths)]
    parts = random_split(TensorDataset(np.arange(n)), lengths,
                         generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == ref
    got = np.concatenate([p.indices for p in parts])
    np.testing.assert_array_equal(np.sort(got), np.arange(n))  # disjoint and complete


def test_random_split_deterministic_and_uses_generator():
    ds = TensorDataset(np.arange(50))
    a = random_split(ds, [25, 25], generator=np.random.default_rng(3))
    b = random_split(ds, [25, 25], generator=np.random.default_rng(3))
    c = random_split(ds, [25, 25], generator=np.random.default_rng(4))
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
    assert not np.array_equal(a[0].indices, c[0].indices)
    fb.manual_seed(1)
    d = random_split(ds, [25, 25])
    fb.manual_seed(1)
    e = random_split(ds, [25, 25])
    np.testing.assert_array_equal(d[0].indices, e[0].indices)


@pytest.mark.parametrize("lengths, match", [
    ([3, 3], "sum to 6 but the data set has 10"),
    ([-1, 11], "non-negative"),
    ([2.5, 7.5], "integers or fractions"),
    ([], "at least one"),
])
def test_random_split_errors(lengths, match):
    with pytest.raises(ValueError, match=match):
        random_split(TensorDataset(np.arange(10)), lengths)


def test_random_split_accepts_an_int_seed_like_the_data_loader():
    ds = TensorDataset(np.arange(50))
    a = random_split(ds, [0.8, 0.2], generator=0)
    b = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(0))
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
    np.testing.assert_array_equal(a[1].indices, b[1].indices)
    c = random_split(ds, [0.8, 0.2], generator=np.int64(1))
    assert not np.array_equal(a[0].indices, c[0].indices)
    state = fb.random.get_rng_state()
    random_split(ds, [25, 25], generator=5)
    assert fb.random.get_rng_state() == state  # a seed does not touch the global generator
    with pytest.raises(TypeError, match=r"random_split: generator must be a np.random.Generator"
                                        r", an int seed or None, got str"):
        random_split(ds, [25, 25], generator="0")
    with pytest.raises(TypeError, match="got bool"):
        random_split(ds, [25, 25], generator=True)
    with pytest.raises(ValueError, match="non-negative, got -1"):
        random_split(ds, [25, 25], generator=-1)
