"""Data-parallel training over MPI: ``mpirun -np N python train.py``.

Every rank runs the same script on its own shard of the data (:class:`DistributedSampler`);
:class:`DistributedDataParallel` keeps the model replicas identical by averaging the gradients.
Without a launcher the world has one process and everything here is a no-op, so the same script
runs with plain ``python``.
"""

from filterbank.distributed.comm import (all_gather, all_reduce, barrier, broadcast, init,
                                         is_main, launched_by_mpi, rank, world_size)
from filterbank.distributed.parallel import DistributedDataParallel
from filterbank.distributed.sampler import DistributedSampler
from filterbank.distributed.train import DistributedCallback, distributed_loader

__all__ = ["DistributedCallback", "DistributedDataParallel", "DistributedSampler", "all_gather",
           "all_reduce", "barrier", "broadcast", "distributed_loader", "init", "is_main",
           "launched_by_mpi", "rank", "world_size"]
