"""``DistributedDataParallel``: one model replica per rank, gradients averaged in buckets.

Data parallelism: every rank holds the same parameters and runs forward and backward on its own
shard of the global batch; averaging the gradients over the ``p`` ranks gives every rank the
gradient of the mean loss over the global batch (with equal shards, the mean of the rank means
is the global mean), so the optimizers take identical steps and the replicas stay identical.

The gradients travel in buckets (several parameters flattened into one message of at most
``bucket_cap_mb``): one all-reduce per parameter would pay the network latency ~60 times a step
for a ResNet, one for the whole model could start only when backward has finished. A gradient
hook (``Tensor.register_hook``) on every parameter copies its gradient into its bucket as soon
as backward computes it; a bucket whose gradients are all in starts a non-blocking
``Iallreduce`` while backward goes on with the earlier layers. Buckets are filled in the reverse
order of ``parameters()`` (roughly the order backward reaches them) and launched strictly in
bucket order, so every rank issues the same collectives in the same order.
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np

from filterbank.autograd import is_grad_enabled
from filterbank.distributed import comm as _comm
from filterbank.nn.module import Module


class _Bucket:
    __slots__ = ("flat", "params", "offsets", "pending", "request")

    def __init__(self, params: list, dtype):
        self.params = params
        sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.flat = np.zeros(self.offsets[-1], dtype)
        self.pending = len(params)
        self.request = None

    def view(self, i: int, shape) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]].reshape(shape)


def _signature(named: list) -> list[str]:
    return [f"{name} {tuple(t.shape)} {t.data.dtype}" for name, t in named]


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of the MPI job.

    At wrap time every rank checks that it holds the same parameters and buffers (names, shapes,
    dtypes; a mismatch raises ``RuntimeError`` on every rank, naming the first difference) and
    takes rank 0's values (``broadcast``). ``forward`` calls ``module``; the following
    ``backward`` leaves in every ``p.grad`` the average over the ranks:

        g = (g_0 + g_1 + ... + g_{p-1}) / p

    Buffers (BatchNorm's running statistics) are not averaged: each rank normalises with its own
    batch's statistics, as in PyTorch; with ``broadcast_buffers=True`` (PyTorch's default) rank
    0's running statistics are copied to every rank at the start of each training forward.

    Every parameter that requires grad must receive a gradient in every backward (as PyTorch
    without ``find_unused_parameters``); otherwise the next forward raises, naming them. Call
    backward once per forward; use :meth:`no_sync` for gradient accumulation.

    Args:
        module: the model (a :class:`~filterbank.nn.Module`).
        bucket_cap_mb: the largest bucket in MiB (default 25, PyTorch's).
        broadcast_buffers: copy rank 0's buffers at each training forward (default True).

    Example:
        >>> import filterbank as fb
        >>> model = DistributedDataParallel(fb.nn.Linear(4, 2))   # one process: a no-op wrap
        >>> model(fb.randn(3, 4)).shape
        (3, 2)
    """

    #: the Trainer's checkpoints hold the wrapped module's weights (no ``module.`` prefix), as
    #: PyTorch users save ``model.module.state_dict()``: they load with or without the wrapper
    checkpoint_module = True

    def __init__(self, module: Module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got "
                            f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self.broadcast_buffers = bool(broadcast_buffers)
        self._world = _comm.world_size()
        self._require_sync = True
        self._sync = False  # whether the current backward reduces (set by forward)
        self._ready = 0
        self._next = 0  # the next bucket to launch
        self._hooks: list = []
        self._got: set[int] = set()  # ids of the parameters whose gradient arrived
        self._n_params = 0
        self._buckets: list[_Bucket] = []
        self._where: dict[int, tuple[_Bucket, int]] = {}
        if self._world > 1:
            self._check_same_model()
            for _, t in self._state_tensors():
                _broadcast_inplace(t)
            self._build_buckets()

    # ------------------------------------------------------------------------- wrap time
    def _state_tensors(self) -> list:
        return list(self.module.named_parameters()) + list(self.module.named_buffers())

    def _check_same_model(self) -> None:
        sig = _signature(self._state_tensors())
        digest = np.frombuffer(hashlib.sha256("\n".join(sig).encode()).digest(), np.uint8)
        digests = _comm.all_gather(digest)
        if (digests == digests[0]).all():
            return
        # every rank gets here (all have the same digests), so the gather below cannot hang
        sigs = _comm.comm().allgather(sig)
        bad = next(r for r in range(len(sigs)) if sigs[r] != sigs[0])
        first = next((i for i, (a, b) in enumerate(zip(sigs[0], sigs[bad])) if a != b),
                     min(len(sigs[0]), len(sigs[bad])))
        a = sigs[0][first] if first < len(sigs[0]) else "(nothing)"
        b = sigs[bad][first] if first < len(sigs[bad]) else "(nothing)"
        raise RuntimeError(
            f"DistributedDataParallel: the ranks hold different models: rank 0 has "
            f"{len(sigs[0])} parameters and buffers, rank {bad} has {len(sigs[bad])}; the first "
            f"difference (entry {first}, as 'name shape dtype'): rank 0 '{a}', rank {bad} '{b}'. "
            f"Build the same model with the same arguments on every rank")

    def _build_buckets(self) -> None:
        cap = self.bucket_cap_mb * 2**20
        params = [p for p in self.module.parameters() if p.requires_grad]
        groups: list[list] = []
        size = 0
        for p in reversed(params):  # backward reaches the last layers first
            nbytes = p.data.nbytes
            if not groups or size + nbytes > cap or groups[-1][0].data.dtype != p.data.dtype:
                groups.append([])
                size = 0
            groups[-1].append(p)
            size += nbytes
        self._buckets = [_Bucket(g, g[0].data.dtype) for g in groups]
        for b in self._buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
                self._hooks.append(p.register_hook(self._make_hook(p)))
        self._n_params = len(params)

    # ------------------------------------------------------------------------- forward
    def forward(self, *args, **kwargs):
        if self._world > 1:
            if 0 < self._ready < self._n_params:
                self._raise_unfinished()
            self._sync = self._require_sync and is_grad_enabled()
            if self._sync:
                self._reset()
            if self.broadcast_buffers and self.module.training:
                for b in self.module.buffers():
                    _broadcast_inplace(b)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backwards of forwards run inside skip the all-reduce; gradients accumulate locally
        and the first backward after the block averages the accumulated sums."""
        old, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = old

    def _reset(self) -> None:
        self._ready = 0
        self._next = 0
        self._got.clear()
        for b in self._buckets:
            b.pending = len(b.params)
            b.request = None

    def _raise_unfinished(self) -> None:
        missing = [n for n, p in self.module.named_parameters()
                   if id(p) in self._where and id(p) not in self._got]
        self._reset()
        raise RuntimeError(
            f"DistributedDataParallel: the previous backward did not produce gradients for "
            f"{len(missing)} parameter(s) ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}), so their all-reduce never ran. Every "
            f"parameter that requires grad must take part in the loss on every rank (set "
            f"requires_grad=False on unused ones)")

    # ------------------------------------------------------------------------- backward
    def _make_hook(self, p):
        def hook(g):
            if not self._sync:
                return None
            return self._on_grad(p, g.data)
        return hook

    def _on_grad(self, p, g: np.ndarray):
        bucket, i = self._where[id(p)]
        view = bucket.view(i, p.data.shape)
        if view.dtype != g.dtype:
            raise RuntimeError("DistributedDataParallel: a gradient's dtype differs from its "
                               "parameter's")
        if p.grad is None:  # what .grad will hold after this backward, reduced below
            view[...] = g
        else:
            np.add(p.grad.data, g, out=view)
        self._got.add(id(p))
        bucket.pending -= 1
        self._ready += 1
        self._launch_ready_buckets()
        if self._ready < self._n_params:
            return None
        # the last gradient of this backward: every bucket is in flight; finish them all
        self._finish(skip=p)
        p.grad = None  # so that the returned average is copied into .grad, not added to it
        return view.copy()

    def _launch_ready_buckets(self) -> None:
        from mpi4py import MPI

        c = _comm.comm()
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            b = self._buckets[self._next]
            b.request = c.Iallreduce(MPI.IN_PLACE, b.flat, op=MPI.SUM)
            self._next += 1
        # MPI progresses non-blocking collectives only inside MPI calls: poke it
        active = [b.request for b in self._buckets[:self._next] if b.request is not None]
        if active:
            MPI.Request.Testall(active)

    def _finish(self, skip) -> None:
        from mpi4py import MPI

        MPI.Request.Waitall([b.request for b in self._buckets])
        for b in self._buckets:
            b.request = None
            b.flat /= self._world
            for i, q in enumerate(b.params):
                if q is not skip:
                    q.grad.data[...] = b.view(i, q.data.shape)
        self._got.clear()
        self._sync = False

    def extra_repr(self) -> str:
        return (f"world_size={self._world}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb}")


def _broadcast_inplace(t) -> None:
    a = t.data
    if a.flags.c_contiguous and a.flags.writeable:
        _comm.broadcast(a, src=0)
    else:
        c = np.ascontiguousarray(a)
        _comm.broadcast(c, src=0)
        a[...] = c
