"""Data sets: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset`` and ``random_split``.

A data set maps an index to a sample (``dataset[i]``) and knows its length, as in PyTorch. Data
sets that hold their samples in arrays can also answer a whole batch at once through
``get_batch(indices)``: the :class:`~filterbank.data.DataLoader` then indexes the arrays with the
batch's indices (one NumPy gather per array) instead of fetching samples one by one in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from filterbank import random as _random
from filterbank.tensor import Tensor


class Dataset:
    """Base class of map-style data sets: implement ``__getitem__`` and ``__len__``.

    Optionally implement ``get_batch(indices) -> batch`` returning the already collated batch
    (tuple / dict of arrays with a leading batch axis); the DataLoader uses it when present.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 10
        ...     def __getitem__(self, i):
        ...         return i, i * i
        >>> Squares()[3]
        (3, 9)
    """

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no __getitem__")

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_array(a, where: str):
    if isinstance(a, Tensor):
        return a.data
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, list | tuple):
        return np.asarray(a)
    raise TypeError(f"{where}: expected NumPy arrays or Tensors, got {type(a).__name__}")


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: ``(x[i], y[i], ...)``.

    Args:
        *arrays: NumPy arrays or Tensors with the same length along axis 0 (Tensors are
            unwrapped; samples and batches are NumPy arrays).

    Example:
        >>> x = np.zeros((100, 1, 8, 8), np.float32); y = np.arange(100) % 10
        >>> ds = TensorDataset(x, y)
        >>> len(ds), ds[3][0].shape, int(ds[3][1])
        (100, (1, 8, 8), 3)
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array, got none")
        self.arrays = tuple(_as_array(a, "TensorDataset") for a in arrays)
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; expected a leading "
                                 f"sample axis")
        n = len(self.arrays[0])
        sizes = [len(a) for a in self.arrays]
        if any(s != n for s in sizes):
            raise ValueError(f"TensorDataset: all arrays must have the same length along "
                             f"axis 0, got lengths {sizes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices: np.ndarray) -> tuple:
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (in that order).

    Args:
        dataset: the data set to take samples from.
        indices: sequence of integer indices into ``dataset``.
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ValueError(f"Subset: indices must lie in [-{n}, {n}) for a data set of "
                             f"length {n}, got range [{idx.min()}, {idx.max()}]")
        self.indices = idx

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, list | np.ndarray):
            return [self.dataset[int(i)] for i in self.indices[index]]
        return self.dataset[int(self.indices[index])]

    def __getattr__(self, name):
        # only called for names not found normally: forward to the wrapped data set so that a
        # Subset of a data set with ``get_batch`` keeps the fast path, and ``classes`` etc. work
        if name == "get_batch":
            inner = getattr(self.dataset, "get_batch", None)
            if inner is None:
                raise AttributeError(name)
            return lambda indices: inner(self.indices[indices])
        if name in ("dataset", "indices") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


class ConcatDataset(Dataset):
    """Several data sets one after the other.

    Args:
        datasets: the data sets; their samples must have the same structure.
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one data set, got none")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        index = int(index) % n
        d = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = 0 if d == 0 else int(self.cumulative_sizes[d - 1])
        return self.datasets[d][index - start]


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: expected at least one length, got none")
    if any(v < 0 for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {lengths}")
    is_fraction = math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1.0
    if is_fraction:
        # PyTorch's rule: floor each share, then hand the remainder out one by one
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    if any(not float(v).is_integer() for v in lengths):
        raise ValueError(f"random_split: lengths must be integers or fractions summing to 1, "
                         f"got {lengths}")
    counts = [int(v) for v in lengths]
    if sum(counts) != n:
        raise ValueError(f"random_split: the lengths sum to {sum(counts)} but the data set has "
                         f"{n} samples (lengths {counts})")
    return counts


def random_split(dataset, lengths: Sequence[float],
                 generator: np.random.Generator | int | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    Args:
        dataset: the data set to split.
        lengths: integer lengths summing to ``len(dataset)``, or fractions summing to 1 (each
            gets ``floor(frac * n)`` samples; the remainder is dealt out round-robin, as PyTorch).
        generator: source of the permutation: a ``np.random.Generator``, an int seed (as
            ``DataLoader(generator=0)``; the same seed gives the same split) or None (the
            global generator).

    Example:
        >>> ds = TensorDataset(np.arange(10))
        >>> train, val = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(0))
        >>> len(train), len(val)
        (8, 2)
    """
    n = len(dataset)
    counts = _split_lengths(n, lengths)
    perm = _random.seeded(generator, "random_split").permutation(n)
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, perm[start:start + c]))
        start += c
    return out
