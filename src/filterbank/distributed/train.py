"""Trainer support for data-parallel runs: per-rank loaders and one set of epoch numbers."""

from __future__ import annotations

import numpy as np

from filterbank.data.loader import DataLoader
from filterbank.distributed import comm as _comm
from filterbank.distributed.sampler import DistributedSampler
from filterbank.train.callbacks import Callback

# summed over the ranks (each rank saw its own images); every other number is averaged
_SUMMED = ("images_per_sec", "skipped")
_SAME = ("epoch", "lr")  # identical on every rank


def distributed_loader(dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                       drop_last: bool = False, **kwargs) -> DataLoader:
    """A :class:`~filterbank.data.DataLoader` over this rank's :class:`DistributedSampler`
    shard (``loader.sampler``); ``batch_size`` is per rank, so the global batch is
    ``batch_size * world_size()``. Other keyword arguments go to ``DataLoader``.

    Example:
        >>> from filterbank.data import TensorDataset
        >>> loader = distributed_loader(TensorDataset(np.arange(10.0)), 4, shuffle=False)
        >>> len(loader), len(loader.sampler)   # one process: the whole data set
        (3, 10)
    """
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **kwargs)


class DistributedCallback(Callback):
    """Make a :class:`~filterbank.train.Trainer` run agree across the ranks.

    At each epoch's start it calls ``set_epoch`` on the given samplers (a new shuffle, the same
    on every rank); at its end, before any other callback, it replaces the epoch's numbers in
    ``logs`` and in ``trainer.history`` by their average over the ranks (``images_per_sec``:
    the sum), so that early stopping, learning-rate schedules on a plateau and checkpoint
    choices take the same decision on every rank -- a rank that stopped alone would leave the
    others waiting in their next all-reduce. With equal shards the mean of the ranks' mean loss
    is the mean over all the images.

    Args:
        samplers: the :class:`DistributedSampler` objects to advance
            (``train_loader.sampler``).
    """

    order = 1

    def __init__(self, samplers=()):
        self.samplers = list(samplers)

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        for s in self.samplers:
            s.set_epoch(epoch)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        keys = sorted(k for k, v in logs.items()
                      if k not in _SAME and isinstance(v, int | float | np.number)
                      and not isinstance(v, bool))
        if _comm.world_size() == 1 or not keys:
            return
        values = np.array([float(logs[k]) for k in keys], np.float64)
        summed = _comm.all_reduce(values, op="sum")  # a fresh array: reduced in place
        history = getattr(trainer, "history", None)
        for k, total in zip(keys, summed):
            v = float(total) if k in _SUMMED else float(total) / _comm.world_size()
            logs[k] = v
            if history is not None and history.get(k):
                history[k][-1] = v

    def __repr__(self) -> str:
        return f"DistributedCallback(samplers={len(self.samplers)})"


def start_run(distributed: bool) -> bool:
    """For ``filterbank train --distributed``: check the launch, join the process group and
    say whether this rank is the one that prints and writes (rank 0). Without
    ``distributed`` every process is on its own (True).

    Raises:
        ValueError: ``distributed`` in a process no MPI launcher started.
        ImportError: mpi4py is not installed (``pip install filterbank[mpi]``).
    """
    if not distributed:
        return True
    if not _comm.launched_by_mpi():
        raise ValueError("distributed training needs the processes started by an MPI "
                         "launcher: mpirun -np N filterbank train ... --distributed (Open MPI: "
                         "Debian's openmpi-bin; mpi4py: pip install 'filterbank[mpi]')")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ImportError("distributed training needs mpi4py: pip install 'filterbank[mpi]' "
                          "(with Open MPI installed: Debian's openmpi-bin libopenmpi-dev)") \
            from None
    _comm.init()
    return _comm.is_main()


def wrap_for_training(model, loader: DataLoader, seed: int):
    """``(DistributedDataParallel(model), this rank's shard of loader, DistributedCallback)``:
    what a training run changes to be data-parallel. The shard keeps the loader's batch size
    (per rank), transform and prefetch; the sampler shuffles with ``seed``."""
    from filterbank.distributed.parallel import DistributedDataParallel

    sharded = distributed_loader(loader.dataset, loader.batch_size, shuffle=True, seed=seed,
                                 drop_last=loader.drop_last, transform=loader.transform,
                                 prefetch=loader.prefetch)
    return (DistributedDataParallel(model), sharded,
            DistributedCallback([sharded.sampler]))
