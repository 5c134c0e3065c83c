"""``DistributedSampler``: each rank's share of a data set's indices, PyTorch's semantics."""

from __future__ import annotations

import math

import numpy as np

from filterbank.distributed import comm as _comm


class DistributedSampler:
    """Split a data set's indices into ``num_replicas`` equal, disjoint shards.

    Each epoch the indices ``0..n-1`` are permuted by a generator seeded with ``seed + epoch``
    (the same on every rank, so the shards never overlap), padded by repeating their start to a
    multiple of ``num_replicas`` (or truncated to one with ``drop_last``), and rank ``r`` takes
    ``indices[r::num_replicas]``. Every rank then has ``ceil(n / p)`` samples (``floor`` with
    ``drop_last``), so every rank runs the same number of steps -- a rank with one step more would
    wait for ever in its extra gradient all-reduce. Call :meth:`set_epoch` at the start of each
    epoch, or every epoch gets the same order.

    Args:
        dataset: anything with ``__len__``.
        num_replicas: number of shards (default :func:`~filterbank.distributed.world_size`).
        rank: this shard (default :func:`~filterbank.distributed.rank`).
        shuffle: permute the indices every epoch (default True).
        seed: base seed, the same on every rank (default 0).
        drop_last: drop the tail instead of padding (default False).

    Example:
        >>> s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
        >>> list(s)   # indices 0..9 padded with 0, 1 to 12, then [1::3]
        [1, 4, 7, 0]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            num_replicas = _comm.world_size()
        if rank is None:
            rank = _comm.rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int | np.integer) \
                or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be an int >= 1, got "
                             f"{num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) \
                or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be an int in 0..{num_replicas - 1}, "
                             f"got {rank!r}")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` (call it with the same value on every rank)."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad by repeating from the start (several times if n < p)
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64, copy=False)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
