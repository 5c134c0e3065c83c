"""The process group: rank, world size and collectives on NumPy arrays over MPI.

Launched by ``mpirun -np N``, every process runs the same script; :func:`init` reads the MPI
environment and gives each process its ``rank`` (0..N-1) in a world of ``N``. Started any other
way (``python train.py``), the world has one process and every collective is the identity, so the
same script runs unchanged without MPI installed.

Collectives use mpi4py's buffer API (``Allreduce``/``Bcast`` on the arrays' memory, no pickling).
Every rank must call the same collectives in the same order, or the job waits for ever; an
uncaught exception on one rank therefore aborts the whole job (``MPI.COMM_WORLD.Abort``, as
``python -m mpi4py`` does) instead of leaving the other ranks waiting.
"""

from __future__ import annotations

import os
import sys
import traceback

import numpy as np

from filterbank.tensor import Tensor

# environment variables set by the MPI launchers (Open MPI, PMIx, MPICH/Hydra, Slurm's PMI)
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS")

_comm = None  # mpi4py's COMM_WORLD once init() ran under a launcher; None: single process
_initialized = False


def launched_by_mpi() -> bool:
    """True when this process was started by an MPI launcher (``mpirun``/``mpiexec``/``srun``)."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def init() -> None:
    """Join the process group (idempotent); called by every other function here.

    Under ``mpirun`` this imports mpi4py (which initialises MPI) and installs an exception hook
    that prints the traceback with the rank and aborts the job; otherwise it does nothing and
    the world has one process.
    """
    global _comm, _initialized
    if _initialized:
        return
    if launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError(
                "filterbank.distributed: this process was started by an MPI launcher but mpi4py "
                "is not installed; install it with `pip install filterbank[mpi]` (needs an MPI "
                "library, e.g. Debian's openmpi-bin and libopenmpi-dev)") from e
        _comm = MPI.COMM_WORLD
        if _comm.Get_size() > 1:
            _install_abort_hook(_comm)
    _initialized = True


def _install_abort_hook(comm) -> None:
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        # the other ranks may be waiting in a collective this rank will never enter: print the
        # error, then take the whole job down rather than hang
        try:
            sys.stderr.write(f"filterbank.distributed: rank {comm.Get_rank()} of "
                             f"{comm.Get_size()} raised an exception; aborting the job\n")
            if previous is not sys.__excepthook__:
                previous(exc_type, exc, tb)
            else:
                traceback.print_exception(exc_type, exc, tb)
            sys.stderr.flush()
        finally:
            comm.Abort(1)

    sys.excepthook = hook


def rank() -> int:
    """This process's rank, 0..world_size()-1 (0 without MPI)."""
    init()
    return 0 if _comm is None else _comm.Get_rank()


def world_size() -> int:
    """The number of processes in the job (1 without MPI)."""
    init()
    return 1 if _comm is None else _comm.Get_size()


def is_main() -> bool:
    """True on rank 0: the process that prints, logs and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank reaches this call."""
    init()
    if _comm is not None:
        _comm.Barrier()


def comm():
    """mpi4py's ``COMM_WORLD`` (None in a single process without a launcher)."""
    init()
    return _comm


def _buffer(x, where: str) -> np.ndarray:
    a = x.data if isinstance(x, Tensor) else x
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{where}: expected a NumPy array or a Tensor on the CPU, got "
                        f"{type(a).__name__}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{where}: the array must be C-contiguous and writeable (the result "
                         f"is written in place); pass np.ascontiguousarray(x)")
    return a


def all_reduce(x, op: str = "sum"):
    """Reduce ``x`` element-wise over all ranks, in place; every rank gets the result.

    ``op="sum"``: ``x = x_0 + x_1 + ... + x_{p-1}``; ``op="mean"``: that sum divided by ``p``
    (floating arrays only). ``x`` is a C-contiguous NumPy array or a Tensor (its ``.data`` is
    reduced); it is returned for chaining.

    Example:
        >>> g = np.ones(3, np.float32)
        >>> all_reduce(g, op="mean").tolist()   # one process: unchanged
        [1.0, 1.0, 1.0]
    """
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce: op must be 'sum' or 'mean', got {op!r}")
    a = _buffer(x, "all_reduce")
    if op == "mean" and a.dtype.kind not in "fc":
        raise TypeError(f"all_reduce: op='mean' needs a floating array, got {a.dtype}")
    init()
    if _comm is not None and _comm.Get_size() > 1:
        from mpi4py import MPI

        _comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
        if op == "mean":
            a /= _comm.Get_size()
    return x


def broadcast(x, src: int = 0):
    """Overwrite ``x`` on every rank with rank ``src``'s ``x`` (in place; returned)."""
    a = _buffer(x, "broadcast")
    n = world_size()
    if not 0 <= src < n:
        raise ValueError(f"broadcast: src must be a rank in 0..{n - 1}, got {src}")
    if _comm is not None and n > 1:
        _comm.Bcast(a, root=src)
    return x


def all_gather(x) -> np.ndarray:
    """Stack every rank's ``x`` (same shape and dtype on all ranks): shape ``(p, *x.shape)``."""
    a = np.ascontiguousarray(x.data if isinstance(x, Tensor) else x)
    n = world_size()
    out = np.empty((n, *a.shape), a.dtype)
    if _comm is None or n == 1:
        out[0] = a
    else:
        _comm.Allgather(a, out)
    return out
